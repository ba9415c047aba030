#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then an NTK analysis over eps (paper Fig. 2a setting) and a
# short Adam training of the paper's Darcy problem (Sec. 4.2), all written under ${1:-results}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-results}"
if [ "${PINNTK_SKIP_DEPS:-0}" != "1" ]; then bash scripts/install_deps.sh; fi
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target pinntk
python3 scripts/ntk_sweep.py --pinntk build/pinntk --out "$OUT/ntk_sweep" -- \
  --problem darcy-ntk --layers 1,50,1 --init normal --nc 256
build/pinntk train --problem darcy-twoscale --eps 1/32 --schedule 2000@1e-3,2000@1e-4 --log-every 500 \
  --out "$OUT/darcy_train"
echo "results in $OUT/"
