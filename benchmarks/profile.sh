#!/usr/bin/env bash
# Nsight Compute on the main kernels of one bench case (pinntk-bench --profile: the 4x40 Jacobian at 65536 points
# and one Adam step at 1024 points, fp64). Reports go under $OUT (or ./profile_out). Clocks are left as they are.
#   benchmarks/profile.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-sm90}"
OUT="${OUT:-$PWD/profile_out}"
mkdir -p "$OUT"
# A failed run (ncu's or pinntk-bench's) stops here, rather than leaving an empty report to be read as a result.
# Beyond the basic set: warp stall reasons and the memory workload (shared-memory traffic: NOTES.md predicts the
# gradient kernel is shared-memory bound).
if ! ncu --clock-control none --set basic --section WarpStateStats --section MemoryWorkloadAnalysis --kernel-name regex:'eval_kernel|jacobian_kernel|loss_gradient_kernel|reduce_gradient_kernel|reduce_gradient_adam_kernel|adam_update_kernel' \
    --export "$OUT/pinntk_kernels" --force-overwrite "$BUILD/benchmarks/pinntk-bench" --profile > "$OUT/ncu.txt" 2>&1; then
  echo "profile.sh: ncu on pinntk-bench --profile failed; the end of $OUT/ncu.txt:" >&2
  tail -n 20 "$OUT/ncu.txt" >&2
  exit 1
fi
ncu --import "$OUT/pinntk_kernels.ncu-rep" --page details > "$OUT/ncu_details.txt" 2>&1 || true
grep -E "eval_kernel|jacobian_kernel|loss_gradient_kernel|reduce_gradient_kernel|reduce_gradient_adam_kernel|adam_update_kernel|Duration|Memory Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Dynamic Shared|Shared|Mem Busy|Max Bandwidth|Warp Cycles Per Issued|Stall" \
  "$OUT/ncu_details.txt" | head -120
