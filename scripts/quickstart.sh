#!/usr/bin/env bash
# The main job on a fresh machine: install, build, reproduce the paper's figures into ${1:-results} and draw them.
#   with a CUDA GPU: every figure at the paper's settings (all);
#   CPU only: the paper's central result, Fig. 2 (both panels) and Fig. 3, at the paper's settings, the other
#   figures in their quick form (about a minute on 2 cores; the full CPU run of Figs. 1 and 4 takes hours).
# It ends with the headline numbers beside the paper's, the pictures' paths and the index page RESULTS/README.md.
#   PINNTK_CUDA=ON|OFF   build the CUDA sources or not (default: ON when a GPU answers, else OFF: a CPU-only run
#                        needs no CUDA build, even where nvcc is installed)
#   PINNTK_SKIP_DEPS=1   skip the package installation (scripts/install_deps.sh, which runs apt-get update)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-results}"
if [ "${PINNTK_SKIP_DEPS:-0}" != "1" ]; then bash scripts/install_deps.sh; fi
export PATH="$PATH:/usr/local/cuda/bin"
gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi
cuda="${PINNTK_CUDA:-$([ "$gpu" = 1 ] && echo ON || echo OFF)}"
case "$cuda" in ON | OFF) ;; *) echo "quickstart: PINNTK_CUDA must be ON or OFF, got '$cuda'" >&2; exit 2 ;; esac
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPINNTK_ENABLE_CUDA="$cuda"
cmake --build build -j"$(nproc)" --target pinntk
if [ "$gpu" = 1 ] && [ "$cuda" = ON ]; then
  echo "quickstart: a GPU answers: every figure at the paper's settings"
  build/pinntk reproduce all --out "$OUT"
else
  echo "quickstart: no GPU answers: Fig. 2 and Fig. 3 at the paper's settings (about a minute on 2 cores), Figs. 1"
  echo "            and 4 in their quick form (the full CPU run: build/pinntk reproduce all --out DIR, hours)"
  build/pinntk reproduce all --quick --full fig2,fig3 --out "$OUT"
fi
