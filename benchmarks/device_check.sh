#!/usr/bin/env bash
# One call on a lent GPU machine (DEVELOPERS.md): build for sm_90, run the GPU tests (and the CPU suite),
# compute-sanitizer memcheck and racecheck on a small GPU test, the benchmarks and peers when present, and print
# a short table last. Logs go under $OUT when set. Needs .devdeps.tar.xz (scripts/device_deps.sh) where the
# machine has no Debian packages; carry it with the call. Switches: PINNTK_SKIP_PEERS=1 (no PyTorch/JAX peers),
# PINNTK_PROFILE=1 (ncu report), PINNTK_DEVICE_LM=1 (the whole `pinntk reproduce lm` study on the GPU, within
# PINNTK_DEVICE_LM_TIMEOUT seconds, default 240).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_out}"
mkdir -p "$OUT"
declare -a TABLE
row() { TABLE+=("$(printf '%-34s %s' "$1" "$2")"); }
t0=$(date +%s)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
row "gpu" "$(head -1 "$OUT/gpu.txt")"
row "nvcc" "$(nvcc --version | tail -1)"

PREFIX=""
if [ -f .devdeps.tar.xz ]; then
  rm -rf .devdeps && mkdir -p .devdeps && tar -C .devdeps --strip-components=1 -xJf .devdeps.tar.xz
  PREFIX="-DCMAKE_PREFIX_PATH=$PWD/.devdeps"
  export LD_LIBRARY_PATH="$PWD/.devdeps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  export CPATH="$PWD/.devdeps/include:${CPATH:-}"
  export PKG_CONFIG_PATH="$PWD/.devdeps/lib/x86_64-linux-gnu/pkgconfig:${PKG_CONFIG_PATH:-}"
fi
BUILD=build-sm90
# The Python module (issue 16: pinntk.jacobian's J handed to PyTorch on the device without a copy) joins the build
# when nanobind (.devdeps/python, or the machine's own) and the interpreter's headers are there; if it is what
# fails to build, the build is redone without it so that the other checks still run.
PYOPT=""
NB_CMAKE=""
if [ -d .devdeps/python/nanobind/cmake ]; then
  NB_CMAKE="$PWD/.devdeps/python/nanobind/cmake"
elif python3 -m nanobind --cmake_dir > /dev/null 2>&1; then
  NB_CMAKE="$(python3 -m nanobind --cmake_dir)"
fi
PYVER=$(python3 -c "import sys; print('%d.%d' % sys.version_info[:2])" 2>/dev/null)
PYINC=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])" 2>/dev/null)
[ -f "$PYINC/Python.h" ] || PYINC="$PWD/.devdeps/python-include/python$PYVER"
if [ -n "$NB_CMAKE" ] && [ -f "$PYINC/Python.h" ]; then
  PYOPT="-DPINNTK_PYTHON=ON -Dnanobind_DIR=$NB_CMAKE -DPython_EXECUTABLE=$(command -v python3) -DPython_INCLUDE_DIR=$PYINC"
fi
configure_and_build() {
  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DPINNTK_WERROR=ON $PREFIX "$@" \
    > "$OUT/configure.log" 2>&1 && cmake --build $BUILD -j"$(nproc)" > "$OUT/build.log" 2>&1
}
# shellcheck disable=SC2086
if configure_and_build $PYOPT || { [ -n "$PYOPT" ] && cp "$OUT/build.log" "$OUT/build_python.log" && PYOPT="" &&
                                   configure_and_build -DPINNTK_PYTHON=OFF; }; then
  row "build sm_90" "ok ($(( $(date +%s) - t0 )) s)"
else
  row "build sm_90" "FAILED (see build.log / configure.log)"
  tail -30 "$OUT/configure.log" "$OUT/build.log"
  printf '%s\n' "${TABLE[@]}"
  exit 1
fi

