#!/usr/bin/env python3
"""Run the scenarios with wrk beside the nginx gateway and append one TSV row a run.

bench/run starts the servers and calls this once per backend and scale. For
each connection count and each of RUNS repetitions it runs the gateway (the
nginx anchor kit's /v1/leads with its wrk/keys.lua) and then every scenario
against devsphere (bench/wrk/requests.lua with the scenario's req-*.tsv), so
the runs are interleaved as the kit interleaves its own and slow drift hits
every row alike. The measurements are the kit's (same columns, in the same
order, same definitions: server CPU from /proc/PID/stat, host busy time from
/proc/stat, wrk's own CPU), plus:
  db_cpu_s / db_cpu_us_per_req  PostgreSQL backends and Redis (PostgreSQL runs)
  statuses       devsphere's /v1 responses by status during the run (/metrics)
  rss_kb hwm_kb  VmRSS and VmHWM of devsphere after the run
  log_queue_max  the largest request-log queue seen (polled each second)
  log_written, log_dropped   request-log entries written / dropped during the run

Before benchmarking, every scenario is checked with a few plain HTTP requests
(status, body shape), the way the kit checks the gateway; a failure stops it.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")
KIT_COLS = ["scenario", "conns", "run", "rps", "p50_us", "p90_us", "p99_us", "max_us", "non2xx",
            "sock_errors", "server_cpu_s", "server_cpu_us_per_req", "wrk_cpu_s", "other_cpu_s",
            "steal_pct", "host_busy_pct", "requests"]
EXTRA_COLS = ["backend", "scale", "db_cpu_s", "db_cpu_us_per_req", "statuses", "rss_kb", "hwm_kb",
              "log_queue_max", "log_written", "log_dropped"]
COLS = KIT_COLS + EXTRA_COLS


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- /proc ------------------------------------------------------------------

def proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()  # fields from 3 (state) on


def cpu_ticks(pids):
    t = 0
    for p in pids:
        a = proc_stat(p)
        if a:
            t += int(a[11]) + int(a[12])  # utime (14) + stime (15)
    return t


def children(parents):
    out = []
    if not parents:
        return out
    for d in os.listdir("/proc"):
        if d.isdigit():
            a = proc_stat(d)
            if a and a[1] in parents:
                out.append(d)
    return out


def sys_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], sum(v), v[7]  # idle+iowait, total, steal


def proc_status(pid, fields=("VmRSS", "VmHWM")):
    """The first word of each field of /proc/PID/status (kB for Vm*); "NA" when unreadable."""
    out = dict.fromkeys(fields, "NA")
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split(":")[0]
                if k in out:
                    out[k] = line.split()[1]
    except OSError:
        pass
    return out


def mem_kb(pid):
    s = proc_status(pid)
    return s["VmRSS"], s["VmHWM"]


# ---- HTTP -------------------------------------------------------------------

def get(base, path, key=None, xff=None, timeout=10):
    host, port = base.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    h = {}
    if key:
        h["Authorization"] = "Bearer " + key
    if xff:
        h["X-Forwarded-For"] = xff
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def metrics(base):
    try:
        status, body = get(base, "/metrics", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    m = {"status": {}, "requests": 0}  # status: /v1 responses by status; requests: every route
    for line in body.decode().splitlines():
        if line.startswith("dvs_http_requests_total{"):
            m["requests"] += int(line.rsplit(" ", 1)[1])
        if line.startswith("dvs_http_requests_total{route=\"GET /v1"):
            st = re.search(r'status="([^"]+)"', line).group(1)
            m["status"][st] = m["status"].get(st, 0) + int(line.rsplit(" ", 1)[1])
        elif line.startswith("dvs_request_log_"):
            k, v = line.split(" ")
            m[k] = int(v)
    return m


def read_requests(path, n=3):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [(l[0], l[1] if len(l) > 1 else "", l[2] if len(l) > 2 else "") for l in lines[:n]]


def check(base, scenario, reqdir, meta):
    """A few requests of the scenario, and what each must answer. Returns a list of failures."""
    fails = []
    reqs = read_requests(os.path.join(reqdir, f"req-{scenario}.tsv"))

    def expect(cond, what):
        if not cond:
            fails.append(f"{scenario}: {what}")

    for path, key, xff in reqs:
        status, body = get(base, path, key, xff)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        if scenario in ("leads", "invoices", "deep"):
            want = 20 if scenario != "invoices" or meta["invoices"] // meta["orgs"] >= 20 else None
            expect(status == 200 and doc.get("object") == "list", f"GET {path[:40]} -> {status}")
            data = doc.get("data", [])
            expect(want is None or len(data) == want, f"{len(data)} items, expected {want}")
            if scenario == "deep":
                expect(doc.get("has_more") is True or meta["deep_position"] + 20 >= meta["leads"],
                       "deep page has no more rows")
                if meta["orgs"] == 1 and data:
                    expect(data[0]["id"] == meta["deep_first_id"],
                           f"deep page starts at {data[0]['id']}, expected {meta['deep_first_id']}")
        elif scenario == "lead":
            expect(status == 200 and doc.get("id") == path.rsplit("/", 1)[1],
                   f"GET {path} -> {status} {body[:80]!r}")
        elif scenario in ("badsum", "unknown", "unknown_1ip"):
            ok = status == 401 and doc.get("error", {}).get("code") == "invalid_api_key"
            # one address: the failed-authentication limit may already answer 429
            ok = ok or (scenario == "unknown_1ip" and status == 429)
            expect(ok, f"-> {status} {body[:80]!r}, expected 401 invalid_api_key")
        elif scenario == "overlimit":
            status2, body2 = get(base, path, key)
            expect(status in (200, 429) and status2 == 429 and b"rate_limited" in body2,
                   f"-> {status} then {status2}, expected 429 rate_limited")
    return fails


# ---- one wrk run ------------------------------------------------------------

class Poller(threading.Thread):
    """Polls devsphere's request-log queue each second while wrk runs."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.base, self.max_queue, self.stop = base, 0, threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            m = metrics(self.base)
            if m:
                self.max_queue = max(self.max_queue, m.get("dvs_request_log_queue", 0))


