# bench/lib.sh -- shared by bench/run and bench/soak: logging, the Release
# build, and starting and stopping one devsphere server. Sourced, not run.
# The caller sets ROOT (the repository) and may set LOG_TAG (default "bench").

# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

log() { printf '[%s %s] %s\n' "${LOG_TAG:-bench}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# build_release: configures and builds $ROOT/build-release (Release, no tests).
build_release() {
  log "building $ROOT/build-release (Release)"
  cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDVS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-release" -j "$(nproc)" >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server BIN PORT LOGFILE [SERVE ARGS...]: starts `BIN serve` on
# 127.0.0.1:PORT in the background, sets SERVER_PID, and waits (30 s at most)
# until /readyz answers; dies with the server's log otherwise. The server gets
# a clean environment: no pepper (bench/seed.py stores plain SHA-256 hashes),
# no config file, nothing else from the caller's DVS_*.
SERVER_PID=""
start_server() {
  local bin=$1 port=$2 logfile=$3
  shift 3
  local unset_dvs=() v _
  for v in $(compgen -v DVS_ || true); do unset_dvs+=(-u "$v"); done
  env "${unset_dvs[@]}" "$bin" serve --listen "127.0.0.1:$port" "$@" >"$logfile" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$logfile" >&2; die "devsphere did not start"; }
}

# stop_server: SIGTERM to SERVER_PID (by its PID, never by name), SIGKILL
# after 10 s; returns at once when no server is running.
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local _
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SERVER_PID" 2>/dev/null && { log "devsphere $SERVER_PID did not stop; SIGKILL"; kill -KILL "$SERVER_PID"; }
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
