#!/usr/bin/env bash
# One call on a lent GPU machine (DEVELOPERS.md): build for sm_90, run the GPU tests, compute-sanitizer, the CLI's
# cross-checks, the benchmarks, the Python module's zero-copy check, the reproduction's batches, the peers and the
# CPU suite, in that order of priority, within a time budget, and print a short table last.
#
# The budget (PINNTK_DEVICE_BUDGET seconds from the start, default 540: a device call may run 600 s) decides what
# runs: each step after the build has a time cap, is cut to the time left, and is skipped (with a row saying so)
# when too little is left, so that the table always comes back. The table is also written row by row to
# $OUT/table.txt, which survives a kill. Logs go under $OUT (default ./device_out) and are packed into logs.tar.gz
# (a lent machine returns at most 8 files).
#
# Needs .devdeps.tar.xz (scripts/device_deps.sh) where the machine has no Debian packages; carry it with the call.
# Switches: PINNTK_SKIP_PEERS=1 (no PyTorch/JAX peers), PINNTK_SKIP_SANITIZERS=1, PINNTK_DEVICE_REPRO_ALL=1 (`pinntk
# reproduce all` at the paper's settings, timed, after the Python check; its L-BFGS PINNTK_DEVICE_REPRO_LBFGS,
# default two-loop), PINNTK_PROFILE=1 (ncu report), PINNTK_DEVICE_NTK_PEERS=1 (the NTK at scale beside
# torch.func and JAX, ntk_scale.py), PINNTK_DEVICE_LM=1 (the
# whole `pinntk reproduce lm` study, within PINNTK_DEVICE_LM_TIMEOUT seconds, default 240),
# PINNTK_DEVICE_BUILD=DIR (another build folder, default build-sm90), PINNTK_DEVICE_WERROR=ON (warnings as errors:
# off by default, since that machine's host compiler is not the one CI checks the warnings with).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_out}"
mkdir -p "$OUT"
t0=$(date +%s)
BUDGET=${PINNTK_DEVICE_BUDGET:-540}
: > "$OUT/table.txt"
declare -a TABLE
row() {
  TABLE+=("$(printf '%-38s %s' "$1" "$2")")
  printf '%-38s %s\n' "$1" "$2" >> "$OUT/table.txt"
}
left() { echo $(( t0 + BUDGET - $(date +%s) )); }
# cap SECONDS [NEED]: the timeout of a step, the smaller of SECONDS and the time left less a margin for the table;
# 0 when fewer than NEED seconds (default 30) would be left for it.
cap() {
  local l need=${2:-30}
  l=$(( $(left) - 15 ))
  if [ "$l" -lt "$need" ]; then echo 0; elif [ "$l" -lt "$1" ]; then echo "$l"; else echo "$1"; fi
}
skipped() { row "$1" "skipped: $(left) s of the budget left"; }
status() {  # the exit status of a step as a word
  case "$1" in 0) echo "ok" ;; 124) echo "TIMEOUT" ;; *) echo "rc=$1" ;; esac
}
since() { python3 -c "print('%.1f s' % ($(date +%s.%N) - $1))"; }  # seconds since a `date +%s.%N` reading
# summary DIR EXPR: EXPR in Python over s, DIR's summary.json (or the error's last line, when there is none).
summary() { python3 -c "import json; s=json.load(open('$1/summary.json')); print($2)" 2>&1 | tail -1; }
finish() {
  # Keep the summaries, pack the logs (at most 8 files come back from a lent machine).
  (cd "$OUT" && tar -czf logs.tar.gz --exclude=logs.tar.gz --exclude=table.txt --exclude=bench.txt \
     --exclude=bench.json --exclude=lm_runs.csv --exclude=profile.txt ./* 2>/dev/null &&
   find . -mindepth 1 -maxdepth 1 ! -name logs.tar.gz ! -name table.txt ! -name bench.txt ! -name bench.json \
     ! -name lm_runs.csv ! -name profile.txt -exec rm -rf {} +)
  echo
  echo "==== device check ($(date -u +%F) $(( $(date +%s) - t0 )) s of a $BUDGET s budget) ===="
  [ -f "$OUT/bench.txt" ] && tail -n 40 "$OUT/bench.txt" | grep -v '^lm iteration'
  [ -f "$OUT/bench.txt" ] && grep '^lm iteration' "$OUT/bench.txt"
  [ -f "$OUT/lm_runs.csv" ] && cut -d, -f1,3,4,7,9,11 "$OUT/lm_runs.csv"
  [ -f "$OUT/profile.txt" ] && tail -n 30 "$OUT/profile.txt"
  printf '%s\n' "${TABLE[@]}"
}
trap finish EXIT

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
BUILD=${PINNTK_DEVICE_BUILD:-build-sm90}
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
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DPINNTK_WERROR="${PINNTK_DEVICE_WERROR:-OFF}" $PREFIX "$@" \
    > "$OUT/configure.log" 2>&1 && cmake --build "$BUILD" -j"$(nproc)" > "$OUT/build.log" 2>&1
}
# shellcheck disable=SC2086
if configure_and_build $PYOPT || { [ -n "$PYOPT" ] && cp "$OUT/build.log" "$OUT/build_python.log" && PYOPT="" &&
                                   configure_and_build -DPINNTK_PYTHON=OFF; }; then
  row "build sm_90" "ok ($(( $(date +%s) - t0 )) s)"
else
  row "build sm_90" "FAILED (see build.log / configure.log)"
  tail -n 30 "$OUT/configure.log" "$OUT/build.log"
  exit 1
fi
B=$BUILD/pinntk
GPU_TESTS=$BUILD/tests/pinntk_gpu_tests

# 1. The GPU tests: every device path's test (label gpu), one process each, PINNTK_GPU_TEST_JOBS (default 6) at once.
c=$(cap 300)
if [ "$c" -gt 0 ]; then
  timeout "$c" ctest --test-dir "$BUILD" -L gpu -j"${PINNTK_GPU_TEST_JOBS:-6}" --output-on-failure > "$OUT/ctest_gpu.log" 2>&1
  rc=$?
  row "ctest -L gpu" "$(status $rc) $(grep -E 'tests passed|tests failed' "$OUT/ctest_gpu.log" | tail -1) skipped=$(grep -c 'Skipped' "$OUT/ctest_gpu.log")"
  while read -r line; do row "  failed" "$line"; done < <(grep -E '^\s+[0-9]+ - .* \((Failed|Timeout)\)' "$OUT/ctest_gpu.log" | head -12)
else
  skipped "ctest -L gpu"
fi

# 2. compute-sanitizer on the small tests first, then on the batch, L-BFGS and matrix-free tests (step 8).
sanitize() {  # sanitize TOOL FILTER LABEL CAP
  local c
  if [ "${PINNTK_SKIP_SANITIZERS:-0}" = "1" ]; then row "compute-sanitizer $1 ($3)" "skipped (PINNTK_SKIP_SANITIZERS)"; return; fi
  c=$(cap "$4" 40)
  if [ "$c" -eq 0 ]; then skipped "compute-sanitizer $1 ($3)"; return; fi
  timeout "$c" compute-sanitizer --tool "$1" --error-exitcode 9 "$GPU_TESTS" "--gtest_filter=$2" \
    > "$OUT/sanitizer_${1}_$3.log" 2>&1
  local rc=$?
  row "compute-sanitizer $1 ($3)" "$(status $rc) $(grep -Eo '[A-Z]+ SUMMARY: .*' "$OUT/sanitizer_${1}_$3.log" | tail -1)"
}
SMALL="${PINNTK_SANITIZE_FILTER:-GpuReference.*:GpuSmall.*:GpuNd.BackendMatchesCpuFp64:GpuBackend.*BufferIs*:GpuLbfgs.OperationsMatchHostOps*:GpuBatch.TensorCoreGradient*}"
LARGE="GpuBatch.*:GpuLbfgs.*:GpuMatfree.*"
sanitize memcheck "$SMALL" small 90
sanitize racecheck "$SMALL" small 90

# 3. The CLI on the GPU against the CPU, and a checkpoint the peers recompute independently (step 9).
CK="$OUT/crosscheck"
if [ "$(cap 60)" -gt 0 ]; then
  $B train --problem darcy-twoscale --schedule 1@1e-300 --device cuda --out "$CK/init" > "$OUT/cli.log" 2>&1
  $B ntk --problem darcy-twoscale --checkpoint "$CK/init/checkpoint.json" --device cuda --out "$CK/ntk_cuda" >> "$OUT/cli.log" 2>&1
  $B ntk --problem darcy-twoscale --checkpoint "$CK/init/checkpoint.json" --device cpu --out "$CK/ntk_cpu" >> "$OUT/cli.log" 2>&1
  row "pinntk ntk cuda vs cpu (||K_uu||_F)" "$(python3 -c "
import json; a=json.load(open('$CK/ntk_cuda/summary.json'))['ntk']; b=json.load(open('$CK/ntk_cpu/summary.json'))['ntk']
print('%.17g %.17g rel %.1e' % (a['frobenius_Kuu'], b['frobenius_Kuu'], abs(a['frobenius_Kuu']/b['frobenius_Kuu']-1)))" 2>&1 | tail -1)"
  # Two and three dimensions (the tile kernels' direction-count instances).
  for p in darcy2d-ntk poisson3d-sines; do
    $B ntk --problem $p --nc 4096 --device cuda --out "$CK/ntk_${p}_cuda" >> "$OUT/cli.log" 2>&1
    $B ntk --problem $p --nc 4096 --device cpu --out "$CK/ntk_${p}_cpu" >> "$OUT/cli.log" 2>&1
    row "ntk $p cuda vs cpu" "$(python3 -c "
import json; a=json.load(open('$CK/ntk_${p}_cuda/summary.json'))['ntk']; b=json.load(open('$CK/ntk_${p}_cpu/summary.json'))['ntk']
print('||K_uu||_F rel %.1e, lambda_1 rel %.1e' % (abs(a['frobenius_Kuu']/b['frobenius_Kuu']-1), abs(a['eigenvalues_Kuu_top'][0]/b['eigenvalues_Kuu_top'][0]-1)))" 2>&1 | tail -1)"
  done
  # A full coefficient tensor: rows with their own Taylor directions (the kernels' first layer along each row's v_k).
  for d in cuda cpu; do
    $B ntk --problem-file problems/anisotropic-2d.json --nc 2048 --nb 256 --device $d --out "$CK/ntk_aniso_$d" \
      >> "$OUT/cli.log" 2>&1
  done
  row "ntk anisotropic-2d (own directions) cuda vs cpu" "$(python3 -c "
import json; a=json.load(open('$CK/ntk_aniso_cuda/summary.json'))['ntk']; b=json.load(open('$CK/ntk_aniso_cpu/summary.json'))['ntk']
print('||K_uu||_F rel %.1e, ||K||_F rel %.1e' % (abs(a['frobenius_Kuu']/b['frobenius_Kuu']-1), abs(a['frobenius_K']/b['frobenius_K']-1)))" 2>&1 | tail -1)"
else
  skipped "pinntk ntk cuda vs cpu"
fi

# 4. The benchmarks: the numbers the issues' goals ask for (Adam step, batches, LM iteration, chunked NTK, ...), in
# two runs (the device L-BFGS and NTK sections first), so that a crash in one leaves the other's numbers. A run that
# crashes is rerun in quick mode under cuda-gdb for a backtrace (bench_gdb.txt in logs.tar.gz).
bench_part() {  # bench_part SECTIONS CAP
  local c rc
  c=$(cap "$2" 40)
  if [ "$c" -eq 0 ]; then skipped "pinntk-bench --only $1"; return; fi
  timeout "$c" "$BUILD/benchmarks/pinntk-bench" --only "$1" --json "$OUT/bench_$(echo "$1" | tr , _).json" \
    >> "$OUT/bench.txt" 2>&1
  rc=$?
  row "pinntk-bench --only $1" "$(status $rc) (bench.txt)"
  if [ "$rc" -ge 128 ] && [ "$rc" -ne 137 ] && command -v cuda-gdb > /dev/null 2>&1 && [ "$(cap 60 40)" -gt 0 ]; then
    timeout "$(cap 60 40)" cuda-gdb -batch -ex run -ex bt -ex "info threads" --args "$BUILD/benchmarks/pinntk-bench" \
      --quick --only "$1" > "$OUT/bench_gdb.txt" 2>&1
    row "  backtrace (cuda-gdb)" "$(grep -m3 -E '^#[0-9]' "$OUT/bench_gdb.txt" | sed 's/ (.*//' | tr '\n' ' ' | cut -c1-110)"
  fi
}
if [ -x "$BUILD/benchmarks/pinntk-bench" ]; then
  : > "$OUT/bench.txt"
  bench_part lbfgs,ntk 120
  bench_part cpu,lm,batch,tile,cases 150
  row "batched Adam step (bench)" "$(grep -Eo 'B=1 .* per network\)' "$OUT/bench.txt" | tail -1)"
  row "Adam step, tensor-core gradient (bench)" "$(grep -Eo 'tensor-core gradient: .*' "$OUT/bench.txt" | tail -1 | cut -c23-)"
  row "device L-BFGS iteration (bench)" "$(grep -Eo 'l-bfgs iteration: .*' "$OUT/bench.txt" | tail -1 | cut -c19-)"
  row "chunked NTK 4x40 (bench)" "$(grep -Eo 'chunked ntk: .*' "$OUT/bench.txt" | tail -1 | cut -c14-)"
  row "K_s v, tile vs layers, 4x40 / 4x160, N=2^16 (ms)" "$(grep -E 'ntk product J\^T y \+ J u \(' "$OUT/bench.txt" |
    sed -E 's/.*\((tile|layers)\).* 4x([0-9]+) .*: ([0-9.]+) ms/\2 \1 \3/' | tr '\n' ' ')"
