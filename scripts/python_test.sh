#!/usr/bin/env bash
# Builds the Python module pinntk (`pip install .`, pyproject.toml) into a virtual environment and runs its tests
# (tests/python) and the examples in quick mode. Needs the C++ build's packages (scripts/install_deps.sh) and a
# python3 with venv and pip. torch is optional: its tests skip without it; PINNTK_PY_TORCH=1 installs the CPU wheel.
#
#   bash scripts/python_test.sh                 # venv in build-py/venv, CMake build in build-py/<wheel tag>
#   PINNTK_PY_VENV=/tmp/v PINNTK_PY_TORCH=1 bash scripts/python_test.sh
#   PINNTK_CLI=build/pinntk bash scripts/python_test.sh   # also compare with the CLI built from these sources
#   PINNTK_CUDA=OFF bash scripts/python_test.sh           # no CUDA backend, even where nvcc is installed
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=${PINNTK_PY_VENV:-$repo/build-py/venv}
python=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install -q numpy pytest matplotlib tqdm
if [ "${PINNTK_PY_TORCH:-0}" = 1 ]; then
  "${pip[@]}" install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
# The module, with the CUDA backend when nvcc is found (as the CLI) unless PINNTK_CUDA=OFF; the build folder persists
# (pyproject.toml).
case "${PINNTK_CUDA:-ON}" in
  ON) ;;
  OFF) export CMAKE_ARGS="${CMAKE_ARGS:-} -DPINNTK_ENABLE_CUDA=OFF" ;;
  *) echo "python_test.sh: PINNTK_CUDA must be ON or OFF, got '$PINNTK_CUDA'" >&2; exit 2 ;;
esac
"${pip[@]}" install "$repo"

# From a folder outside the sources, so that `import pinntk` is the installed package.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$venv/bin/python" -c "import pinntk; print('pinntk', pinntk.__version__, 'CUDA build:', pinntk.built_with_cuda)"
MPLBACKEND=Agg "$venv/bin/python" -m pytest -q "$repo/tests/python"
for example in "$repo"/examples/*.py; do
  echo "== $(basename "$example") --quick"
  MPLBACKEND=Agg "$venv/bin/python" "$example" --quick --device cpu
done
echo "python_test.sh: all passed"
