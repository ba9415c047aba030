#!/usr/bin/env bash
# Installs the dependencies, configures with warnings as errors, builds everything (CUDA sources too when nvcc is
# found), and runs the whole test suite. GPU tests skip cleanly where no device answers.
#
# The CPU tests (label cpu; the end-to-end Reproduce.* in the first pass only) run once per OpenBLAS kernel family,
# so that an expectation that holds for one kernel only (bitwise equality of results whose summation order the
# kernel decides) fails here, not on another machine:
# the two best families this CPU can execute, read from /proc/cpuinfo (SkylakeX: avx512f/dq/bw/vl; Haswell: avx2
# and fma; Sandybridge: avx; Prescott: sse3). A family the CPU lacks is never forced (it would die of SIGILL).
#   PINNTK_CORETYPES="Haswell Zen"  chooses the families instead (those the CPU cannot run are skipped);
#   PINNTK_CORETYPES=default        one pass with OpenBLAS's own choice (or the environment's OPENBLAS_CORETYPE).
#   PINNTK_CUDA=OFF                 no CUDA sources, even where nvcc is installed (default ON: built when found);
#                                   the Python module follows it
#   PINNTK_CUDA_ARCHS="90"          the CUDA architectures of both builds (default: CMakeLists.txt's, 80 and 90)
#   PINNTK_PY_CUDA=OFF              the Python module without the CUDA backend (default: as PINNTK_CUDA); its build
#                                   compiles every CUDA source again, the longest step after the main build
#   PINNTK_SKIP_DEPS=1              skip the package installation (scripts/install_deps.sh: apt-get)
#   PINNTK_SKIP_PYTHON=1            leave the Python module out
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { echo "build_and_test: $1 ($SECONDS s since the start)"; }
if [ "${PINNTK_SKIP_DEPS:-0}" != "1" ]; then bash scripts/install_deps.sh; fi
stage "dependencies installed"
export PATH="$PATH:/usr/local/cuda/bin"
export PINNTK_CUDA="${PINNTK_CUDA:-ON}"
case "$PINNTK_CUDA" in ON | OFF) ;; *) echo "build_and_test: PINNTK_CUDA must be ON or OFF, got '$PINNTK_CUDA'" >&2; exit 2 ;; esac
archs=()
if [ -n "${PINNTK_CUDA_ARCHS:-}" ]; then
  archs=(-DCMAKE_CUDA_ARCHITECTURES="$PINNTK_CUDA_ARCHS")
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CUDA_ARCHITECTURES=$PINNTK_CUDA_ARCHS"  # the Python module's build
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPINNTK_WERROR=ON -DPINNTK_BUILD_TESTS=ON -DPINNTK_ENABLE_CUDA="$PINNTK_CUDA" \
  ${archs[@]+"${archs[@]}"}
cmake --build build -j"$(nproc)"
stage "built"

# CPU flags of the first processor; empty off x86 (then only the default pass runs).
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
runs_here() {  # can this CPU execute OpenBLAS kernel family $1?
  case "$1" in
    SkylakeX) has avx512f avx512dq avx512bw avx512vl ;;
    Cooperlake) has avx512f avx512dq avx512bw avx512vl avx512_bf16 ;;
    Haswell | Zen) has avx2 fma ;;
    Sandybridge) has avx ;;
    Prescott) has pni ;;  # pni: SSE3 in /proc/cpuinfo
    *) return 1 ;;
  esac
}
if [ -n "${PINNTK_CORETYPES:-}" ]; then
  wanted="$PINNTK_CORETYPES"
else
  wanted=""
  for c in SkylakeX Haswell Sandybridge Prescott; do
    if runs_here "$c" && [ "$(wc -w <<<"$wanted")" -lt 2 ]; then wanted="$wanted $c"; fi
  done
  [ -n "$wanted" ] || wanted=default
fi
coretypes=""
for c in $wanted; do
  if [ "$c" = default ] || runs_here "$c"; then coretypes="$coretypes $c"; else echo "build_and_test: skipping OpenBLAS core type $c: this CPU cannot execute it"; fi
done
[ -n "$coretypes" ] || { echo "build_and_test: no OpenBLAS core type to run (asked for:$wanted)" >&2; exit 1; }

# The GPU tests first (they skip without a device), so that the last summary is that of a CPU pass.
gpu=""
if [ -x build/tests/pinntk_gpu_tests ]; then
  if ctest --test-dir build -L gpu --output-on-failure -j"$(nproc)"; then gpu="; GPU tests passed (or skipped)"; else gpu="; GPU tests FAILED"; fi
fi
ran=""
failed=""
skip=()
for c in $coretypes; do
  if [ "$c" = default ]; then
    env_core=()
  else
    env_core=(OPENBLAS_CORETYPE="$c")
  fi
  # What OpenBLAS really loads (a build without DYNAMIC_ARCH ignores OPENBLAS_CORETYPE).
  loaded="$(env ${env_core[@]+"${env_core[@]}"} OPENBLAS_VERBOSE=2 build/tests/pinntk_tests --gtest_list_tests 2>&1 |
    sed -n 's/^Core: //p' | head -1 || true)"
  echo "build_and_test: CPU tests with OpenBLAS core type ${c} (OpenBLAS reports: ${loaded:-no core name})"
  if env ${env_core[@]+"${env_core[@]}"} ctest --test-dir build -L cpu --output-on-failure -j"$(nproc)" ${skip[@]+"${skip[@]}"}; then
    ran="$ran $c"
  else
    failed="$failed $c"
  fi
  # The end-to-end reproduction runs (Reproduce.*, a third of a pass) in the first pass only: the unit tests check
  # what depends on the kernel family.
  skip=(-E '^Reproduce\.')
done
echo "build_and_test: CPU tests passed under OpenBLAS core types:${ran:- none}${failed:+; FAILED under:$failed}$gpu"
# The Python module: installed into build-py/venv (pip install .), its pytest suite and the examples in quick mode,
# with the cross-checks against the CLI just built. PINNTK_SKIP_PYTHON=1 leaves it out.
py="skipped"
if [ "${PINNTK_SKIP_PYTHON:-0}" != "1" ]; then
  stage "CPU and GPU tests done"
  if PINNTK_CUDA="${PINNTK_PY_CUDA:-$PINNTK_CUDA}" PINNTK_CLI="$PWD/build/pinntk" bash scripts/python_test.sh; then
    py="passed"
  else
    py="FAILED"
  fi
  stage "Python module done"
fi
echo "build_and_test: CPU tests passed under OpenBLAS core types:${ran:- none}${failed:+; FAILED under:$failed}$gpu; Python module $py"
[ -z "$failed" ] && [ "$gpu" != "; GPU tests FAILED" ] && [ "$py" != "FAILED" ]