def run_wrk(args, script, url, env_extra, conns, duration, logf):
    env = dict(os.environ, **env_extra)
    t = min(args.wrk_threads, conns)
    cmd = ["wrk", f"-t{t}", f"-c{conns}", f"-d{duration}", "--latency", "-s", script, url]
    with open(logf, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    text = open(logf).read()
    if p.returncode != 0:
        sys.exit(f"wrk failed ({' '.join(cmd)}):\n{text}")
    m = re.search(r"^ANCHOR_RESULT (.*)$", text, re.M)
    if not m:
        sys.exit(f"no ANCHOR_RESULT in {logf}:\n{text}")
    v = dict(kv.split("=") for kv in m.group(1).split())
    return v, ru.ru_utime + ru.ru_stime


def run_one(args, meta, sc, conns, run, tsv, logdir):
    product = sc != "gateway"
    if product:
        pids = [args.product_pid]
        script, url = args.lua, args.product + "/"  # the path comes from the request file
        env = {"BENCH_REQUESTS": os.path.join(args.reqdir, f"req-{sc}.tsv")}
    else:
        pids = args.gateway_pids.split()
        script, url = os.path.join(args.kit, "wrk", "keys.lua"), args.gateway_url
        env = {"ANCHOR_KEYS_FILE": os.path.join(args.reqdir, "keys.txt")}
    db_parents = args.db_parents.split()
    dbp = (args.db_pids.split() + db_parents + children(db_parents)) if product else []
    m0 = metrics(args.product) if product else None
    poller = Poller(args.product) if product else None
    c0, d0, s0 = cpu_ticks(pids), cpu_ticks(dbp), sys_cpu()
    if poller:
        poller.start()
    v, wt = run_wrk(args, script, url, env, conns, args.duration,
                    # A scale of 1000000/100 names a file, not a folder.
                    os.path.join(logdir, f"{args.backend}-{args.scale.replace('/', 'x')}-{sc}"
                                         f"-c{conns}-r{run}.txt"))
    dbp = (args.db_pids.split() + db_parents + children(db_parents)) if product else []
    c1, d1, s1 = cpu_ticks(pids), cpu_ticks(dbp), sys_cpu()
    if poller:
        poller.stop.set()
        poller.join()
    m1 = metrics(args.product) if product else None
    req = int(v["requests"])
    dt = s1[1] - s0[1]
    busy_s = (dt - (s1[0] - s0[0])) / HZ
    busy = 100 * (1 - (s1[0] - s0[0]) / dt) if dt > 0 else 0
    steal = 100 * (s1[2] - s0[2]) / dt if dt > 0 else 0
    scpu = (c1 - c0) / HZ
    dcpu = (d1 - d0) / HZ if dbp else None
    other = busy_s - scpu - (dcpu or 0) - wt
    errs = sum(int(v[k]) for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    row = {
        "scenario": sc, "conns": conns, "run": run, "rps": "%.1f" % float(v["rps"]),
        "p50_us": v["p50_us"], "p90_us": v["p90_us"], "p99_us": v["p99_us"], "max_us": v["max_us"],
        "non2xx": v["non2xx"], "sock_errors": errs, "server_cpu_s": "%.2f" % scpu,
        "server_cpu_us_per_req": "%.1f" % (scpu * 1e6 / req) if req else "NA",
        "wrk_cpu_s": "%.2f" % wt, "other_cpu_s": "%.2f" % other, "steal_pct": "%.1f" % steal,
        "host_busy_pct": "%.0f" % busy, "requests": req,
        "backend": args.backend, "scale": args.scale,
        "db_cpu_s": "%.2f" % dcpu if dcpu is not None else "NA",
        "db_cpu_us_per_req": "%.1f" % (dcpu * 1e6 / req) if dcpu is not None and req else "NA",
        "statuses": "NA", "rss_kb": "NA", "hwm_kb": "NA", "log_queue_max": "NA",
        "log_written": "NA", "log_dropped": "NA",
    }
    if product:
        row["rss_kb"], row["hwm_kb"] = mem_kb(args.product_pid)
        if m0 and m1:
            st = {k: m1["status"].get(k, 0) - m0["status"].get(k, 0) for k in m1["status"]}
            row["statuses"] = ",".join(f"{k}:{n}" for k, n in sorted(st.items()) if n) or "-"
            row["log_queue_max"] = max(poller.max_queue, m1.get("dvs_request_log_queue", 0))
            for k in ("written", "dropped"):
                name = f"dvs_request_log_{k}_total"
                row[f"log_{k}"] = m1.get(name, 0) - m0.get(name, 0)
    with open(tsv, "a") as f:
        f.write("\t".join(str(row[c]) for c in COLS) + "\n")
    db = f" db_cpu={row['db_cpu_us_per_req']} us/req" if dcpu is not None else ""
    log(f"  {args.backend:8} {args.scale:10} {sc:11} c={conns:<3} run {run}: "
        f"{float(v['rps']):9.0f} req/s  p50 {int(v['p50_us']):6d} us  p99 {int(v['p99_us']):7d} us  "
        f"non2xx={v['non2xx']} err={errs}  cpu={row['server_cpu_us_per_req']} us/req{db}  "
        f"wrk={row['wrk_cpu_s']}s other={row['other_cpu_s']}s"
        + (f"  [{row['statuses']}] rss={row['rss_kb']} kB" if product else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tsv", required=True)
    ap.add_argument("--logdir", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--reqdir", required=True, help="seed.py --out folder")
    ap.add_argument("--scenarios", required=True)
    ap.add_argument("--conns", default="1 16 64 256")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--warmup", default="1s", help="one unmeasured run per scenario first ('0': none)")
    ap.add_argument("--pause", type=float, default=1.0)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--product", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--product-pid", required=True)
    ap.add_argument("--gateway-url", required=True)
    ap.add_argument("--gateway-pids", required=True)
    ap.add_argument("--kit", required=True)
    ap.add_argument("--lua", required=True)
    ap.add_argument("--db-pids", default="", help="more server processes (redis-server)")
    ap.add_argument("--db-parents", default="", help="their children count too (postmaster)")
    args = ap.parse_args()
    scenarios = args.scenarios.split()
    with open(os.path.join(args.reqdir, "meta.json")) as f:
        meta = json.load(f)

    fails = [f for sc in scenarios for f in check(args.product, sc, args.reqdir, meta)]
    for f in fails:
        log("FAIL " + f)
    if fails:
        sys.exit(f"{len(fails)} scenario check(s) failed -- not benchmarking")
    log(f"scenario checks passed: {' '.join(scenarios)}")

    if not os.path.exists(args.tsv):
        with open(args.tsv, "w") as f:
            f.write("\t".join(COLS) + "\n")
    os.makedirs(args.logdir, exist_ok=True)
    if args.warmup not in ("", "0", "0s"):
        log(f"warm-up: {args.warmup} of each scenario at c=16 (not recorded)")
        for sc in scenarios:
            run_wrk(args, args.lua, args.product + "/",
                    {"BENCH_REQUESTS": os.path.join(args.reqdir, f"req-{sc}.tsv")}, 16,
                    args.warmup, os.path.join(args.logdir, f"warmup-{sc}.txt"))
    for conns in [int(c) for c in args.conns.split()]:
        log(f"{args.backend} {args.scale}: wrk -t{args.wrk_threads} -c{conns} -d{args.duration} "
            f"--latency, {args.runs} interleaved run(s) of: gateway {' '.join(scenarios)}")
        for run in range(1, args.runs + 1):
            for sc in ["gateway"] + scenarios:
                run_one(args, meta, sc, conns, run, args.tsv, args.logdir)
                time.sleep(args.pause)


if __name__ == "__main__":
    main()
