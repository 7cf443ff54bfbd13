#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz, docs/fuzzing.md): each one fuzzed for a
# bounded time, then run once over its checked-in corpus as a regression
# run (every input there must pass). A separate clang build under ASan and
# UBSan; any crash, failed property, leak, timeout or sanitizer report fails
# the run, and the output names the file holding the input.
#
#   scripts/fuzz.sh                         every target, 30 s each
#   scripts/fuzz.sh fuzz-classifier         only the targets named
#   DISTDB_FUZZ_SECONDS=600 scripts/fuzz.sh longer (0: regression run only)
# Also: DISTDB_FUZZ_BUILD_DIR (build-fuzz), DISTDB_FUZZ_JOBS (2),
# DISTDB_FUZZ_CC / DISTDB_FUZZ_CXX (clang / clang++, for a first configure).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${DISTDB_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${DISTDB_FUZZ_SECONDS:-30}
all=(fuzz-client-wire fuzz-peer-codec fuzz-classifier fuzz-config)
targets=("$@")
[[ $# -eq 0 ]] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (expected: ${all[*]})" >&2; exit 2; }
done

started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/distdb-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Others may be using the machine (benchmarks): build and fuzz at low priority.
if [[ ! -f $build/build.ninja ]]; then
  CC=${DISTDB_FUZZ_CC:-clang} CXX=${DISTDB_FUZZ_CXX:-clang++} nice -n 10 meson setup "$build" -Dfuzz=true \
    -Dtools=false -Dexamples=false -Dtests=false -Dmariadb=disabled -Dnls=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; exit 1; }
fi
# Only the targets and what they link, not the whole library.
nice -n 10 ninja -C "$build" -j "${DISTDB_FUZZ_JOBS:-2}" "${targets[@]/#/tests/fuzz/}" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
limits=(-timeout=10 -rss_limit_mb=2048)

# What went wrong, from a libFuzzer log, and where the input was saved.
failure_kind() {
  if grep -q 'ERROR: libFuzzer: timeout' "$1"; then echo timeout
  elif grep -q 'ERROR: LeakSanitizer' "$1"; then echo leak
  elif grep -q -e 'out-of-memory' -e 'ERROR: libFuzzer: .*malloc' "$1"; then echo out-of-memory
  else echo crash
  fi
}
report_failure() {  # target, phase, log
  local input
  input=$(sed -n 's/.*Test unit written to //p' "$3" | tail -n 1)
  # In the regression run the input is the corpus file being run.
  [[ -z $input ]] && input=$(sed -n 's/^Running: //p' "$3" | tail -n 1)
  echo "$1: FAILED ($2: $(failure_kind "$3")), input: ${input:-unknown}"
  echo "  replay: $build/tests/fuzz/$1 ${input:-<input>}"
  grep -E -A 12 -m 1 -e '^==[0-9]+==ERROR' -e 'runtime error' -e 'ERROR: libFuzzer' "$3" | sed 's/^/  | /' || true
  echo "  (full log: $3, kept)"
}

failed=0
for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/$t
  artifacts=$build/fuzz-artifacts/$t
  rm -rf "$artifacts"
  mkdir -p "$artifacts"
  seeds=(tests/fuzz/corpus/"$t"/*)
  summary=""

  if [[ $seconds -gt 0 ]]; then
    # On a copy: what the fuzzer adds stays out of the repository.
    cp -r "tests/fuzz/corpus/$t" "$work/corpus-$t"
    log=$artifacts/fuzz.log
    if ! nice -n 10 "$exe" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work/corpus-$t" >"$log" 2>&1; then
      report_failure "$t" fuzzing "$log"
      failed=1
      continue
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    found=$(find "$work/corpus-$t" -type f | wc -l)
    summary="${runs:-?} runs in ${seconds} s, corpus ${#seeds[@]} -> ${found} inputs; "
  fi

  log=$artifacts/regression.log
  if ! nice -n 10 "$exe" "${limits[@]}" -artifact_prefix="$artifacts/" "${seeds[@]}" >"$log" 2>&1; then
    report_failure "$t" regression "$log"
    failed=1
    continue
  fi
  echo "$t: ok, ${summary}regression ${#seeds[@]}/${#seeds[@]} inputs pass"
done

elapsed=$((SECONDS - started))
if [[ $failed -ne 0 ]]; then
  echo "fuzz: FAILED (${elapsed} s)"
  exit 1
fi
echo "fuzz: no crash, leak or timeout in ${#targets[@]} targets (${seconds} s each; ${elapsed} s in all)"
