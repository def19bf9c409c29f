#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) into build-fuzz/ and runs
# each one for a bounded time. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS_EACH] [HARNESS...]
#
# SECONDS_EACH defaults to 60; the test command uses a few seconds, a long
# manual run is `scripts/fuzz.sh 3600`. Each harness first replays its seed
# corpus (fuzz/corpus/H) and its saved crashes (fuzz/regressions/H), then
# mutates a fresh copy of the corpus (the repository is never written to).
# Fails on any crash, sanitizer report, leak, timeout (10 s for one input) or
# memory blow-up (2 GiB), and prints the path of the input that caused it.
# DVS_JOBS overrides the build's parallelism (default: nproc).
source "$(dirname "$0")/lib.sh"
ensure_packages "${BUILD_PACKAGES[@]}" clang libclang-rt-14-dev
cd "$ROOT"

ALL=(key_parse authorization cursor query api_json import_row http_request)
SECONDS_EACH="${1:-60}"
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_EACH] [HARNESS...]" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))
HARNESSES=("$@")
((${#HARNESSES[@]})) || HARNESSES=("${ALL[@]}")

BUILD="$ROOT/build-fuzz"
# -O1 without NDEBUG: asserts (ours and Boost's) stay on while fuzzing.
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DDVS_BUILD_TESTS=OFF -DDVS_FUZZ=ON >/dev/null
targets=()
for h in "${HARNESSES[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$BUILD" -j "${DVS_JOBS:-$(nproc)}" --target "${targets[@]}"

RUN="$BUILD/runs/$(date +%Y%m%d-%H%M%S)"
WORK=$(mktemp -d /tmp/dvs-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RUN"
export TMPDIR="$WORK"  # the harnesses' SQLite files
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

failed=()
for h in "${HARNESSES[@]}"; do
  corpus="$WORK/corpus/$h"
  mkdir -p "$corpus" "$RUN/$h"
  cp -R "$ROOT/fuzz/corpus/$h/." "$corpus/" 2>/dev/null || true
  dirs=("$corpus")
  [[ -d "$ROOT/fuzz/regressions/$h" ]] && dirs+=("$ROOT/fuzz/regressions/$h")
  opts=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$RUN/$h/")
  [[ -f "$ROOT/fuzz/dict/$h.dict" ]] && opts+=(-dict="$ROOT/fuzz/dict/$h.dict")
  log="$RUN/$h.log"
  start=$SECONDS
  set +e
  "$BUILD/fuzz/fuzz_$h" "${opts[@]}" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  shopt -s nullglob
  found=("$RUN/$h"/crash-* "$RUN/$h"/leak-* "$RUN/$h"/timeout-* "$RUN/$h"/oom-*)
  shopt -u nullglob
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if ((rc != 0)) || ((${#found[@]})); then
    failed+=("$h")
    echo "FUZZ FAILED: $h (exit $rc) after $((SECONDS - start)) s; log: $log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|FUZZ PROPERTY|.*runtime error|fuzz env)' "$log" |
      head -5 >&2 || true
    for f in "${found[@]}"; do echo "  input: $f" >&2; done
    # The input itself, for a CI log whose files are gone (libFuzzer prints it).
    grep -m1 '^Base64: ' "$log" | cut -c1-2000 >&2 || true
    echo "  reproduce: $BUILD/fuzz/fuzz_$h ${found[0]:-<input>}" >&2
  else
    echo "fuzz $h: ok, ${runs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov: ?}"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs in $RUN)" >&2
  exit 1
fi
echo "fuzz: all ${#HARNESSES[@]} harnesses passed (logs in $RUN)"
