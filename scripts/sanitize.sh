#!/usr/bin/env bash
# The unit and integration suites under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/sanitize.sh            build build-asan/ (g++, -DDVS_SANITIZE=ON), run ctest
#                                  and `node --test tests/integration/` against
#                                  build-asan/devsphere; fails on any test failure
#                                  or any sanitizer report from any process.
#
# Sanitizer reports go to files (log_path, and a UBSan hook) as well as or
# instead of stderr, so a report from a server started by the integration
# harness, or from a CLI it runs, cannot go unnoticed: the run fails when any
# such file exists, and prints them.
# Uses DVS_TEST_REDIS_URL / DVS_TEST_PG_URL when set (scripts/test.sh starts them);
# otherwise starts its own throwaway Redis (and PostgreSQL when the script for
# it exists). DVS_SANITIZE_BACKENDS="sqlite postgres" also runs the integration
# suite on PostgreSQL (default: sqlite only; the unit contract suite covers
# both). DVS_JOBS overrides the build's parallelism (default: nproc).
source "$(dirname "$0")/lib.sh"
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
cd "$ROOT"

BUILD="$ROOT/build-asan"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDVS_BUILD_TESTS=ON -DDVS_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j "${DVS_JOBS:-$(nproc)}"

WORK=$(mktemp -d /tmp/dvs-sanitize.XXXXXX)
started_redis=0 started_pg=0
cleanup() {
  ((started_redis)) && scripts/redis-test-server.sh stop "$WORK/redis" || true
  ((started_pg)) && scripts/pg-test-server.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -z "${DVS_TEST_REDIS_URL:-}" ]]; then
  DVS_TEST_REDIS_URL=$(scripts/redis-test-server.sh start "$WORK/redis")
  started_redis=1
fi
export DVS_TEST_REDIS_URL
if [[ -z "${DVS_TEST_PG_URL:-}" && -x scripts/pg-test-server.sh ]]; then
  if DVS_TEST_PG_URL=$(scripts/pg-test-server.sh start "$WORK/pg"); then
    started_pg=1
    export DVS_TEST_PG_URL
  else
    echo "sanitize: no PostgreSQL test server; its tests are skipped" >&2
    unset DVS_TEST_PG_URL
  fi
fi

REPORTS="$WORK/reports"
mkdir -p "$REPORTS"
# One file per process that reports: asan.PID (ASan, LSan), ubsan.PID (UBSan,
# through fuzz/ubsan_report_hook.cpp, since g++'s libubsan ignores log_path
# next to ASan). UBSan also aborts the process, so the failing test shows it.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$REPORTS/ubsan"
export DVS_UBSAN_REPORT_DIR="$REPORTS"

status=0
echo "== unit tests under ASan+UBSan (ctest --test-dir build-asan)"
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" || status=1
# ctest keeps every test's output: a report printed on stderr is in it too.
if grep -qE 'runtime error: |==[0-9]+==(ERROR|WARNING): [A-Za-z]*Sanitizer' \
    "$BUILD/Testing/Temporary/LastTest.log" 2>/dev/null; then
  cp "$BUILD/Testing/Temporary/LastTest.log" "$REPORTS/ctest-output.log"
fi
if [[ -f tests/integration/package.json && ! -d tests/integration/node_modules ]]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi
# The secrets sweep (scripts/test.sh) covers the normal run; not repeated here.
unset DVS_TEST_SWEEP_DIR
for backend in ${DVS_SANITIZE_BACKENDS:-sqlite}; do
  echo "== integration tests under ASan+UBSan on $backend (DEVSPHERE_BIN=build-asan/devsphere)"
  if [[ "$backend" == sqlite ]]; then
    DEVSPHERE_BIN="$BUILD/devsphere" node --test tests/integration/ || status=1
  else
    DVS_TEST_BACKEND="$backend" DEVSPHERE_BIN="$BUILD/devsphere" node --test tests/integration/ ||
      status=1
  fi
done

shopt -s nullglob
reports=("$REPORTS"/*)
if ((${#reports[@]})); then
  echo "== sanitizer reports: ${#reports[@]}" >&2
  for f in "${reports[@]}"; do
    echo "---- $f" >&2
    grep -E -B 2 -A 40 'runtime error: |Sanitizer' "$f" | head -n 80 >&2
  done
  status=1
fi
if ((status)); then
  echo "sanitize: FAILED" >&2
else
  echo "sanitize: passed, no sanitizer report"
fi
exit "$status"
