#!/usr/bin/env python3
"""Seed a benchmark database and write the request files the scenarios replay.

    seed.py --bin build-release/devsphere --db sqlite:/tmp/x/bench.db --out /tmp/x \\
            --keys 1000000 --leads 1000000 [--invoices N] [--orgs 100] [--sample 10000]

--db is sqlite:PATH or postgresql://... (loaded with `psql`, COPY in one
transaction). The schema comes from `devsphere migrate`; rows are then written
straight into the tables, because the CLI issues one key per process and
imports hold a whole file in memory. Everything is one transaction, generated
in chunks, so 1,000,000 keys and 1,000,000 leads take about a minute.

The data:
  * --orgs organizations; key i, lead i and invoice i belong to org i % orgs.
  * keys: the service's own format (dvs_live_ + 32 base62 + base62 CRC-32) and
    hash (SHA-256; the server must run without DVS_KEY_PEPPER), both scopes, a
    per-key limit of 100,000 a minute, so nothing is throttled; plus one more
    key in the first org with a limit of 1 a minute (the 429 scenario).
  * leads and invoices with their rendered JSON (`doc`) written here, the way
    core::lead_json / core::invoice_json render it. A few rows are left
    without `doc`; `devsphere migrate` then renders them, and the seed fails
    if the server's rendering differs from ours (so a change in the renderer
    cannot leave the benchmark serving stale documents unnoticed).
  * created_at strictly increases with the row number (newest = last), so the
    row at any position of a list is known without sorting.

Files written to --out (keys never go to stdout):
  keys.txt               a random sample of --sample valid keys (for the nginx kit and wrk)
  req-<scenario>.tsv     one request a line: PATH <TAB> KEY [<TAB> X-Forwarded-For]
                         (bench/wrk/requests.lua picks a line at random per request)
  meta.json              counts, org ids, the deep page's position and expected first id,
                         seeding times
"""
import argparse
import base64
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import zlib

A = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# os.urandom bytes -> base62 characters without modulo bias: bytes 0..247 map
# to A[b % 62] (248 = 4 * 62), bytes 248..255 are dropped.
_B62_TABLE = bytes(ord(A[b % 62]) for b in range(248)) + bytes(8)
_B62_DROP = bytes(range(248, 256))
CHUNK = 20000
KEY_RATE = 100000
OVERLIMIT_RATE = 1
LEAD_STATUSES = ["new", "contacted", "qualified", "won", "lost"]
INVOICE_STATUSES = ["draft", "open", "paid", "void", "overdue"]
VERIFY_ROWS = 50  # rows per table left for `devsphere migrate` to render


class Base62:
    """A buffered stream of random base62 characters from the kernel CSPRNG."""

    def __init__(self):
        self.buf, self.pos = "", 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            more = os.urandom(max(4 * n, 1 << 20)).translate(_B62_TABLE, _B62_DROP).decode()
            self.buf, self.pos = self.buf[self.pos:] + more, 0
        s = self.buf[self.pos:self.pos + n]
        self.pos += n
        return s


def b62(v, w):
    s = ""
    while True:
        v, r = divmod(v, 62)
        s = A[r] + s
        if v == 0:
            break
    return s.rjust(w, "0")


def key_from(random32):
    return "dvs_live_" + random32 + b62(zlib.crc32(random32.encode()), 6)


_DAYS = {}


def rfc3339(t):
    day, s = divmod(t, 86400)
    d = _DAYS.get(day)
    if d is None:
        d = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return "%sT%02d:%02d:%02dZ" % (d, h, m, s)


def jstr(s):
    # Every generated string is printable ASCII without quotes or backslashes
    # (checked against the server's own rendering after seeding).
    return "null" if s is None else '"' + s + '"'


def cursor(created_at, row_id):
    """The service's list cursor (src/core/cursor.cpp) positioned after this row."""
    payload = f"c1:{created_at}:{row_id}".encode()
    tag = hashlib.sha256(b"devsphere cursor v1\n" + payload).digest()[:6]
    return base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


# ---- rows -------------------------------------------------------------------

LEAD_COLS = ["id", "org_id", "name", "email", "phone", "company", "status", "source",
             "value_cents", "currency", "created_at", "updated_at", "doc"]
INVOICE_COLS = ["id", "org_id", "number", "customer_name", "customer_email", "lead_id", "status",
                "currency", "subtotal_cents", "tax_cents", "total_cents", "amount_paid_cents",
                "issued_at", "due_at", "paid_at", "line_items", "created_at", "updated_at", "doc"]
KEY_COLS = ["id", "org_id", "name", "hint", "secret_hash", "scopes", "rate_limit_per_minute",
            "created_at"]