ctest --test-dir $BUILD -L gpu --output-on-failure > "$OUT/ctest_gpu.log" 2>&1
row "ctest -L gpu" "$(grep -E 'tests passed|tests failed' "$OUT/ctest_gpu.log" | tail -1) skipped=$(grep -c 'Skipped' "$OUT/ctest_gpu.log")"
ctest --test-dir $BUILD -LE gpu -j"$(nproc)" --output-on-failure > "$OUT/ctest_cpu.log" 2>&1
row "ctest (cpu suite)" "$(grep -E 'tests passed|tests failed' "$OUT/ctest_cpu.log" | tail -1)"

GPU_TESTS=$BUILD/tests/pinntk_gpu_tests
SMALL="--gtest_filter=${PINNTK_SANITIZE_FILTER:-GpuReference.*:GpuSmall.*:GpuNd.BackendMatchesCpuFp64:GpuBatch.*:GpuLbfgs.*:GpuMatfree.*}"
for tool in memcheck racecheck; do
  if compute-sanitizer --tool $tool --error-exitcode 9 $GPU_TESTS "$SMALL" > "$OUT/sanitizer_$tool.log" 2>&1; then
    row "compute-sanitizer $tool" "clean ($(grep -Eo '[A-Z]+ SUMMARY: .*' "$OUT/sanitizer_$tool.log" | tail -1))"
  else
    row "compute-sanitizer $tool" "FAILED: $(grep -Eo '[A-Z]+ SUMMARY: .*' "$OUT/sanitizer_$tool.log" | tail -1)"
  fi
done

# The CLI on the GPU, and a checkpoint whose NTK numbers the peers recompute independently (--checkpoint --check).
CK="$OUT/crosscheck"
$BUILD/pinntk train --problem darcy-twoscale --schedule 1@1e-300 --device cuda --out "$CK/init" > "$OUT/cli.log" 2>&1
$BUILD/pinntk ntk --problem darcy-twoscale --checkpoint "$CK/init/checkpoint.json" --device cuda --out "$CK/ntk_cuda" >> "$OUT/cli.log" 2>&1
$BUILD/pinntk ntk --problem darcy-twoscale --checkpoint "$CK/init/checkpoint.json" --device cpu --out "$CK/ntk_cpu" >> "$OUT/cli.log" 2>&1
row "pinntk ntk cuda vs cpu (||K_uu||_F)" "$(python3 -c "
import json; a=json.load(open('$CK/ntk_cuda/summary.json'))['ntk']; b=json.load(open('$CK/ntk_cpu/summary.json'))['ntk']
print('%.17g %.17g rel %.1e' % (a['frobenius_Kuu'], b['frobenius_Kuu'], abs(a['frobenius_Kuu']/b['frobenius_Kuu']-1)))" 2>&1)"

# Two and three dimensions (the tile kernels' direction-count instances): the NTK on both backends, and the 2-D
# Poisson benchmark of Dangel et al. (D = 257) by LM on the device, timed (goal: rel L2 <= 5e-8 in <= 5 s).
for p in darcy2d-ntk poisson3d-sines; do
  $BUILD/pinntk ntk --problem $p --nc 4096 --device cuda --out "$CK/ntk_${p}_cuda" >> "$OUT/cli.log" 2>&1
  $BUILD/pinntk ntk --problem $p --nc 4096 --device cpu --out "$CK/ntk_${p}_cpu" >> "$OUT/cli.log" 2>&1
  row "ntk $p cuda vs cpu" "$(python3 -c "
import json; a=json.load(open('$CK/ntk_${p}_cuda/summary.json'))['ntk']; b=json.load(open('$CK/ntk_${p}_cpu/summary.json'))['ntk']
print('||K_uu||_F rel %.1e, lambda_1 rel %.1e' % (abs(a['frobenius_Kuu']/b['frobenius_Kuu']-1), abs(a['eigenvalues_Kuu_top'][0]/b['eigenvalues_Kuu_top'][0]-1)))" 2>&1)"
done
P2T0=$(date +%s.%N)
$BUILD/pinntk train --problem poisson2d-sines --schedule 100@1e-2 --optimizer lm --lm-iters 1500 --lm-tol 0 \
  --history-every 50 --device cuda --out "$CK/p2d_lm" >> "$OUT/cli.log" 2>&1
