#!/usr/bin/env python3
"""Drive a long mixed load at a running devsphere, sample its resources, decide "flat".

bench/soak seeds the database and starts the server, then calls this. It
  1. checks each scenario of the mix with a few plain requests (bench/drive.py's
     checks) and writes the mix, req-soak.tsv, from seed.py's request files;
  2. runs two wrk processes for --duration seconds, both replaying req-soak.tsv
     with bench/wrk/requests.lua: one with --conns kept-alive connections, one
     with --churn-conns connections that send "Connection: close" and wait
     --churn-delay-ms before each request (a new TCP connection per request);
  3. meanwhile signs in to the portal's /api as a user of a separate organization
     every minute and, every --portal-every seconds, lists keys, creates a key,
     uses it on /v1, revokes it, uses it again (401) and lists the audit events;
  4. samples every --interval seconds: VmRSS and VmHWM, open file descriptors
     and threads of the server, its CPU, the SQLite file and WAL sizes, the
     request log's queue, written and dropped counters and the request rate
     (GET /metrics);
  5. writes every sample to --csv and a summary to --json, prints the
     report, and with --docs replaces the block between the bench:soak markers
     in that file (and draws --svg).

The verdict compares the means of the last and the first third of the samples
taken after --warmup seconds: "flat" when RssAnon (anonymous memory: heap,
stacks; VmRSS minus the mapped database file and binary) grew by at most --rss-pct
percent, open file descriptors by at most --fd-slack and threads by at most
--thread-slack. Exit status 1 when it is not flat, when a portal call or a
check failed, or when wrk failed; with --smoke the verdict is printed but
only failures to run count.
"""
import argparse
import csv
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402
import plot  # noqa: E402
import report  # noqa: E402

BEGIN, END = "<!-- bench:soak:begin -->", "<!-- bench:soak:end -->"
# The share of each of seed.py's request files in the mix (req-<name>.tsv).
MIX = [("leads", 40, "`GET /v1/leads?limit=20`, a random valid key"),
       ("lead", 25, "`GET /v1/leads/{id}`, a random lead with a key of its organization"),
       ("invoices", 20, "`GET /v1/invoices?limit=20`, a random valid key"),
       ("badsum", 5, "a key with a wrong checksum (401), from 10,000 client addresses"),
       ("unknown", 5, "a well-formed key that is not stored (401), from 10,000 addresses"),
       ("overlimit", 5, "the key limited to 1 request a minute (429)")]
MIX_LINES = 20000
COLS = ["t_s", "rss_kb", "hwm_kb", "rss_anon_kb", "rss_file_kb", "rss_shmem_kb", "fds", "threads", "cpu_pct", "db_bytes", "wal_bytes",
        "log_queue", "log_written", "log_dropped", "requests", "rps", "portal_ops",
        "portal_errors"]


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the mix ----------------------------------------------------------------

