#!/usr/bin/env bash
# Sets up and runs every test: unit (GoogleTest via CTest), integration (the
# real binary over HTTP, Node's test runner) and browser (the portal in
# Debian's Chromium, driven by playwright-core from npm; no browser download),
# then the same unit and integration suites under ASan + UBSan and a bounded
# fuzzing run. DVS_FUZZ_SECONDS sets the seconds per fuzz harness (60).
source "$(dirname "$0")/lib.sh"
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
build ON
cd "$ROOT"

# Throwaway PostgreSQL and Redis servers on free loopback ports, stopped at exit.
WORK=$(mktemp -d /tmp/dvs-test.XXXXXX)
cleanup() {
  scripts/redis-test-server.sh stop "$WORK/redis" || true
  scripts/pg-test-server.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
DVS_TEST_REDIS_URL=$(scripts/redis-test-server.sh start "$WORK/redis")
DVS_TEST_PG_URL=$(scripts/pg-test-server.sh start "$WORK/pg")
export DVS_TEST_REDIS_URL DVS_TEST_PG_URL
echo "test servers: $DVS_TEST_PG_URL, $DVS_TEST_REDIS_URL"
# Every integration test environment saves what the service wrote here, for
# the secrets sweep at the end.
DVS_TEST_SWEEP_DIR="$WORK/sweep"
mkdir -p "$DVS_TEST_SWEEP_DIR"
export DVS_TEST_SWEEP_DIR
echo "== unit tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
echo "== integration tests (node --test, the real binary over HTTP)"
(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
node --test tests/integration/
echo "== integration tests on PostgreSQL (DVS_TEST_BACKEND=postgres, a database per file)"
DVS_TEST_BACKEND=postgres node --test tests/integration/
echo "== browser tests (node --test, playwright-core + /usr/bin/chromium)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
node --test tests/e2e/
echo "== benchmark smoke run (bench/run starts and every scenario answers; figures are not checked)"
SMOKE=1 BUILD=0 BIN=build/devsphere BACKENDS=sqlite DOCS=0 bench/run > "$WORK/bench-smoke.log" 2>&1 \
  || { tail -40 "$WORK/bench-smoke.log"; exit 1; }
tail -1 "$WORK/bench-smoke.log"
echo "== secrets sweep (no secret, password, cookie or Authorization in any file the service wrote)"
node tests/integration/sweep.mjs "$DVS_TEST_SWEEP_DIR"
# Second and third build directories (docs/fuzzing.md); they reuse the test
# servers above (sanitize.sh leaves the secrets sweep to the run above).
echo "== unit and integration suites under ASan + UBSan (scripts/sanitize.sh, build-asan/)"
scripts/sanitize.sh
echo "== fuzzing: each libFuzzer harness for ${DVS_FUZZ_SECONDS:-60} s (scripts/fuzz.sh, build-fuzz/)"
scripts/fuzz.sh "${DVS_FUZZ_SECONDS:-60}"