def lead_doc(r):
    # Field order and null handling of core::lead_json (src/core/render.cpp).
    return ('{"id":%s,"object":"lead","name":%s,"email":%s,"phone":%s,"company":%s,'
            '"status":%s,"source":%s,"value_cents":%d,"currency":%s,"created_at":"%s",'
            '"updated_at":"%s"}' % (
                jstr(r[0]), jstr(r[2]), jstr(r[3]), jstr(r[4]), jstr(r[5]), jstr(r[6]),
                jstr(r[7]), r[8], jstr(r[9]), rfc3339(r[10]), rfc3339(r[11])))


def invoice_doc(r):
    # Field order and null handling of core::invoice_json (src/core/render.cpp).
    return ('{"id":%s,"object":"invoice","number":%s,"customer_name":%s,"customer_email":%s,'
            '"lead_id":%s,"status":%s,"currency":%s,"subtotal_cents":%d,"tax_cents":%d,'
            '"total_cents":%d,"amount_paid_cents":%d,"issued_at":"%s","due_at":"%s",'
            '"paid_at":%s,"line_items":%s,"created_at":"%s","updated_at":"%s"}' % (
                jstr(r[0]), jstr(r[2]), jstr(r[3]), jstr(r[4]), jstr(r[5]), jstr(r[6]),
                jstr(r[7]), r[8], r[9], r[10], r[11], rfc3339(r[12]), rfc3339(r[13]),
                "null" if r[14] is None else '"%s"' % rfc3339(r[14]), r[15], rfc3339(r[16]),
                rfc3339(r[17])))


