#!/usr/bin/env python3
"""Throughput and p99 latency against connections, as SVG drawn by hand (no matplotlib).

    plot.py RESULTS.tsv OUT_DIR      -> OUT_DIR/throughput.svg and OUT_DIR/p99.svg

timeseries() draws lines over time the same way (bench/soak.py: memory and
file descriptors during a soak).

RESULTS.tsv is bench/drive.py's output (one row a wrk run). Each figure has a
panel per backend and scale; in each, one line per scenario through the
median of the runs at each connection count, and the nginx gateway measured in
the same run as a dashed grey line.
"""
import math
import os
import statistics
import sys
from html import escape

# Okabe-Ito, readable by the colour-blind; the gateway is grey.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
GATEWAY = "#888888"
PW, PH = 300, 190            # plot area of one panel
ML, MR, MT, MB = 62, 14, 28, 38
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def load(tsv):
    with open(tsv) as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def aggregate(rows):
    """(backend, scale, scenario, conns) -> medians and ranges over the runs, in first-seen order."""
    groups = {}
    for r in rows:
        k = (r["backend"], r["scale"], r["scenario"], int(r["conns"]))
        groups.setdefault(k, []).append(r)
    out = {}
    for k, rs in groups.items():
        def med(col):
            v = [num(r[col]) for r in rs]
            return statistics.median(v) if v and None not in v else None
        rps = [float(r["rps"]) for r in rs]
        out[k] = {
            "runs": rs, "n": len(rs), "rps": statistics.median(rps), "rps_min": min(rps),
            "rps_max": max(rps), "p50_ms": med("p50_us") / 1000, "p99_ms": med("p99_us") / 1000,
            "cpu_us": med("server_cpu_us_per_req"), "db_us": med("db_cpu_us_per_req"),
        }
    return out


def scale_label(s):
    n, _, orgs = s.partition("/")
    n = int(n)
    txt = f"{n // 1000000}M" if n >= 1000000 and n % 1000000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))
    return f"{txt} keys+leads" + (f", {orgs} orgs" if orgs else ", 1 org")


