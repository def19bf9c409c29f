#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests, on a free loopback port.
#
#   scripts/pg-test-server.sh start DIR   prints postgresql://postgres@127.0.0.1:PORT/devsphere_test
#   scripts/pg-test-server.sh stop DIR    stops it and removes its data
#
# Everything lives in DIR (data/, server.log, the socket, port), or, when the
# postgres user cannot write to DIR, in a /tmp folder of its own named in DIR/home.
# Installs the `postgresql` package when its binaries are missing. PostgreSQL
# refuses to run as root, so as root the server runs as the `postgres` user.
# Durability is switched off (fsync, synchronous_commit): test data only.
# Only the URL goes to stdout; progress and errors go to stderr.
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
DB_NAME=devsphere_test

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

(($# == 2)) || usage
CMD="$1"
DIR="$2"
[[ -n "$DIR" && "$DIR" != "/" ]] || usage

# as_pg CMD...: runs CMD as the postgres user when we are root, else as ourselves.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  if [[ ! -x "$PGBIN/initdb" ]]; then
    # shellcheck source=scripts/lib.sh
    source "$(dirname "$0")/lib.sh"
    ensure_packages postgresql >&2
  fi
  [[ -x "$PGBIN/initdb" ]] || { echo "no PostgreSQL 15 in $PGBIN" >&2; exit 1; }

  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if [[ -f "$DIR/home" ]] &&
    as_pg "$PGBIN/pg_ctl" -D "$(cat "$DIR/home")/data" status >/dev/null 2>&1; then
    echo "a server is already running for $DIR; run: $0 stop $DIR" >&2
    exit 1
  fi
  # The server's folder (data, socket, log) must be reachable by the postgres
  # user: DIR itself when it is, else (say DIR is inside a mktemp -d folder,
  # mode 700) a folder of its own, recorded in DIR/home.
  local home="$DIR"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$DIR"
    if ! runuser -u postgres -- test -w "$DIR"; then
      home="$(runuser -u postgres -- mktemp -d /tmp/dvs-pg.XXXXXX)"
    fi
  fi
  echo "$home" >"$DIR/home"
  local data="$home/data"
  as_pg rm -rf "$data"
  as_pg mkdir -m 700 "$data"
  # Sorting by ICU's en-US, as a typical production server does (where "a" <
  # "B"), so the tests catch any ordering that relies on a byte-order default.
  as_pg "$PGBIN/initdb" -D "$data" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --locale-provider=icu --icu-locale=en-US --no-sync >"$DIR/initdb.log" 2>&1 ||
    { cat "$DIR/initdb.log" >&2; exit 1; }

  # A port is free when nothing answers on it; another process can still take
  # it before the server binds, so a failed start is retried on another port.
  local opts="-k $home -c listen_addresses=127.0.0.1"
  opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  local port="" _
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    if as_pg "$PGBIN/pg_ctl" -D "$data" -l "$home/server.log" -w -t 30 \
      -o "$opts -p $port" start >/dev/null; then
      break
    fi
    port=""
  done
  if [[ -z "$port" ]]; then
    echo "cannot start PostgreSQL; see $home/server.log" >&2
    exit 1
  fi
  echo "$port" >"$DIR/port"
  as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME"
  echo "postgresql://postgres@127.0.0.1:$port/$DB_NAME"
}

stop() {
  [[ -f "$DIR/home" ]] || { echo "no server recorded in $DIR" >&2; return 0; }
  local home
  home="$(cat "$DIR/home")"
  [[ -n "$home" && "$home" != "/" ]] || { echo "bad $DIR/home" >&2; return 1; }
  if [[ -f "$home/data/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null
  fi
  rm -rf "${home:?}/data" "$home/server.log" "${DIR:?}/port" "${DIR:?}/home" "${DIR:?}/initdb.log"
  [[ "$home" == "$DIR" ]] || rmdir "$home" 2>/dev/null || true
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
