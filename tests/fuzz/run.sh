#!/usr/bin/env bash
# Builds the `fuzz` preset (clang, libFuzzer, ASan+UBSan) and runs every fuzz target for a
# bounded time, then prints a summary table. Exit status 0 only when no target found a
# crash, a sanitizer report, a violated property, a leak, a timeout or an OOM.
#
#   tests/fuzz/run.sh [TARGET...]        default: native flask base64url config sealer
#
# Environment:
#   FUZZ_SECONDS=60     time per target (libFuzzer -max_total_time)
#   FUZZ_TIMEOUT=10     seconds one input may take before it counts as a hang (-timeout)
#   FUZZ_RSS_MB=2048    memory limit per target (-rss_limit_mb)
#   FUZZ_PARALLEL=1     targets run at the same time (default: one after the other)
#   FUZZ_NO_BUILD=1     skip configure/build (use what is in build/fuzz)
#   FUZZ_OUT=build/fuzz/out    logs (<target>.log) and crash artifacts (artifacts/<target>/)
#   JOBS=$(nproc)       build parallelism
#
# Each run starts from a scratch copy of tests/fuzz/corpus/<target>/ (the committed seeds
# never grow; the scratch corpus is deleted afterwards), plus the known reproducers of
# tests/fuzz/crashes/<target>/ (read only). A failing input is kept in
# $FUZZ_OUT/artifacts/<target>/; reproduce it with
#   build/fuzz/tests/fuzz/fuzz_<target> <file>
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
ALL_TARGETS="native flask base64url config sealer"
TARGETS=${*:-$ALL_TARGETS}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
PARALLEL=${FUZZ_PARALLEL:-1}
OUT=${FUZZ_OUT:-$ROOT/build/fuzz/out}
BIN_DIR=$ROOT/build/fuzz/tests/fuzz
JOBS=${JOBS:-$(nproc)}

for t in $TARGETS; do
  case " $ALL_TARGETS " in *" $t "*) ;; *) echo "run.sh: unknown target '$t' (known: $ALL_TARGETS)" >&2; exit 2 ;; esac
done
case "$SECONDS_PER_TARGET" in ''|*[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a whole number" >&2; exit 2 ;; esac

# --- build -------------------------------------------------------------------------------
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  for tool in clang clang++ cmake; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "run.sh: $tool not found (Debian: apt-get install clang-14 libclang-rt-14-dev cmake)" >&2
      exit 2
    }
  done
  if [ ! -f .cache/boringssl/src-tree/android-sources.cmake ]; then
    sh scripts/fetch-boringssl.sh || exit 2
  fi
  export CC=clang CXX=clang++
  start=$(date +%s)
  if ! cmake --preset fuzz >"$ROOT/build/fuzz-configure.log" 2>&1; then
    cat "$ROOT/build/fuzz-configure.log" >&2
    echo "run.sh: configure failed" >&2
    exit 2
  fi
  if ! cmake --build --preset fuzz -j "$JOBS"; then
    echo "run.sh: build failed (libFuzzer needs libclang-rt-14-dev)" >&2
    exit 2
  fi
  echo "run.sh: fuzz build took $(( $(date +%s) - start )) s"
fi
for t in $TARGETS; do
  [ -x "$BIN_DIR/fuzz_$t" ] || { echo "run.sh: $BIN_DIR/fuzz_$t missing" >&2; exit 2; }
done

# --- run ---------------------------------------------------------------------------------
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sessiontoken-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$OUT/artifacts"
# Sanitizer reports must end the run with a non-zero status; symbolize stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

run_target() {
  local t=$1 corpus=$SCRATCH/corpus/$t art=$OUT/artifacts/$t
  rm -rf "$art" && mkdir -p "$art" "$corpus"
  cp -R "tests/fuzz/corpus/$t/." "$corpus/"
  local extra=()
  [ -f "tests/fuzz/$t.dict" ] && extra+=(-dict="tests/fuzz/$t.dict")
  # Known reproducers are read (never written) as a second corpus: a regression fails at once.
  [ -d "tests/fuzz/crashes/$t" ] && extra+=("tests/fuzz/crashes/$t")
  "$BIN_DIR/fuzz_$t" "$corpus" "${extra[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=5000 -timeout="$TIMEOUT" \
    -rss_limit_mb="$RSS_MB" -print_final_stats=1 -artifact_prefix="$art/" \
    >"$OUT/$t.log" 2>&1
  echo $? >"$SCRATCH/$t.rc"
}

echo "run.sh: fuzzing [$TARGETS] for ${SECONDS_PER_TARGET}s each (logs: $OUT)"
running=0
for t in $TARGETS; do
  if [ "$PARALLEL" -gt 1 ]; then
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$PARALLEL" ]; then wait -n; running=$((running - 1)); fi
  else
    echo "run.sh: $t ..."
    run_target "$t"
  fi
done
wait

# --- summary -----------------------------------------------------------------------------
classify() {  # log rc -> result word
  local log=$1 rc=$2
  if grep -q "ERROR: libFuzzer: timeout" "$log"; then echo TIMEOUT
  elif grep -q "ERROR: LeakSanitizer" "$log"; then echo LEAK
  elif grep -qE "ERROR: libFuzzer: (out-of-memory|malloc limit)" "$log"; then echo OOM
  elif grep -q "ERROR: AddressSanitizer" "$log"; then echo ASAN
  elif grep -q "runtime error:" "$log"; then echo UBSAN
  elif grep -q "property violated" "$log"; then echo PROPERTY
  elif grep -qE "ERROR: libFuzzer|SUMMARY: " "$log"; then echo CRASH
  elif [ "$rc" != 0 ]; then echo "EXIT-$rc"
  elif ! grep -q "^Done [0-9]* runs" "$log"; then echo INCOMPLETE
  else echo ok
  fi
}

failed=0
printf '\n%-10s %-9s %12s %6s %10s %6s %7s %8s %7s\n' \
  target result execs secs "exec/s" cov ft corpus rss_mb
for t in $TARGETS; do
  log=$OUT/$t.log
  rc=$(cat "$SCRATCH/$t.rc" 2>/dev/null || echo 1)
  result=$(classify "$log" "$rc")
  # "Done N runs in S second(s)" on a clean finish; stat:: lines in any case.
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
  [ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
  printf '%-10s %-9s %12s %6s %10s %6s %7s %8s %7s\n' "$t" "$result" "${runs:--}" \
    "${secs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "${rss:--}"
  if [ "$result" != ok ]; then
    failed=1
    for f in "$OUT/artifacts/$t"/*; do
      [ -e "$f" ] && echo "           reproducer: $f  (run: $BIN_DIR/fuzz_$t $f)"
    done
    echo "           log: $log"
  fi
done
if [ "$failed" != 0 ]; then
  echo "run.sh: FAILED (see the logs above; save a real reproducer under tests/fuzz/crashes/<target>/)"
  exit 1
fi
echo "run.sh: all targets clean"
