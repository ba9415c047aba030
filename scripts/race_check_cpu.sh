#!/usr/bin/env bash
# The CUDA kernels' device code under ThreadSanitizer, on the CPU: builds pinntk_tests with -fsanitize=thread (no
# CUDA; in BUILD, default build-tsan) and runs the emulated kernel tests (tests/block_emulator.hpp: each thread of a
# block a host thread, barriers as mutexes; the tile kernels, the two-loop kernel and the layer-at-a-time products'
# elementwise kernels), so that a read and a write of the same shared or global memory that no
# barrier orders are reported as data races, with the kernel's source lines. What compute-sanitizer's racecheck does
# for shared memory on a GPU, for global memory too; about 10 minutes to build and 3 to run on 2 cores.
#   scripts/race_check_cpu.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-tsan}"
cmake -S . -B "$BUILD" -DPINNTK_ENABLE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread > /dev/null
cmake --build "$BUILD" -j"$(nproc)" --target pinntk_tests > /dev/null
# libgomp is not instrumented: its own synchronization would read as races (the CPU backend's reference runs).
SUPP="$(mktemp)"
trap 'rm -f "$SUPP"' EXIT
echo "called_from_lib:libgomp.so.1" > "$SUPP"
LOG="$BUILD/race_check.log"
TSAN_OPTIONS="suppressions=$SUPP halt_on_error=0 exitcode=66" OMP_NUM_THREADS=1 \
  "$BUILD/tests/pinntk_tests" --gtest_filter='TileKernelsEmulated*:TwoLoopKernel*:LayerwiseProducts*' > "$LOG" 2>&1 || status=$?
races=$(grep -c "WARNING: ThreadSanitizer" "$LOG" || true)
grep -E "^\[  (PASSED|FAILED) " "$LOG" || true
if [ "${status:-0}" -ne 0 ] || [ "$races" -ne 0 ]; then
  echo "race_check_cpu: $races ThreadSanitizer reports (or a failed test): see $LOG" >&2
  grep -A6 "WARNING: ThreadSanitizer" "$LOG" | head -40 >&2
  exit 1
fi
echo "race_check_cpu: no data race in the emulated kernels"