row "poisson2d-sines D=257 LM (cuda)" "rc=$? $(python3 -c "
import json; s=json.load(open('$CK/p2d_lm/summary.json')); print('rel L2 %.2e max %.2e' % (s['rel_l2_error'], s['max_error']))" 2>&1) \
$(python3 -c "print('%.1f s' % ($(date +%s.%N) - $P2T0))")"

# Levenberg-Marquardt on the device (cuSOLVER potrf/potrs): a short run through the CLI, timed.
LMT0=$(date +%s.%N)
$BUILD/pinntk train --problem darcy-twoscale --eps 1/32 --optimizer lm --lm-iters 200 --schedule 1@1e-300 --device cuda \
  --out "$CK/lm" >> "$OUT/cli.log" 2>&1
row "pinntk train --optimizer lm (200 it)" "rc=$? $(python3 -c "
import json; s=json.load(open('$CK/lm/summary.json')); print('loss %.3e max error %.3e' % (s['final_loss'], s['max_error']))" 2>&1) \
$(python3 -c "print('%.1f s' % ($(date +%s.%N) - $LMT0))")"
# Batches of networks through the CLI: fig4's quick trials as one batch on the device, and an ensemble of three
# whose member 1 must be the single run with --seed 1 (the same kernels at other offsets: the same checkpoint).
timeout 180 $BUILD/pinntk reproduce fig4 --quick --device cuda --out "$CK/fig4_batch" > "$OUT/fig4_batch.log" 2>&1
row "reproduce fig4 --quick (batch)" "rc=$? $(tail -1 "$OUT/fig4_batch.log" | cut -c1-80)"
# Fig. 2 at the paper's settings: panel b's 95 trainings (5 seeds x 19 eps, 10000 Adam steps) as one batch.
t2=$(date +%s)
timeout 180 $BUILD/pinntk reproduce fig2 --device cuda --out "$CK/fig2_batch" > "$OUT/fig2_batch.log" 2>&1
row "reproduce fig2 (95 as one batch)" "rc=$? $(( $(date +%s) - t2 )) s; $(grep -m1 'one batch done' "$OUT/fig2_batch.log" | cut -c1-60)"
ENS="train --problem darcy-twoscale --schedule 300@1e-3 --lbfgs 20 --device cuda"
$BUILD/pinntk $ENS --ensemble 3 --out "$CK/ensemble3" > "$OUT/ensemble.log" 2>&1
$BUILD/pinntk $ENS --seed 1 --out "$CK/ensemble_seed1" >> "$OUT/ensemble.log" 2>&1
if cmp -s "$CK/ensemble3/member_001/checkpoint.json" "$CK/ensemble_seed1/checkpoint.json"; then
  row "ensemble 3 (cuda batch) vs --seed 1" "member_001 checkpoint identical"
else
  row "ensemble 3 (cuda batch) vs --seed 1" "DIFFERENT (see ensemble.log)"
fi
# Two LM runs at once from two host threads (a backend each), quick settings.
timeout 120 $BUILD/pinntk reproduce lm --quick --concurrent-runs 2 --device cuda --out "$CK/lm_concurrent" \
  > "$OUT/lm_concurrent.log" 2>&1
row "reproduce lm --quick --concurrent-runs 2" "rc=$? $(tail -1 "$OUT/lm_concurrent.log" | cut -c1-80)"
# The whole LM study (Poisson and Darcy at eps = 1/32, Darcy at 1/64 and 1/128) when asked: minutes of device time.
if [ "${PINNTK_DEVICE_LM:-0}" = "1" ]; then
  timeout "${PINNTK_DEVICE_LM_TIMEOUT:-240}" $BUILD/pinntk reproduce lm --device cuda --out "$OUT/repro_lm" \
    > "$OUT/repro_lm.log" 2>&1
  row "pinntk reproduce lm (cuda)" "rc=$? (lm_runs.csv; the rest in logs.tar.gz)"
  cp "$OUT/repro_lm/lm/runs.csv" "$OUT/lm_runs.csv" 2>/dev/null
