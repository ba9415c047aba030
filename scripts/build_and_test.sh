#!/usr/bin/env bash
# Installs the dependencies, configures with warnings as errors, builds everything (CUDA sources too when nvcc is
# found), and runs the whole test suite. GPU tests skip cleanly where no device answers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${PINNTK_SKIP_DEPS:-0}" != "1" ]; then bash scripts/install_deps.sh; fi
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPINNTK_WERROR=ON -DPINNTK_BUILD_TESTS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
