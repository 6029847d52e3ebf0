#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run every test in a
# normal build and again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then give each libFuzzer target a short run on its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
echo "== tests (release build)"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DLM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LIVEMESH_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow

if command -v clang >/dev/null; then
  echo "== fuzz targets (libFuzzer, ${LIVEMESH_FUZZ_SECONDS:-20} s each)"
  CC=clang cmake -S . -B build-fuzz -DLM_FUZZ=ON -DLM_TESTS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_all >/dev/null
  for f in build-fuzz/tests/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    "$f" -max_total_time="${LIVEMESH_FUZZ_SECONDS:-20}" -max_len=4096 "$work" 2>&1 | tail -n 1
    rm -rf "$work"
  done
fi
echo "all test stages passed"
