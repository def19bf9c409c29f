# Shared by run.sh and test.sh: install what is missing, then build.
# Sourced, not run. Needs root (or sudo) only when a package is missing.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

BUILD_PACKAGES=(g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsodium-dev libsqlite3-dev libspdlog-dev libcli11-dev libhiredis-dev libpq-dev)
TEST_PACKAGES=(libgtest-dev googletest sqlite3 nodejs npm chromium postgresql redis-server nginx-light wrk python3 python3-requests)

# ensure_packages PKG...: apt-get installs the ones that are not installed.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # A node/npm from elsewhere (e.g. a newer one already on PATH) is fine too.
  if command -v node >/dev/null; then missing=("${missing[@]/#nodejs/}"); fi
  if command -v npm >/dev/null; then missing=("${missing[@]/#npm/}"); fi
  local want=()
  for p in "${missing[@]}"; do [[ -n "$p" ]] && want+=("$p"); done
  ((${#want[@]})) || return 0
  echo "installing: ${want[*]}" >&2
  local SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

# build [TESTS=ON|OFF]: configures (once) and builds into build/.
build() {
  local tests="${1:-ON}"
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDVS_BUILD_TESTS="$tests" >/dev/null
  cmake --build "$ROOT/build" -j "$(nproc)"
}