fi

# 4b. Issue 14's wide network: the top 10 eigenvalues of a 4x160 network (P = 77761) by Lanczos on the device,
# against the exact path at N = 2048 (both on CUDA), then at N = 2^20 timed (goal < 10 s, memory O(N + P)).
W="--problem darcy-twoscale --layers 1,160,160,160,160,1 --device cuda"
c=$(cap 60 40)
if [ "$c" -gt 0 ]; then
  timeout "$c" $B ntk $W --nc 2046 --eigen top:10 --out "$CK/wide_top" >> "$OUT/cli.log" 2>&1 &&
    timeout "$c" $B ntk $W --nc 2046 --eigen exact --out "$CK/wide_exact" >> "$OUT/cli.log" 2>&1
  row "4x160 N=2048 top:10 vs exact (cuda)" "$(status $?) $(python3 -c "
import json; a=json.load(open('$CK/wide_top/summary.json')); b=json.load(open('$CK/wide_exact/summary.json'))
v=a['eigen']['values']; e=b['ntk']['eigenvalues_K_top'][:len(v)]
print('max |diff| / lambda_1 %.1e, %d products' % (max(abs(x-y) for x,y in zip(v,e))/e[0], a['eigen']['products']))" 2>&1 | tail -1)"
else
  skipped "4x160 N=2048 top:10 vs exact (cuda)"
