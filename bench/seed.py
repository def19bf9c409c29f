#!/usr/bin/env python3
"""Seed a benchmark database: one organization, N leads, K API keys.

Writes the keys (one secret per line) to KEYS_FILE for wrk/keys.lua. The keys
are inserted straight into SQLite with the same format and hash the service
uses (dvs_live_ + 32 base62 + CRC-32 checksum; SHA-256, no pepper), because
issuing 10,000 keys one CLI process at a time takes minutes.
Usage: seed.py DEVSPHERE_BIN DB_PATH KEYS_FILE [N_LEADS] [N_KEYS]
"""
import hashlib, json, os, secrets, sqlite3, subprocess, sys, tempfile, time, zlib

A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

def b62(v, w):
    s = ""
    while True:
        s = A[v % 62] + s
        v //= 62
        if v == 0:
            break
    return s.rjust(w, "0")

def new_key():
    r = "".join(secrets.choice(A) for _ in range(32))
    return "dvs_live_" + r + b62(zlib.crc32(r.encode()), 6)

def main():
    bin_, db, keys_file = sys.argv[1:4]
    n_leads = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    n_keys = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    url = "sqlite:" + db
    org = subprocess.check_output([bin_, "org", "create", "--name", "Bench", "--owner-email",
                                   f"bench-{os.getpid()}@example.com", "--db", url],
                                  text=True).strip().splitlines()[-1]
    now = int(time.time())
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i in range(n_leads):
            f.write(json.dumps({
                "name": f"Lead {i}", "email": f"lead{i}@example.com", "company": f"Company {i % 97}",
                "status": ["new", "contacted", "qualified", "won", "lost"][i % 5],
                "source": "benchmark", "value_cents": 1000 * i, "currency": "USD",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 86400 * 30 + i)),
            }) + "\n")
    subprocess.check_call([bin_, "import", "leads", "--org", org, f.name, "--db", url],
                          stdout=subprocess.DEVNULL)
    os.unlink(f.name)
    con = sqlite3.connect(db)
    keys = [new_key() for _ in range(n_keys)]
    con.executemany(
        "INSERT INTO api_keys(id, org_id, name, hint, secret_hash, scopes, rate_limit_per_minute,"
        " created_at) VALUES (?,?,?,?,?,?,?,?)",
        [("key_" + "".join(secrets.choice(A) for _ in range(24)), org, f"bench {i}", k[:13],
          hashlib.sha256(k.encode()).digest(), "leads:read invoices:read", 100000, now)
         for i, k in enumerate(keys)])
    con.commit()
    con.close()
    with open(keys_file, "w") as f:
        f.write("\n".join(keys) + "\n")
    os.chmod(keys_file, 0o600)
    print(org)

main()
