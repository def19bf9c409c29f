#!/usr/bin/env bash
# A throwaway Redis for tests, on a free loopback port, no persistence.
#   redis-test-server.sh start DIR   -> prints redis://127.0.0.1:PORT
#   redis-test-server.sh stop DIR    -> stops it (by the PID in DIR/redis.pid)
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
case "$cmd" in
  start)
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
      || node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$port" > "$dir/port"
    echo "redis://127.0.0.1:$port"
    ;;
  stop)
    [[ -f "$dir/redis.pid" ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    ;;
esac
