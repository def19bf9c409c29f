#!/usr/bin/env bash
# Sets up and runs every test: unit (GoogleTest via CTest) and integration
# (the real binary over HTTP, Node's test runner).
source "$(dirname "$0")/lib.sh"
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
build ON
cd "$ROOT"
echo "== unit tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
echo "== integration tests (node --test, the real binary over HTTP)"
node --test tests/integration/