def write_mix(reqdir, rnd):
    """req-soak.tsv: MIX_LINES lines drawn from the scenario files in MIX's shares."""
    lines = []
    total = sum(w for _, w, _ in MIX)
    for name, weight, _ in MIX:
        with open(os.path.join(reqdir, f"req-{name}.tsv")) as f:
            src = [line for line in f if line.strip()]
        lines += [rnd.choice(src) for _ in range(MIX_LINES * weight // total)]
    rnd.shuffle(lines)
    path = os.path.join(reqdir, "req-soak.tsv")
    with open(path, "w") as f:
        f.write("".join(lines))
    os.chmod(path, 0o600)
    return path


# ---- the portal -------------------------------------------------------------

class Portal(threading.Thread):
    """A signed-in administrator: a key created, used, revoked and used again
    every `every` seconds, a new session each minute. Counts calls and the
    ones that did not answer as expected (with the first few of them)."""

    def __init__(self, base, email, password, every, t0, stop):
        super().__init__(daemon=True)
        self.host, self.port = base.split("//")[1].split(":")
        self.email, self.password, self.every = email, password, every
        self.t0, self.stop = t0, stop
        self.ops = self.errors = self.signins = self.keys = 0
        self.first_errors = []
        self.token = None

    def call(self, method, path, body=None, key=None, want=(200,)):
        h = {}
        if self.token:
            h["Cookie"] = "dvs_session=" + self.token
        if key:
            h["Authorization"] = "Bearer " + key
        if method != "GET":
            h["Content-Type"] = "application/json"
        data = json.dumps(body) if body is not None else None
        self.ops += 1
        try:
            c = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            cookie = r.getheader("Set-Cookie") or ""
            c.close()
        except OSError as e:
            return self.fail(f"{method} {path}: {e}")
        if r.status not in want:
            return self.fail(f"{method} {path}: {r.status} {raw[:100]!r}")
        if cookie.startswith("dvs_session=") and method == "POST":
            self.token = cookie.split(";")[0].split("=", 1)[1]
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return self.fail(f"{method} {path}: not JSON")

    def fail(self, what):
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(what)
        return None

    def sign_in(self):
        if self.token:
            self.call("DELETE", "/api/session", want=(204,))
            self.token = None
        self.signins += 1
        self.call("POST", "/api/session", {"email": self.email, "password": self.password})

    def cycle(self, n):
        self.call("GET", "/api/keys")
        made = self.call("POST", "/api/keys", {"name": f"soak {n}", "scopes": ["leads:read"]},
                         want=(201,))
        if not made:
            return
        kid, secret = made["key"]["id"], made["secret"]
        self.keys += 1
        self.call("GET", "/v1/leads?limit=20", key=secret)
        self.call("POST", f"/api/keys/{kid}/revoke", {}, want=(200,))
        self.call("GET", "/v1/leads?limit=20", key=secret, want=(401,))
        self.call("GET", "/api/audit-events?limit=20")

    def run(self):
        # Half a period off the sampler's beat, so a sign-in's Argon2id (64 MiB
        # for tens of milliseconds) is not what a sample happens to catch.
        n, minute = 0, -1
        while not self.stop.wait(max(0.0, self.t0 + self.every * (n + 0.5) - time.time())):
            m = int((time.time() - self.t0) // 60)
            if m != minute:
                minute = m
                self.sign_in()
            self.cycle(n)
            n += 1
        if self.token:
            self.call("DELETE", "/api/session", want=(204,))


# ---- samples ----------------------------------------------------------------

def sample(a, t0, prev, portal):
    st = drive.proc_status(a.pid, ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"))
    try:
        fds = len(os.listdir(f"/proc/{a.pid}/fd"))
    except OSError:
        fds = "NA"
    m = drive.metrics(a.base) or {}
    now = time.time()
    ticks = drive.cpu_ticks([a.pid])

    def size(p):
        try:
            return os.path.getsize(p)
        except OSError:
            return 0

    s = {"t_s": round(now - t0, 1), "rss_kb": st["VmRSS"], "hwm_kb": st["VmHWM"],
         "rss_anon_kb": st["RssAnon"], "rss_file_kb": st["RssFile"], "rss_shmem_kb": st["RssShmem"],
         "fds": fds,
         "threads": st["Threads"], "db_bytes": size(a.db), "wal_bytes": size(a.db + "-wal"),
         "log_queue": m.get("dvs_request_log_queue", "NA"),
         "log_written": m.get("dvs_request_log_written_total", "NA"),
         "log_dropped": m.get("dvs_request_log_dropped_total", "NA"),
         "requests": m.get("requests", "NA"), "rps": "NA", "cpu_pct": "NA",
         "portal_ops": portal.ops if portal else 0, "portal_errors": portal.errors if portal else 0,
         "_now": now, "_ticks": ticks, "_status": m.get("status", {})}
    if prev and prev["_now"] < now:
        dt = now - prev["_now"]
        if "NA" not in (s["requests"], prev["requests"]):
            s["rps"] = round((s["requests"] - prev["requests"]) / dt, 1)
        s["cpu_pct"] = round(100 * (ticks - prev["_ticks"]) / drive.HZ / dt, 1)
    return s


def num(s, k):
    v = s[k]
    return None if v in ("NA", None) else float(v)


def mean(samples, k):
    v = [num(s, k) for s in samples if num(s, k) is not None]
    return statistics.mean(v) if v else None


def verdict(a, samples):
    """The rule and its figures: {"flat": bool or None, "lines": [...], ...}."""
    post = [s for s in samples if a.warmup <= s["t_s"] <= a.duration + a.interval / 2]
    third = len(post) // 3
    rule = (f"after a {a.warmup:g} s warm-up, the mean of the last third of the samples against "
            f"the first third: flat when RssAnon (the process's own memory) grows by at most "
            f"{a.rss_pct:g} %, open file "
            f"descriptors by at most {a.fd_slack} and threads by at most {a.thread_slack}")
    out = {"rule": rule, "samples_compared": third}
    if third < 1:
        out.update(flat=None, lines=["too few samples after the warm-up for a verdict"])
        return out
    first, last = post[:third], post[-third:]
    out["window_first"] = [first[0]["t_s"], first[-1]["t_s"]]
    out["window_last"] = [last[0]["t_s"], last[-1]["t_s"]]
    r0, r1 = mean(first, "rss_kb") / 1024, mean(last, "rss_kb") / 1024
    a0, a1 = mean(first, "rss_anon_kb") / 1024, mean(last, "rss_anon_kb") / 1024
    f0, f1 = mean(first, "fds"), mean(last, "fds")
    h0, h1 = mean(first, "threads"), mean(last, "threads")
    out.update(rss_first_mb=round(r0, 1), rss_last_mb=round(r1, 1), rss_growth_mb=round(r1 - r0, 1),
               rss_growth_pct=round(100 * (r1 - r0) / r0, 1), fds_first=round(f0, 1),
               fds_last=round(f1, 1), fds_growth=round(f1 - f0, 1), threads_first=round(h0, 1),
               threads_last=round(h1, 1), threads_growth=round(h1 - h0, 1))
    anon_pct = 100 * (a1 - a0) / a0
    out.update(anon_first_mb=round(a0, 1), anon_last_mb=round(a1, 1), anon_growth_pct=round(anon_pct, 1))
    # VmRSS also counts file pages: the database mapped for reads (SQLite's
    # mmap_size, 64 MiB at most) and the binary, i.e. shared page cache the
    # kernel can reclaim. Reported; the verdict is on the anonymous memory.
    out["vmrss_line"] = (f"VmRSS (with the mapped database file): {r0:.1f} → {r1:.1f} MB "
                         f"({r1 - r0:+.1f} MB, {out['rss_growth_pct']:+.1f} %) — reported")
    checks = [("RssAnon", anon_pct <= a.rss_pct,
               f"{a0:.1f} → {a1:.1f} MB ({a1 - a0:+.1f} MB, {anon_pct:+.1f} %; bound {a.rss_pct:g} %)"),
              ("open FDs", f1 - f0 <= a.fd_slack,
               f"{f0:.1f} → {f1:.1f} ({f1 - f0:+.1f}; bound +{a.fd_slack})"),
              ("threads", h1 - h0 <= a.thread_slack,
               f"{h0:.1f} → {h1:.1f} ({h1 - h0:+.1f}; bound +{a.thread_slack})")]
    out["flat"] = all(ok for _, ok, _ in checks)
    out["lines"] = [f"{name}: {txt} — {'ok' if ok else 'GROWS'}" for name, ok, txt in checks]
    out["lines"].append(out["vmrss_line"])
    return out


# ---- wrk --------------------------------------------------------------------

def start_wrk(a, mix, conns, logf, extra_env=None, extra_args=()):
    env = dict(os.environ, BENCH_REQUESTS=mix, **(extra_env or {}))
    cmd = ["wrk", f"-t{min(a.wrk_threads, conns)}", f"-c{conns}", f"-d{a.duration}s", "--latency",
           *extra_args, "-s", a.lua, a.base + "/"]
    out = open(logf, "w")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env), cmd


def wrk_result(p, cmd, logf):
    rc = p.wait()
    text = open(logf).read()
    line = [ln for ln in text.splitlines() if ln.startswith("ANCHOR_RESULT ")]
    if rc != 0 or not line:
        return None, f"wrk failed ({' '.join(cmd)}): {text[-500:]}"
    return dict(kv.split("=") for kv in line[0].split()[1:]), None


# ---- report -----------------------------------------------------------------

def mb(v):
    return f"{float(v) / 1048576:,.1f}" if v not in ("NA", None) else "–"


def kb_mb(v):
    return f"{float(v) / 1024:,.1f}" if v not in ("NA", None) else "–"


def condensed(a, samples):
    """One row a minute (a row a sample when the run is shorter than 3 minutes):
    the values at the end of the step, req/s and CPU averaged over it, and the
    lowest and highest FD count and largest queue seen in it."""
    step = 60 if a.duration >= 180 else a.interval
    rows, bucket = [(None, samples[:1], samples[0])], []  # the first: before the load
    prev = samples[0]
    for s in samples[1:]:
        bucket.append(s)
        if s["t_s"] + a.interval / 2 >= len(rows) * step or s is samples[-1]:
            rows.append((prev, bucket, s))
            prev, bucket = s, []
    out = []
    for prev, bucket, end in rows:
        if prev is None:
            rps = cpu = "–"
        else:
            dt = end["_now"] - prev["_now"]
            rps = f"{(end['requests'] - prev['requests']) / dt:,.0f}" if dt > 0 else "–"
            cpu = f"{100 * (end['_ticks'] - prev['_ticks']) / drive.HZ / dt:.0f}" if dt > 0 else "–"
        fds = [s["fds"] for s in bucket if s["fds"] != "NA"]
        q = [s["log_queue"] for s in bucket if s["log_queue"] != "NA"]
        out.append([f"{end['t_s']:.0f}", rps, cpu, kb_mb(end["rss_kb"]), kb_mb(end["hwm_kb"]),
                    f"{min(fds)}–{max(fds)}" if fds and min(fds) != max(fds) else str(fds[0] if fds else "–"),
                    str(end["threads"]), mb(end["db_bytes"]), mb(end["wal_bytes"]),
                    f"{max(q):,}" if q else "–", f"{end['log_dropped']:,}" if end["log_dropped"] != "NA" else "–"])
    return out


def build_report(a, samples, after, v, wrks, portal, statuses, started):
    during = [s for s in samples if 0 < s["t_s"] <= a.duration + a.interval / 2]
    first, last = samples[0], during[-1] if during else samples[-1]
    rss = [num(s, "rss_kb") for s in during if num(s, "rss_kb") is not None]
    fds = [int(s["fds"]) for s in during if s["fds"] != "NA"]
    rps = [num(s, "rps") for s in during if num(s, "rps") is not None]
    queue = [int(s["log_queue"]) for s in samples if s["log_queue"] != "NA"]
    total = sum(statuses.values())
    o = [BEGIN, "<!-- Generated by bench/soak (bench/soak.py): run it again rather than editing. -->", "",
         f"## `bench/soak` results, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}", ""]
    o.append(f"- **Command**: `{a.command}`; commit {a.commit}.")
    o.append(f"- **Machine**: {report.machine()}; load average before the run: {a.load_before}.")
    o.append(f"- **Setup**: `devsphere serve --threads {a.threads} --trusted-proxy 127.0.0.1` on SQLite "
             f"(WAL), {a.keys:,} keys, {a.leads:,} leads and invoices seeded by `bench/seed.py`; "
             f"for {a.duration:g} s, `wrk -c{a.conns}` kept-alive and `wrk -c{a.churn_conns} "
             f"-H 'Connection: close'` with a {a.churn_delay_ms} ms delay (a new connection a request), "
             f"both replaying the mix below with `bench/wrk/requests.lua`; a portal administrator "
             f"signing in each minute and, every {a.portal_every:g} s, listing keys, creating one, "
             f"using it, revoking it, using it again (401) and listing the audit events. "
             f"A sample every {a.interval:g} s.")
    o.append("- **Mix**: " + "; ".join(f"{w} % {what}" for _, w, what in MIX) + ".")
    o.append("")
    o.append("| | start | end | peak |")
    o.append("|---|---:|---:|---:|")
    o.append(f"| VmRSS MB (start: before the load) | {kb_mb(first['rss_kb'])} | {kb_mb(last['rss_kb'])} | "
             f"{kb_mb(max(rss)) if rss else '–'} (VmHWM {kb_mb(last['hwm_kb'])}) |")
    o.append(f"| open file descriptors | {first['fds']} | {last['fds']} | {max(fds) if fds else '–'} "
             f"(after the load: {after['fds']}) |")
    o.append(f"| threads | {first['threads']} | {last['threads']} | "
             f"{max(int(s['threads']) for s in during if s['threads'] != 'NA') if during else '–'} |")
    o.append(f"| SQLite file / WAL MB | {mb(first['db_bytes'])} / {mb(first['wal_bytes'])} | "
             f"{mb(last['db_bytes'])} / {mb(last['wal_bytes'])} | – / "
             f"{mb(max(s['wal_bytes'] for s in samples))} |")
    o.append("")
    resp = " · ".join(f"{k} {100 * n / total:.1f} %" for k, n in sorted(statuses.items(), key=lambda kv: -kv[1])) \
        if total else "n/a"
    o.append(f"Requests: {sum(int(w['requests']) for w in wrks.values() if w):,} by wrk "
             f"(mean {statistics.mean(rps) if rps else 0:,.0f} req/s over all routes, lowest "
             f"{a.interval:g}-s sample {min(rps) if rps else 0:,.0f}); `/v1` responses: {resp}. "
             + " ".join(f"wrk {name}: {int(w['requests']):,} requests, {float(w['rps']):,.0f} req/s, "
                        f"p99 {float(w['p99_us']) / 1000:.1f} ms, {w['non2xx']} non-2xx, "
                        f"{sum(int(w[k]) for k in ('err_connect', 'err_read', 'err_write', 'err_timeout'))} "
                        f"socket errors." for name, w in wrks.items() if w))
    o.append(f"Request log: {after['log_written']:,} entries written, {after['log_dropped']:,} dropped, "
             f"largest queue seen {max(queue) if queue else 0:,}. Portal: {portal.signins} sign-ins, "
             f"{portal.keys} keys created and revoked, {portal.ops:,} calls, {portal.errors} unexpected "
             f"answers" + (f" ({'; '.join(portal.first_errors)})" if portal.first_errors else "") + ".")
    o.append("")
    word = {True: "flat", False: "GROWS", None: "no verdict"}[v["flat"]]
    o.append(f"**Verdict: {word}.** Rule: {v['rule']}." + (
        f" Compared: {v['samples_compared']} samples each, t = {v['window_first'][0]:.0f}–"
        f"{v['window_first'][1]:.0f} s against t = {v['window_last'][0]:.0f}–{v['window_last'][1]:.0f} s."
        if v.get("window_first") else ""))
    o.append("")
    for line in v["lines"]:
        o.append(f"- {line}")
    o.append("")
    if a.svg_link:
        o.append(f"![RSS and file descriptors during the soak]({a.svg_link})")
        o.append("")
    o.append("| t s | req/s | CPU % | RSS MB | HWM MB | FDs | threads | DB MB | WAL MB | log queue max | log dropped |")
    o.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in condensed(a, samples):
        o.append("| " + " | ".join(row) + " |")
    o.append("")
    o.append(f"Each row: the values at that moment; req/s (every route, from `/metrics`) and the "
             f"server's CPU (100 % = one core) averaged since the row before; FDs the lowest–highest "
             f"sampled in between. The first row is before the load. The CSV of every sample: "
             f"`bench/results/{os.path.basename(a.csv)}` (not committed).")
    o.append(END)
    return "\n".join(o) + "\n"


def draw(a, samples, v, path):
    pts = lambda k, f=1.0: [(s["t_s"], float(s[k]) / f) for s in samples if s[k] != "NA"]
    spans = [(0, min(a.warmup, a.duration), "warm-up")] if a.warmup > 0 else []
    half = a.interval / 2  # a window covers its samples' intervals
    for name, key in (("first third", "window_first"), ("last third", "window_last")):
        if v.get(key):
            spans.append((max(0, v[key][0] - half), min(a.duration, v[key][1] + half), name))
    plot.timeseries([
        ("Resident memory", "MB", [("VmRSS", plot.PALETTE[0], False, pts("rss_kb", 1024)),
                                   ("VmHWM", plot.PALETTE[0], True, pts("hwm_kb", 1024))]),
        ("Open file descriptors and threads", "count", [("FDs", plot.PALETTE[1], False, pts("fds")),
                                                        ("threads", plot.PALETTE[2], False, pts("threads"))]),
        ("Requests a second (every route)", "req/s", [("req/s", plot.PALETTE[3], False, pts("rps"))]),
    ], f"bench/soak: {a.duration:g} s under wrk (shaded: warm-up and the compared thirds)", path,
        spans=spans)


# ---- main -------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--pid", required=True, help="the server's PID")
    ap.add_argument("--db", required=True, help="the SQLite file")
    ap.add_argument("--reqdir", required=True, help="seed.py --out folder")
    ap.add_argument("--lua", required=True, help="bench/wrk/requests.lua")
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--churn-conns", type=int, default=2)
    ap.add_argument("--churn-delay-ms", type=int, default=10)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--portal-email", required=True)
    ap.add_argument("--portal-password-file", required=True)
    ap.add_argument("--portal-every", type=float, default=5)
    ap.add_argument("--rss-pct", type=float, default=20)
    ap.add_argument("--fd-slack", type=int, default=8)
    ap.add_argument("--thread-slack", type=int, default=2)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--docs", help="docs/benchmarks.md: replace (or append) the bench:soak block")
    ap.add_argument("--svg", help="draw RSS, FDs and req/s over time here")
    ap.add_argument("--svg-link", help="the SVG as the markdown links it")
    ap.add_argument("--smoke", action="store_true", help="print the verdict, do not fail on it")
    # For the report only:
    ap.add_argument("--command", default="bench/soak")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--load-before", default="?")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--keys", type=int, default=0)
    ap.add_argument("--leads", type=int, default=0)
    a = ap.parse_args()
    with open(os.path.join(a.reqdir, "meta.json")) as f:
        meta = json.load(f)
    with open(a.portal_password_file) as f:
        password = f.read().strip()

    fails = [f for name, _, _ in MIX for f in drive.check(a.base, name, a.reqdir, meta)]
    for f in fails:
        log("FAIL " + f)
    if fails:
        sys.exit(f"{len(fails)} scenario check(s) failed -- not soaking")
    mix = write_mix(a.reqdir, random.Random())
    logdir = os.path.dirname(a.csv)
    stem = os.path.splitext(os.path.basename(a.csv))[0]

    started = time.time()
    samples = [sample(a, started, None, None)]
    m0 = drive.metrics(a.base) or {"status": {}}
    t0 = time.time()
    main_wrk = start_wrk(a, mix, a.conns, os.path.join(logdir, f"{stem}-wrk-keepalive.txt"))
    churn_wrk = start_wrk(a, mix, a.churn_conns, os.path.join(logdir, f"{stem}-wrk-churn.txt"),
                          {"BENCH_DELAY_MS": str(a.churn_delay_ms)}, ("-H", "Connection: close"))
    time.sleep(1)
    for p, cmd in (main_wrk, churn_wrk):
        if p.poll() is not None:
            for q, _ in (main_wrk, churn_wrk):
                if q.poll() is None:
                    q.terminate()
            sys.exit(f"wrk exited at once ({' '.join(cmd)}); its output is in {logdir}")
    stop = threading.Event()
    portal = Portal(a.base, a.portal_email, password, a.portal_every, t0, stop)
    portal.start()
    log(f"load running for {a.duration:g} s: wrk -c{a.conns} kept-alive, wrk -c{a.churn_conns} "
        f"Connection: close, the portal every {a.portal_every:g} s; a sample every {a.interval:g} s")
    k = 1
    while k * a.interval <= a.duration + 1e-6:
        time.sleep(max(0.0, t0 + k * a.interval - time.time()))
        s = sample(a, t0, samples[-1], portal)
        samples.append(s)
        log(f"t={s['t_s']:5.0f}s  {s['rps']!s:>8} req/s  rss {kb_mb(s['rss_kb'])} MB "
            f"(anon {kb_mb(s['rss_anon_kb'])}, shmem {kb_mb(s['rss_shmem_kb'])})  "
            f"hwm {kb_mb(s['hwm_kb'])} MB  fds {s['fds']}  threads {s['threads']}  "
            f"db {mb(s['db_bytes'])} MB  wal {mb(s['wal_bytes'])} MB  queue {s['log_queue']}  "
            f"dropped {s['log_dropped']}  portal {s['portal_ops']}/{s['portal_errors']} err")
        k += 1
    stop.set()
    wrks, errors = {}, []
    for name, (p, cmd) in (("kept-alive", main_wrk), ("churn", churn_wrk)):
        res, err = wrk_result(p, cmd, os.path.join(logdir, f"{stem}-wrk-{'keepalive' if name == 'kept-alive' else 'churn'}.txt"))
        wrks[name] = res
        if err:
            errors.append(err)
    portal.join(timeout=60)
    m1 = drive.metrics(a.base) or {"status": {}}
    statuses = {k: m1["status"].get(k, 0) - m0["status"].get(k, 0) for k in m1["status"]}
    statuses = {k: n for k, n in statuses.items() if n}
    # Once the queue has drained: what is left when the load is gone.
    time.sleep(2)
    after = sample(a, t0, samples[-1], portal)

    v = verdict(a, samples)
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLS)
        for s in samples + [dict(after, t_s=f"{after['t_s']} (after)")]:
            w.writerow([s[c] for c in COLS])
    summary = {k: v2 for k, v2 in v.items() if k != "lines"}
    summary.update(statuses=statuses, wrk=wrks, portal={"ops": portal.ops, "errors": portal.errors,
                   "signins": portal.signins, "keys": portal.keys}, errors=errors,
                   command=a.command, commit=a.commit)
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=1)
    if a.svg:
        draw(a, samples, v, a.svg)
    block = build_report(a, samples, after, v, wrks, portal, statuses, started)
    with open(a.md, "w") as f:
        f.write(block)
    print(block)
    if a.docs:
        report.replace_block(a.docs, block, BEGIN, END)

    for err in errors:
        log("ERROR " + err)
    if portal.errors:
        log(f"ERROR portal: {portal.errors} unexpected answers: {'; '.join(portal.first_errors)}")
    for line in v["lines"]:
        log(line)
    word = {True: "FLAT", False: "GROWS", None: "no verdict"}[v["flat"]]
    log(f"verdict: {word}" + (" (SMOKE: not applied)" if a.smoke else ""))
    if errors or portal.errors or (v["flat"] is False and not a.smoke):
        sys.exit(1)


if __name__ == "__main__":
    main()
