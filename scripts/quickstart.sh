#!/usr/bin/env bash
# The main job on a fresh machine: install, build, and reproduce the paper's figures into ${1:-results}:
# in full when a CUDA GPU answers (minutes), as the --quick smoke test on a CPU-only machine (a few minutes).
# Plots are drawn when python3 has matplotlib (apt-get install python3-matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-results}"
if [ "${PINNTK_SKIP_DEPS:-0}" != "1" ]; then bash scripts/install_deps.sh; fi
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target pinntk
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  build/pinntk reproduce all --out "$OUT"
else
  echo "quickstart: no GPU answers: the quick reproduction (the full one: build/pinntk reproduce all --out DIR)"
  build/pinntk reproduce all --quick --out "$OUT"
fi
echo "results in $OUT/ (summary.json, fig1..fig4/)"