fi

# The Python module on the device: J zero-copy into torch and equal to torch.func's, pinntk.ntk cuda vs cpu.
if [ -n "$PYOPT" ] && ls $BUILD/_core*.so > /dev/null 2>&1; then
  PKG="$BUILD/pypkg"
  rm -rf "$PKG" && mkdir -p "$PKG/pinntk" && cp python/pinntk/*.py python/pinntk/py.typed $BUILD/_core*.so "$PKG/pinntk/"
  PYTHONPATH="$PKG" timeout 240 python3 tests/python/gpu_jacobian_check.py > "$OUT/python_gpu.log" 2>&1
  row "python: J to torch (cuda)" "rc=$? $(tail -1 "$OUT/python_gpu.log" | cut -c1-110)"
else
  row "python module (cuda)" "not built ($([ -f "$OUT/build_python.log" ] && echo 'its build failed: build_python.log' ||
    echo 'nanobind or Python.h missing'))"
fi

if [ -x $BUILD/benchmarks/pinntk-bench ]; then
  timeout 240 $BUILD/benchmarks/pinntk-bench --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
  row "pinntk-bench" "rc=$? (bench.txt)"
  row "batched Adam step (bench)" "$(grep -Eo 'B=1 .* per network\)' "$OUT/bench.txt" | tail -1)"
  row "device L-BFGS iteration (bench)" "$(grep -Eo 'l-bfgs iteration: .*' "$OUT/bench.txt" | tail -1 | cut -c19-)"
  row "chunked NTK 4x40 (bench)" "$(grep -Eo 'chunked ntk: .*' "$OUT/bench.txt" | tail -1 | cut -c14-)"
fi
if [ -d benchmarks/peers ] && [ "${PINNTK_SKIP_PEERS:-0}" != "1" ]; then
  for peer in benchmarks/peers/*_peer.py; do
    [ -f "$peer" ] || continue
    name=$(basename "$peer" .py)
    PYTHONUNBUFFERED=1 timeout 150 python3 "$peer" --device cuda --budget 4 --check --checkpoint "$CK/init/checkpoint.json" \
      --json "$OUT/peer_$name.json" > "$OUT/peer_$name.txt" 2>&1
    row "peer $name" "rc=$?"
  done
fi

if [ "${PINNTK_PROFILE:-0}" = "1" ] && command -v ncu >/dev/null 2>&1; then
  OUT="$OUT" timeout 120 bash benchmarks/profile.sh $BUILD > "$OUT/profile.txt" 2>&1
  row "ncu profile" "rc=$? (profile.txt)"
  rm -f "$OUT/ncu.txt"
fi

# At most 8 files come back from a lent machine: keep the summaries, pack the logs.
(cd "$OUT" && tar -czf logs.tar.gz --exclude=logs.tar.gz ./*.log ./*.ncu-rep ./ncu_details.txt crosscheck repro_lm \
   gpu.txt 2>/dev/null;
 rm -rf ./*.log ./*.ncu-rep ./ncu_details.txt crosscheck repro_lm gpu.txt)

echo
echo "==== device check ($(date -u +%F) $(( $(date +%s) - t0 )) s) ===="
[ -f "$OUT/bench.txt" ] && tail -40 "$OUT/bench.txt" | grep -v '^lm iteration'
[ -f "$OUT/bench.txt" ] && grep '^lm iteration' "$OUT/bench.txt"
[ -f "$OUT/lm_runs.csv" ] && cut -d, -f1,3,4,7,9,11 "$OUT/lm_runs.csv"
[ -f "$OUT/profile.txt" ] && tail -30 "$OUT/profile.txt"
for f in "$OUT"/peer_*.txt; do [ -f "$f" ] && tail -8 "$f"; done
printf '%s\n' "${TABLE[@]}"
