#!/usr/bin/env bash
# GET /v1/leads?limit=20 on SQLite beside the nginx API-gateway anchor, in the
# same run (../shared/bench/anchor-nginx). Builds Release, seeds 1,000 leads
# and 10,000 keys, starts the server, runs the kit, stops the server.
# (The figure of 2026-11-29; bench/run covers every scenario and scale.)
# Env: RUNS, DURATION (passed to the kit), PORT (default 18090), THREADS (2).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KIT="$ROOT/../shared/bench/anchor-nginx"
command -v wrk >/dev/null && command -v nginx >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk python3 >/dev/null; }
cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDVS_BUILD_TESTS=OFF >/dev/null
cmake --build "$ROOT/build-release" -j "$(nproc)" >/dev/null
W=$(mktemp -d /tmp/dvs-bench.XXXXXX)
trap '[[ -n "${PID:-}" ]] && kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
BIN="$ROOT/build-release/devsphere"
python3 "$ROOT/bench/seed.py" --bin "$BIN" --db "sqlite:$W/bench.db" --out "$W" \
  --keys 10000 --leads 1000 --invoices 1000 2>/dev/null
PORT=${PORT:-18090}
"$BIN" serve --listen "127.0.0.1:$PORT" --db "sqlite:$W/bench.db" --threads "${THREADS:-2}" \
  >"$W/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
cd "$KIT"
PRODUCT_URL="http://127.0.0.1:$PORT/v1/leads?limit=20" PRODUCT_PIDS="$PID" \
  KEYS_FILE="$W/keys.txt" RESULTS_DIR="$ROOT/bench/results" ./run.sh "$@"
