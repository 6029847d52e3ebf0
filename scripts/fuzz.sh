#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/) for as long as one asks:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 300); TARGET names such as fuzz_config or
# config (default: every target). Builds build-fuzz (clang, libFuzzer,
# AddressSanitizer with LeakSanitizer, UndefinedBehaviorSanitizer), copies
# each target's seed corpus to a work directory (the committed corpus never
# grows) and prints one JSON line per target, from libFuzzer's final stats:
#
#   {"target":"fuzz_config","seconds":60,"execs":123456,"cov":812,"ft":2710,
#    "corpus":311,"crashes":0}
#
# A crash, leak, timeout or out-of-memory keeps its work directory, prints
# the end of the log and the input that failed (replay it with the target:
# build-fuzz/tests/fuzz_X INPUT, or build/tests/fuzz_X INPUT), and makes the
# script exit 1 once every target has run. LIVEMESH_FUZZ_JOBS (default 2)
# is the build's -j; LIVEMESH_FUZZ_MAX_LEN (default 4096) libFuzzer's
# -max_len.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=300
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  secs=$1
  shift
fi
if ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang is needed for libFuzzer (scripts/setup.sh installs it)" >&2
  exit 2
fi

CC=clang cmake -S . -B build-fuzz -DLM_FUZZ=ON -DLM_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"${LIVEMESH_FUZZ_JOBS:-2}" --target fuzz_all >/dev/null

targets=()
if [ $# -eq 0 ]; then
  for f in build-fuzz/tests/fuzz_*; do
    [ -x "$f" ] && targets+=("$(basename "$f")")
  done
else
  for t in "$@"; do
    t=fuzz_${t#fuzz_}
    if [ ! -x "build-fuzz/tests/$t" ]; then
      echo "fuzz.sh: no target $t (see build-fuzz/tests/fuzz_*)" >&2
      exit 2
    fi
    targets+=("$t")
  done
fi

# final_stat NAME LOG: the last "stat::NAME: value" of libFuzzer's final stats
final_stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -n 1; }
# status FIELD LOG: "cov: N", "ft: N", "corp: N/..." of the last status line
status() {
  grep -E '^#[0-9]+' "$2" | tail -n 1 | sed -n "s/.* $1: \([0-9]*\).*/\1/p"
}

failed=0
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/${t#fuzz_}
  work=$(mktemp -d "${TMPDIR:-/tmp}/livemesh-$t.XXXXXX")
  mkdir -p "$work/corpus" "$work/artifacts"
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work/corpus"/
  rc=0
  "build-fuzz/tests/$t" -max_total_time="$secs" \
    -max_len="${LIVEMESH_FUZZ_MAX_LEN:-4096}" -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" >"$work/log" 2>&1 || rc=$?
  crashes=$(find "$work/artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # died before writing its input (a crash in the set-up)
  fi
  printf '{"target":"%s","seconds":%s,"execs":%s,"cov":%s,"ft":%s,"corpus":%s,"crashes":%s}\n' \
    "$t" "$secs" "$(final_stat number_of_executed_units "$work/log" || true)" \
    "$(status cov "$work/log")" "$(status ft "$work/log")" \
    "$(status corp "$work/log")" "$crashes" |
    sed 's/:,/:null,/g'
  if [ "$crashes" -ne 0 ]; then
    failed=1
    tail -n 40 "$work/log" >&2
    echo "$t: the fuzzer found a failing input: $(find "$work/artifacts" -type f | head -n 1) (log: $work/log)" >&2
  else
    rm -rf "$work"
  fi
done
exit "$failed"