fi
c=$(cap 100 40)
if [ "$c" -gt 0 ]; then
  s=$(date +%s.%N)
  timeout "$c" $B ntk $W --nc 1048574 --eigen top:10 --out "$CK/wide_top_2e20" >> "$OUT/cli.log" 2>&1
  rc=$?
  row "4x160 N=2^20 top:10 Lanczos (cuda)" "$(status $rc) $(since "$s") $(summary "$CK/wide_top_2e20" \
    "'lambda_1 %.6e, %d products' % (s['eigen']['values'][0], s['eigen']['products'])")"
else
  skipped "4x160 N=2^20 top:10 Lanczos (cuda)"
fi

# 5. The Python module on the device: J zero-copy into torch and equal to torch.func's, pinntk.ntk cuda vs cpu.
if [ -n "$PYOPT" ] && ls "$BUILD"/_core*.so > /dev/null 2>&1; then
  c=$(cap 150 40)
  if [ "$c" -gt 0 ]; then
    PKG="$BUILD/pypkg"
    rm -rf "$PKG" && mkdir -p "$PKG/pinntk" && cp python/pinntk/*.py python/pinntk/py.typed "$BUILD"/_core*.so "$PKG/pinntk/"
    PYTHONPATH="$PKG" timeout "$c" python3 tests/python/gpu_jacobian_check.py > "$OUT/python_gpu.log" 2>&1
    row "python: J to torch (cuda)" "$(status $?) $(tail -1 "$OUT/python_gpu.log" | cut -c1-110)"
  else
    skipped "python: J to torch (cuda)"
  fi
else
  row "python module (cuda)" "not built ($([ -f "$OUT/build_python.log" ] && echo 'its build failed: build_python.log' ||
    echo 'nanobind or Python.h missing'))"
fi

# 5b. The whole reproduction at the paper's settings, timed (issue 13: under 120 s on one GPU), when asked for.
if [ "${PINNTK_DEVICE_REPRO_ALL:-0}" = "1" ]; then
  c=$(cap 170 60)
  if [ "$c" -gt 0 ]; then
    s=$(date +%s.%N)
    LBM=${PINNTK_DEVICE_REPRO_LBFGS:-two-loop}
    timeout "$c" $B reproduce all --device cuda --lbfgs-method "$LBM" --out "$CK/repro_all" > "$OUT/repro_all.log" 2>&1
    rc=$?
    row "reproduce all (cuda, L-BFGS $LBM)" "$(status $rc) $(since "$s") (limit $c s)"
    grep -E 'done' "$OUT/repro_all.log" | tail -n 12 > "$OUT/repro_all_times.txt"
  else
    skipped "pinntk reproduce all (cuda)"
  fi
fi

# 6. Levenberg-Marquardt on the device (cuSOLVER potrf/potrs): the 2-D Poisson benchmark of Dangel et al.
# (D = 257; goal rel L2 <= 5e-8 in <= 5 s) and a short Darcy run, timed.
c=$(cap 90)
if [ "$c" -gt 0 ]; then
  s=$(date +%s.%N)
  timeout "$c" $B train --problem poisson2d-sines --schedule 100@1e-2 --optimizer lm --lm-iters 1500 --lm-tol 0 \
    --history-every 50 --device cuda --out "$CK/p2d_lm" >> "$OUT/cli.log" 2>&1
  row "poisson2d-sines D=257 LM (cuda)" "$(status $?) $(summary "$CK/p2d_lm" \
    "'rel L2 %.2e max %.2e' % (s['rel_l2_error'], s['max_error'])") $(since "$s")"
else
  skipped "poisson2d-sines D=257 LM (cuda)"
fi
c=$(cap 60)
if [ "$c" -gt 0 ]; then
  s=$(date +%s.%N)
  timeout "$c" $B train --problem darcy-twoscale --eps 1/32 --optimizer lm --lm-iters 200 --schedule 1@1e-300 \
    --device cuda --out "$CK/lm" >> "$OUT/cli.log" 2>&1
  row "pinntk train --optimizer lm (200 it)" "$(status $?) $(summary "$CK/lm" \
    "'loss %.3e max error %.3e' % (s['final_loss'], s['max_error'])") $(since "$s")"
else
  skipped "pinntk train --optimizer lm (200 it)"
fi

# 7. Batches of networks through the CLI: fig4's quick trials as one batch; an ensemble of three whose member 1
# must be the single run with --seed 1; Fig. 2 at the paper's settings (95 trainings as one batch); two LM runs at
# once from two host threads.
c=$(cap 120)
if [ "$c" -gt 0 ]; then
  timeout "$c" $B reproduce fig4 --quick --device cuda --out "$CK/fig4_batch" > "$OUT/fig4_batch.log" 2>&1
  row "reproduce fig4 --quick (batch)" "$(status $?) $(tail -1 "$OUT/fig4_batch.log" | cut -c1-80)"
else
  skipped "reproduce fig4 --quick (batch)"
fi
c=$(cap 60)
if [ "$c" -gt 0 ]; then
  ENS="train --problem darcy-twoscale --schedule 300@1e-3 --lbfgs 20 --device cuda"
  timeout "$c" $B $ENS --ensemble 3 --out "$CK/ensemble3" > "$OUT/ensemble.log" 2>&1
  timeout "$c" $B $ENS --seed 1 --out "$CK/ensemble_seed1" >> "$OUT/ensemble.log" 2>&1
  if cmp -s "$CK/ensemble3/member_001/checkpoint.json" "$CK/ensemble_seed1/checkpoint.json"; then
    row "ensemble 3 (cuda batch) vs --seed 1" "member_001 checkpoint identical"
  else
    row "ensemble 3 (cuda batch) vs --seed 1" "DIFFERENT (see ensemble.log)"
  fi
else
  skipped "ensemble 3 (cuda batch) vs --seed 1"
fi
c=$(cap 180 60)
if [ "$c" -gt 0 ]; then
  s=$(date +%s)
  timeout "$c" $B reproduce fig2 --device cuda --out "$CK/fig2_batch" > "$OUT/fig2_batch.log" 2>&1
  row "reproduce fig2 (95 as one batch)" "$(status $?) $(( $(date +%s) - s )) s; $(grep -m1 'one batch done' "$OUT/fig2_batch.log" | cut -c1-60)"
else
  skipped "reproduce fig2 (95 as one batch)"
fi
c=$(cap 90)
if [ "$c" -gt 0 ]; then
  timeout "$c" $B reproduce lm --quick --concurrent-runs 2 --device cuda --out "$CK/lm_concurrent" \
    > "$OUT/lm_concurrent.log" 2>&1
  row "reproduce lm --quick --concurrent-runs 2" "$(status $?) $(tail -1 "$OUT/lm_concurrent.log" | cut -c1-80)"
else
  skipped "reproduce lm --quick --concurrent-runs 2"
fi

# 8. compute-sanitizer on the larger tests.
sanitize memcheck "$LARGE" large 120
sanitize racecheck "$LARGE" large 120

# 9. The peers on the same checkpoint (their NTK numbers recomputed independently).
if [ -d benchmarks/peers ] && [ "${PINNTK_SKIP_PEERS:-0}" != "1" ]; then
  for peer in benchmarks/peers/*_peer.py; do
    [ -f "$peer" ] || continue
    name=$(basename "$peer" .py)
    c=$(cap 150 60)
    if [ "$c" -eq 0 ]; then skipped "peer $name"; continue; fi
    PYTHONUNBUFFERED=1 timeout "$c" python3 "$peer" --device cuda --budget 4 --check --checkpoint "$CK/init/checkpoint.json" \
      --json "$OUT/peer_$name.json" > "$OUT/peer_$name.txt" 2>&1
    rc=$?
    # the Adam step of one network and of ten at once (vmap over the networks), beside pinntk-bench's batch row
    steps=$(python3 -c "import json; t=json.load(open('$OUT/peer_$name.json'))['timings']; print('Adam step %.1f us, ten networks %.1f us' % (t['adam_step']['median'], t['adam_step_ensemble10']['median']))" 2>/dev/null)
    row "peer $name" "$(status $rc) ${steps:-$(tail -1 "$OUT/peer_$name.txt" | cut -c1-80)}"
  done
fi

# 9b. Asked for (PINNTK_DEVICE_NTK_PEERS=1): the NTK at scale on the device beside torch.func and JAX (issue 14), from
# the cross-check's checkpoint, each (library, size) in its own process (benchmarks/peers/ntk_scale.py, ntk_top.py).
if [ "${PINNTK_DEVICE_NTK_PEERS:-0}" = "1" ] && [ -f "$CK/init/checkpoint.json" ]; then
  c=$(cap 240 60)
  if [ "$c" -gt 0 ]; then
    PYTHONUNBUFFERED=1 timeout "$c" python3 benchmarks/peers/ntk_scale.py sweep --device cuda \
      --libs pinntk-chunked,torch-chunked,jax --pinntk "$B" --checkpoint "$CK/init/checkpoint.json" \
      --sizes "${PINNTK_DEVICE_NTK_SIZES:-65536,262144,1048576}" --cap '' --timeout 75 --out "$OUT/ntk_scale" \
      > "$OUT/ntk_scale.log" 2>&1
    row "ntk_scale.py sweep (cuda)" "$(status $?) (ntk_scale/results.jsonl in logs.tar.gz)"
    python3 benchmarks/peers/ntk_scale.py table "$OUT/ntk_scale/results.jsonl" > "$OUT/ntk_scale_table.txt" 2>&1
  else
    skipped "ntk_scale.py sweep (cuda)"
  fi
  # The wide network's top 10 eigenvalues (step 4b's request) beside torch.func and JAX, formed and matrix-free
  # (benchmarks/peers/ntk_top.py); the 4x160 checkpoint is made on the CPU (the tile kernels refuse that width).
  c=$(cap 240 60)
  if [ "$c" -gt 0 ]; then
    $B train --problem darcy-twoscale --layers 1,160,160,160,160,1 --schedule 1@1e-300 --device cpu \
      --out "$CK/wide_init" >> "$OUT/cli.log" 2>&1
    PYTHONUNBUFFERED=1 timeout "$c" python3 benchmarks/peers/ntk_top.py sweep --device cuda --pinntk "$B" \
      --libs pinntk,jax-matfree,torch-matfree,jax --checkpoint "$CK/wide_init/checkpoint.json" \
      --sizes "${PINNTK_DEVICE_TOP_SIZES:-65534,262142,1048574}" \
      --cap '' --timeout 90 --timeout-soft 60 --out "$OUT/ntk_top" > "$OUT/ntk_top.log" 2>&1
    row "ntk_top.py sweep, 4x160 (cuda)" "$(status $?) (ntk_top_table.txt)"
    python3 benchmarks/peers/ntk_top.py table "$OUT/ntk_top/results.jsonl" > "$OUT/ntk_top_table.txt" 2>&1
  else
    skipped "ntk_top.py sweep, 4x160 (cuda)"
  fi
fi

# 10. Asked for: the whole LM study, an ncu profile.
if [ "${PINNTK_DEVICE_LM:-0}" = "1" ]; then
  c=$(cap "${PINNTK_DEVICE_LM_TIMEOUT:-240}" 60)
  if [ "$c" -gt 0 ]; then
    timeout "$c" $B reproduce lm --device cuda --out "$OUT/repro_lm" > "$OUT/repro_lm.log" 2>&1
    row "pinntk reproduce lm (cuda)" "$(status $?) (lm_runs.csv; the rest in logs.tar.gz)"
    cp "$OUT/repro_lm/lm/runs.csv" "$OUT/lm_runs.csv" 2>/dev/null
  else
    skipped "pinntk reproduce lm (cuda)"
  fi
fi
if [ "${PINNTK_PROFILE:-0}" = "1" ] && command -v ncu > /dev/null 2>&1; then
  c=$(cap 120 60)
  if [ "$c" -gt 0 ]; then
    OUT="$OUT" timeout "$c" bash benchmarks/profile.sh "$BUILD" > "$OUT/profile.txt" 2>&1
    row "ncu profile" "$(status $?) (profile.txt)"
    rm -f "$OUT/ncu.txt"
  else
    skipped "ncu profile"
  fi
fi

# 11. The CPU suite on the device machine (CI runs it on every submission; here only with time to spare).
c=$(cap 120 60)
if [ "$c" -gt 0 ]; then
  timeout "$c" ctest --test-dir "$BUILD" -LE gpu -j"$(nproc)" --output-on-failure > "$OUT/ctest_cpu.log" 2>&1
  row "ctest (cpu suite)" "$(status $?) $(grep -E 'tests passed|tests failed' "$OUT/ctest_cpu.log" | tail -1)"
else
  skipped "ctest (cpu suite)"
fi
