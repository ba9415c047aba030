#!/usr/bin/env bash
# Installs pinntk's build and test dependencies from Debian's packages (run as root, or with sudo available).
# The CUDA toolkit is optional and not installed here: when nvcc is on PATH the CUDA sources are built too.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config \
  libopenblas-dev liblapacke-dev liblbfgsb-dev libeigen3-dev libspectra-dev libginac-dev \
  libgtest-dev nlohmann-json3-dev libcli11-dev \
  libboost-dev python3 python3-venv python3-numpy python3-matplotlib clang-format >/dev/null
# toml++ (TOML problem files) is optional: Debian 12 and Ubuntu 24.04 have it, Ubuntu 22.04 does not.
$SUDO apt-get install -y -qq --no-install-recommends libtomlplusplus-dev >/dev/null 2>&1 ||
  echo "install_deps: libtomlplusplus-dev not available here: problem files will be read in JSON only"
echo "install_deps: done"