def nice_step(span, target=5):
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_num(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def figure(agg, metric, title, ylabel, log_y, path):
    blocks = []
    for (b, s, _, _) in agg:
        if (b, s) not in blocks:
            blocks.append((b, s))
    backends = list(dict.fromkeys(b for b, _ in blocks))
    scales = list(dict.fromkeys(s for _, s in blocks))
    scenarios = list(dict.fromkeys(sc for (_, _, sc, _) in agg if sc != "gateway"))
    colors = {sc: PALETTE[i % len(PALETTE)] for i, sc in enumerate(scenarios)}
    conns_all = sorted({c for (_, _, _, c) in agg})
    cols, nrows = len(scales), len(backends)
    W = max(cols * (ML + PW + MR) + 10, 760)
    per_row = max(1, (W - 10) // 150)
    legend_h = 22 * ((len(scenarios) + per_row) // per_row) + 8
    H = 40 + legend_h + nrows * (MT + PH + MB) + 10
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT} font-size="11">',
         f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
         f'<text x="10" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    # legend
    items = [("gateway (nginx)", GATEWAY, True)] + [(sc, colors[sc], False) for sc in scenarios]
    lx, ly = 10, 42
    for name, col, dashed in items:
        if lx + 150 > W:
            lx, ly = 10, ly + 22
        o.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{col}" stroke-width="2.5"'
                 + (' stroke-dasharray="6 4"' if dashed else "") + "/>")
        o.append(f'<circle cx="{lx + 12}" cy="{ly - 4}" r="3" fill="{col}"/>')
        o.append(f'<text x="{lx + 30}" y="{ly}">{escape(name)}</text>')
        lx += 150
    top0 = 40 + legend_h
    xs_lo, xs_hi = math.log2(conns_all[0]), math.log2(conns_all[-1])
    if xs_hi == xs_lo:
        xs_lo, xs_hi = xs_lo - 1, xs_hi + 1
    for bi, backend in enumerate(backends):
        for si, scale in enumerate(scales):
            if (backend, scale) not in blocks:
                continue
            ox = 10 + si * (ML + PW + MR) + ML
            oy = top0 + bi * (MT + PH + MB) + MT
            series = {}
            for (b, s, sc, c), v in agg.items():
                if b == backend and s == scale and v[metric] is not None and v[metric] > 0:
                    series.setdefault(sc, []).append((c, v[metric]))
            # One y range per backend (row), so the scales can be compared by eye.
            vals = [v[metric] for (b, _, _, _), v in agg.items()
                    if b == backend and v[metric] is not None and v[metric] > 0]
            if not vals or not series:
                continue
            if log_y:
                lo = 10 ** math.floor(math.log10(min(vals)))
                hi = 10 ** math.ceil(math.log10(max(vals)))
                if hi == lo:
                    hi = lo * 10
                fy = lambda y: oy + PH - (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * PH
                ticks, t = [], lo
                while t <= hi * 1.0001:
                    ticks.append(t)
                    t *= 10
                label = lambda t: f"{t:g}"
            else:
                step = nice_step(max(vals) * 1.08)
                hi = step * math.ceil(max(vals) * 1.08 / step)
                fy = lambda y: oy + PH - y / hi * PH
                ticks = [i * step for i in range(int(round(hi / step)) + 1)]
                label = fmt_num
            fx = lambda c: ox + (math.log2(c) - xs_lo) / (xs_hi - xs_lo) * PW
            o.append(f'<text x="{ox}" y="{oy - 10}" font-weight="bold">{escape(backend)} — {escape(scale_label(scale))}</text>')
            o.append(f'<rect x="{ox}" y="{oy}" width="{PW}" height="{PH}" fill="none" stroke="#bbbbbb"/>')
            for t in ticks:
                y = fy(t)
                o.append(f'<line x1="{ox}" y1="{y:.1f}" x2="{ox + PW}" y2="{y:.1f}" stroke="#eeeeee"/>')
                o.append(f'<text x="{ox - 5}" y="{y + 4:.1f}" text-anchor="end">{label(t)}</text>')
            for c in conns_all:
                x = fx(c)
                o.append(f'<line x1="{x:.1f}" y1="{oy}" x2="{x:.1f}" y2="{oy + PH}" stroke="#f3f3f3"/>')
                o.append(f'<text x="{x:.1f}" y="{oy + PH + 14}" text-anchor="middle">{c}</text>')
            o.append(f'<text x="{ox + PW / 2}" y="{oy + PH + 30}" text-anchor="middle" fill="#555555">connections (wrk -c)</text>')
            o.append(f'<text transform="translate({ox - 48},{oy + PH / 2}) rotate(-90)" text-anchor="middle" fill="#555555">{escape(ylabel)}</text>')
            for sc in ["gateway"] + scenarios:
                pts = sorted(series.get(sc, []))
                if not pts:
                    continue
                col = GATEWAY if sc == "gateway" else colors[sc]
                d = " ".join(f"{fx(c):.1f},{fy(y):.1f}" for c, y in pts)
                dash = ' stroke-dasharray="6 4"' if sc == "gateway" else ""
                o.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="2"{dash}/>')
                for c, y in pts:
                    o.append(f'<circle cx="{fx(c):.1f}" cy="{fy(y):.1f}" r="3" fill="{col}">'
                             f'<title>{escape(sc)} c={c}: {y:,.3g}</title></circle>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def timeseries(panels, title, path, spans=(), xlabel="seconds"):
    """Line charts over time, one panel under the other, sharing the x axis.

    panels: [(panel title, y label, [(series name, colour, dashed, [(x, y), ...]), ...])];
    spans: [(x0, x1, label)] shaded in every panel (a warm-up, the compared windows).
    The y axis starts at 0, so a flat line looks flat and growth is seen to scale.
    """
    xs = [x for _, _, series in panels for *_, pts in series for x, _ in pts]
    if not xs:
        return
    x_hi = max(xs) or 1
    xstep = nice_step(x_hi)
    x_hi = xstep * math.ceil(x_hi / xstep)
    W = ML + PW * 2 + MR + 20
    ph = PH
    H = 40 + len(panels) * (MT + ph + MB) + 10
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT} font-size="11">',
         f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
         f'<text x="10" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    pw = PW * 2
    for pi, (ptitle, ylabel, series) in enumerate(panels):
        ox, oy = 10 + ML, 40 + pi * (MT + ph + MB) + MT
        vals = [y for *_, pts in series for _, y in pts]
        step = nice_step(max(max(vals) * 1.1, 1e-9))
        hi = step * math.ceil(max(vals) * 1.1 / step) if max(vals) > 0 else 1
        fx = lambda x: ox + x / x_hi * pw
        fy = lambda y: oy + ph - y / hi * ph
        o.append(f'<text x="{ox}" y="{oy - 10}" font-weight="bold">{escape(ptitle)}</text>')
        for x0, x1, label in spans:
            o.append(f'<rect x="{fx(x0):.1f}" y="{oy}" width="{fx(x1) - fx(x0):.1f}" height="{ph}" fill="#f2f2f2"/>')
            o.append(f'<text x="{(fx(x0) + fx(x1)) / 2:.1f}" y="{oy + 12}" text-anchor="middle" fill="#777777">{escape(label)}</text>')
        o.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#bbbbbb"/>')
        for i in range(int(round(hi / step)) + 1):
            y = fy(i * step)
            o.append(f'<line x1="{ox}" y1="{y:.1f}" x2="{ox + pw}" y2="{y:.1f}" stroke="#eeeeee"/>')
            o.append(f'<text x="{ox - 5}" y="{y + 4:.1f}" text-anchor="end">{fmt_num(i * step)}</text>')
        for i in range(int(round(x_hi / xstep)) + 1):
            x = fx(i * xstep)
            o.append(f'<text x="{x:.1f}" y="{oy + ph + 14}" text-anchor="middle">{fmt_num(i * xstep)}</text>')
        o.append(f'<text x="{ox + pw / 2}" y="{oy + ph + 30}" text-anchor="middle" fill="#555555">{escape(xlabel)}</text>')
        o.append(f'<text transform="translate({ox - 48},{oy + ph / 2}) rotate(-90)" text-anchor="middle" fill="#555555">{escape(ylabel)}</text>')
        lx = ox + pw
        for name, col, dashed, pts in reversed(series):
            d = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in pts)
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            o.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="2"{dash}/>')
            lx -= 7 * len(name) + 40
            o.append(f'<line x1="{lx}" y1="{oy - 14}" x2="{lx + 24}" y2="{oy - 14}" stroke="{col}" stroke-width="2.5"{dash}/>')
            o.append(f'<text x="{lx + 30}" y="{oy - 10}">{escape(name)}</text>')
    o.append("</svg>")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def plot(agg, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    figure(agg, "rps", "Throughput against connections (median req/s; dashed: nginx gateway, same run)",
           "req/s", False, os.path.join(out_dir, "throughput.svg"))
    figure(agg, "p99_ms", "p99 latency against connections (median of runs; log scale)",
           "p99 ms", True, os.path.join(out_dir, "p99.svg"))
    return ["throughput.svg", "p99.svg"]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    plot(aggregate(load(sys.argv[1])), sys.argv[2])
