#!/usr/bin/env bash
# Sets up and runs the service on the embedded default: SQLite in
# ./devsphere-data, demo data, prints the login and the URL. Extra arguments go
# to `devsphere serve` (e.g. --listen 0.0.0.0:8080).
source "$(dirname "$0")/lib.sh"
ensure_packages "${BUILD_PACKAGES[@]}"
build OFF
cd "$ROOT"
exec ./build/devsphere serve --demo "$@"