class Data:
    """Generates organizations, keys, leads and invoices chunk by chunk and
    remembers the few rows the request files need."""

    def __init__(self, a, rnd):
        self.a, self.rnd, self.g = a, rnd, Base62()
        self.now = int(time.time())
        self.orgs = ["org_" + self.g.take(24) for _ in range(a.orgs)]
        # Rows sampled for the request files, chosen before generation.
        self.key_pick = set(rnd.sample(range(a.keys), min(a.sample, a.keys)))
        self.lead_pick = set(rnd.sample(range(a.leads), min(a.sample, a.leads)))
        self.verify_leads = set(rnd.sample(range(a.leads), min(VERIFY_ROWS, a.leads)))
        self.verify_invoices = set(rnd.sample(range(a.invoices), min(VERIFY_ROWS, a.invoices)))
        self.sampled_keys = []   # (key, org index)
        self.sampled_leads = []  # (lead id, org index)
        self.verify = {"leads": {}, "invoices": {}}
        # The deep page: org 0's rows are i = 0, orgs, 2*orgs, ...; newest first,
        # position p (0-based) is row i = (count0 - 1 - p) * orgs.
        count0 = (a.leads + a.orgs - 1) // a.orgs
        self.deep_pos = max(0, min(a.deep, count0 // 2))
        self.deep_after_i = (count0 - self.deep_pos) * a.orgs if self.deep_pos > 0 else None
        self.deep_first_i = (count0 - 1 - self.deep_pos) * a.orgs
        self.deep_after = self.deep_first = None
        span = 400 * 86400
        self.t0 = self.now - span
        self.lead_step = max(1, span // max(1, a.leads))
        self.inv_step = max(1, span // max(1, a.invoices))

    def org_rows(self):
        return [(o, f"Bench org {n}", self.t0) for n, o in enumerate(self.orgs)]

    def key_chunks(self):
        a, g = self.a, self.g
        for start in range(0, a.keys, CHUNK):
            rows = []
            for i in range(start, min(a.keys, start + CHUNK)):
                k = key_from(g.take(32))
                if i in self.key_pick:
                    self.sampled_keys.append((k, i % a.orgs))
                rows.append(("key_" + g.take(24), self.orgs[i % a.orgs], f"bench {i}", k[:13],
                             hashlib.sha256(k.encode()).digest(), "leads:read invoices:read",
                             KEY_RATE, self.t0))
            yield rows
        k = key_from(g.take(32))
        self.overlimit_key = k
        yield [("key_" + g.take(24), self.orgs[0], "bench over-limit", k[:13],
                hashlib.sha256(k.encode()).digest(), "leads:read invoices:read",
                OVERLIMIT_RATE, self.t0)]

    def lead_chunks(self):
        a, g = self.a, self.g
        for start in range(0, a.leads, CHUNK):
            rows = []
            for i in range(start, min(a.leads, start + CHUNK)):
                t = self.t0 + i * self.lead_step
                lid = "lead_" + b62(t * 1000000 + i % 1000000, 9) + g.take(15)
                r = [lid, self.orgs[i % a.orgs], f"Lead {i}", f"lead{i}@example.com",
                     None if i % 3 else f"+1 555 {i % 10000:04d}", f"Company {i % 997}",
                     LEAD_STATUSES[i % 5], ["website", "referral", "event", None][i % 4],
                     (i * 7919) % 5000000, ["USD", "EUR", "GBP"][i % 3], t, t + (i % 86400), None]
                if i in self.verify_leads:
                    self.verify["leads"][lid] = lead_doc(r)
                else:
                    r[12] = lead_doc(r)
                if i in self.lead_pick:
                    self.sampled_leads.append((lid, i % a.orgs))
                if i == self.deep_after_i:
                    self.deep_after = (t, lid)
                if i == self.deep_first_i:
                    self.deep_first = lid
                rows.append(r)
            yield rows

    def invoice_chunks(self):
        a, g = self.a, self.g
        for start in range(0, a.invoices, CHUNK):
            rows = []
            for i in range(start, min(a.invoices, start + CHUNK)):
                t = self.t0 + i * self.inv_step
                qty, unit = 1 + i % 4, 1500 + (i % 50) * 100
                items = [(f"Service plan {i % 7}", qty, unit), ("Support", 1, 9900)]
                li = "[" + ",".join(
                    '{"description":%s,"quantity":%d,"unit_price_cents":%d,"amount_cents":%d}'
                    % (jstr(d), q, u, q * u) for d, q, u in items) + "]"
                sub = sum(q * u for _, q, u in items)
                tax = sub // 5 if i % 2 else 0
                status = INVOICE_STATUSES[i % 5]
                paid = t + 86400 if status == "paid" else None
                r = ["inv_" + b62(t * 1000000 + i % 1000000, 9) + g.take(15), self.orgs[i % a.orgs],
                     f"INV-{i:07d}", f"Customer {i % 991}", f"billing{i % 991}@example.com", None,
                     status, "USD", sub, tax, sub + tax, sub + tax if paid else 0, t, t + 30 * 86400,
                     paid, li, t, t, None]
                if i in self.verify_invoices:
                    self.verify["invoices"][r[0]] = invoice_doc(r)
                else:
                    r[18] = invoice_doc(r)
                rows.append(r)
            yield rows


# ---- loaders ----------------------------------------------------------------

def load_sqlite(path, d):
    con = sqlite3.connect(path, isolation_level=None)
    # No journal and a large page cache while loading (random key hashes make
    # the unique index's inserts random); back to WAL, as the server runs it.
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    con.execute("BEGIN")
    con.executemany("INSERT INTO organizations(id, name, created_at) VALUES (?,?,?)", d.org_rows())
    for table, cols, chunks in (("api_keys", KEY_COLS, d.key_chunks()),
                                ("leads", LEAD_COLS, d.lead_chunks()),
                                ("invoices", INVOICE_COLS, d.invoice_chunks())):
        sql = "INSERT INTO %s(%s) VALUES (%s)" % (table, ",".join(cols), ",".join("?" * len(cols)))
        for rows in chunks:
            con.executemany(sql, rows)
    con.execute("COMMIT")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()


def copy_value(v):
    if v is None:
        return r"\N"
    if isinstance(v, bytes):
        return r"\\x" + v.hex()
    s = str(v)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def load_postgres(url, d):
    p = subprocess.Popen(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", "-"],
                         stdin=subprocess.PIPE, text=True, stdout=subprocess.DEVNULL)
    w = p.stdin.write
    for table, cols, chunks in (("organizations", ["id", "name", "created_at"], [d.org_rows()]),
                                ("api_keys", KEY_COLS, d.key_chunks()),
                                ("leads", LEAD_COLS, d.lead_chunks()),
                                ("invoices", INVOICE_COLS, d.invoice_chunks())):
        w("COPY %s (%s) FROM STDIN;\n" % (table, ", ".join(cols)))
        for rows in chunks:
            w("".join("\t".join(map(copy_value, r)) + "\n" for r in rows))
        w("\\.\n")
    w("ANALYZE;\n")
    p.stdin.close()
    if p.wait() != 0:
        sys.exit("seed.py: psql failed")


def stored_docs(url, table, ids):
    if not ids:
        return {}
    if url.startswith("sqlite:"):
        con = sqlite3.connect(url[len("sqlite:"):])
        q = "SELECT id, doc FROM %s WHERE id IN (%s)" % (table, ",".join("?" * len(ids)))
        out = dict(con.execute(q, list(ids)).fetchall())
        con.close()
        return out
    q = "SELECT id, doc FROM %s WHERE id IN (%s)" % (table, ",".join("'%s'" % i for i in ids))
    rows = subprocess.check_output(["psql", url, "-At", "-F", "\t", "-c", q], text=True)
    return dict(line.split("\t", 1) for line in rows.splitlines() if line)


# ---- request files ----------------------------------------------------------

def write_requests(out, d, rnd):
    g = Base62()
    keys = [k for k, _ in d.sampled_keys]
    rnd.shuffle(keys)
    by_org = {}
    for k, o in d.sampled_keys:
        by_org.setdefault(o, []).append(k)

    def ip():
        return "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))

    def write(name, lines):
        with open(os.path.join(out, f"req-{name}.tsv"), "w") as f:
            f.write("".join("\t".join(line) + "\n" for line in lines))

    n = len(keys)
    write("leads", [("/v1/leads?limit=20", k) for k in keys])
    write("invoices", [("/v1/invoices?limit=20", k) for k in keys])
    write("lead", [("/v1/leads/" + lid, rnd.choice(by_org[o]))
                   for lid, o in d.sampled_leads if o in by_org])
    deep = "/v1/leads?limit=20" + ("&cursor=" + cursor(*d.deep_after) if d.deep_after else "")
    write("deep", [(deep, k) for k in keys])
    write("overlimit", [("/v1/leads?limit=20", d.overlimit_key)])
    bad = []
    for _ in range(n):  # a good key with its checksum changed
        k = key_from(g.take(32))
        c = k[-1]
        bad.append(k[:-1] + ("0" if c != "0" else "1"))
    unknown = [key_from(g.take(32)) for _ in range(n)]  # well formed, never stored
    # From many addresses behind a trusted proxy (the server runs with
    # --trusted-proxy 127.0.0.1), so the per-address limit on failed
    # authentication (1,200 a minute) does not turn them into 429s ...
    write("badsum", [("/v1/leads?limit=20", k, ip()) for k in bad])
    write("unknown", [("/v1/leads?limit=20", k, ip()) for k in unknown])
    # ... and from one address, where that limit does.
    write("unknown_1ip", [("/v1/leads?limit=20", k) for k in unknown])
    with open(os.path.join(out, "keys.txt"), "w") as f:
        f.write("".join(k + "\n" for k in keys))
    for name in os.listdir(out):
        if name.startswith("req-") or name == "keys.txt":
            os.chmod(os.path.join(out, name), 0o600)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the devsphere binary (for migrate)")
    ap.add_argument("--db", required=True, help="sqlite:PATH or postgresql://...")
    ap.add_argument("--out", required=True, help="folder for keys.txt, req-*.tsv, meta.json")
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--leads", type=int, default=1000)
    ap.add_argument("--invoices", type=int, default=None, help="default: min(leads, 100000)")
    ap.add_argument("--orgs", type=int, default=1)
    ap.add_argument("--sample", type=int, default=10000, help="keys and lead ids in the request files")
    ap.add_argument("--deep", type=int, default=500000, help="rows skipped by the deep page")
    ap.add_argument("--seed", type=int, default=None, help="random seed for the sampling")
    a = ap.parse_args()
    if a.invoices is None:
        a.invoices = min(a.leads, 100000)
    if min(a.keys, a.leads, a.invoices, a.orgs) < 1:
        ap.error("--keys, --leads, --invoices and --orgs must be at least 1")
    if a.leads // a.orgs < 20 or a.invoices // a.orgs < 20:
        print(f"seed.py: warning: fewer than 20 leads or invoices per organization; "
              f"list pages will be short", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    rnd = random.Random(a.seed)
    t = {}
    t0 = time.time()
    subprocess.check_call([a.bin, "migrate", "--db", a.db], stdout=subprocess.DEVNULL)
    d = Data(a, rnd)
    t1 = time.time()
    (load_sqlite(a.db[len("sqlite:"):], d) if a.db.startswith("sqlite:") else load_postgres(a.db, d))
    t["load_s"] = round(time.time() - t1, 1)
    t2 = time.time()
    subprocess.check_call([a.bin, "migrate", "--db", a.db], stdout=subprocess.DEVNULL)
    t["migrate_s"] = round(time.time() - t2, 1)
    for table in ("leads", "invoices"):
        want = d.verify[table]
        got = stored_docs(a.db, table, list(want))
        for rid, doc in want.items():
            if got.get(rid) != doc:
                sys.exit(f"seed.py: {table} {rid}: the server renders\n  {got.get(rid)}\n"
                         f"but seed.py wrote\n  {doc}\nupdate lead_doc/invoice_doc in bench/seed.py")
    write_requests(a.out, d, rnd)
    t["total_s"] = round(time.time() - t0, 1)
    meta = {"orgs": a.orgs, "keys": a.keys + 1, "leads": a.leads, "invoices": a.invoices,
            "sampled_keys": len(d.sampled_keys), "org_ids": d.orgs[:3],
            "deep_position": d.deep_pos, "deep_first_id": d.deep_first,
            "overlimit_rate_per_minute": OVERLIMIT_RATE, "key_rate_per_minute": KEY_RATE,
            "seconds": t}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"seeded {a.db.split('://')[0].split(':')[0]}: {a.orgs} org(s), {a.keys:,} keys, "
          f"{a.leads:,} leads, {a.invoices:,} invoices in {t['total_s']} s "
          f"(load {t['load_s']} s, migrate {t['migrate_s']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
