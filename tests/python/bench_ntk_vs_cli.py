"""Python call vs CLI on the same work: the NTK of the Fig. 2 network (darcy-ntk, layers 1,50,1, nc 256, CPU).

    python3 tests/python/bench_ntk_vs_cli.py [--cli build/pinntk] [--reps 20]

Interleaves fresh processes of both and prints medians of
  (a) the work itself: the CLI's own wall_time_s (summary.json: setup, backend, analysis, JSON) beside the time of
      Problem.preset + Mlp + pinntk.ntk in a fresh Python process (first call, as the CLI's only call);
  (b) the whole process: `pinntk ntk ... --out DIR` beside `python3 -c "import pinntk; ..."`;
  (a') the same first call 0.3 s after the import (numpy's OpenBLAS threads, woken by its import, spin for a
      while and take a core from the computation on a small machine);
  (c) repeated calls in one Python process (backend made once).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "pinntk"))
ap.add_argument("--reps", type=int, default=20)
args = ap.parse_args()

SNIPPET = r"""
import time, sys
t0 = time.perf_counter()
import pinntk
time.sleep(float(sys.argv[1]))  # 0, or a pause for the threads that importing numpy woke to go back to sleep
t1 = time.perf_counter()
r = pinntk.ntk(pinntk.Problem.preset("darcy-ntk", nc=256), pinntk.Mlp([1, 50, 1], init="normal", seed=0), device="cpu")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, r.frobenius_Kuu)
"""

cli_work, cli_proc, py_work, py_proc, py_import, py_settled = [], [], [], [], [], []
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "ntk")
    for _ in range(args.reps):
        t = time.perf_counter()
        subprocess.run([args.cli, "ntk", "--problem", "darcy-ntk", "--layers", "1,50,1", "--nc", "256", "--device", "cpu",
                        "--out", out], check=True, capture_output=True)  # fmt: skip
        cli_proc.append(time.perf_counter() - t)
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
        cli_work.append(s["wall_time_s"])
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", SNIPPET, "0"], check=True, capture_output=True, text=True)
        py_proc.append(time.perf_counter() - t)
        imp, work, frob = p.stdout.split()
        py_import.append(float(imp))
        py_work.append(float(work))
        assert abs(float(frob) / s["ntk"]["frobenius_Kuu"] - 1) < 1e-14, (frob, s["ntk"]["frobenius_Kuu"])
        p = subprocess.run([sys.executable, "-c", SNIPPET, "0.3"], check=True, capture_output=True, text=True)
        py_settled.append(float(p.stdout.split()[1]))

import pinntk  # noqa: E402

prob = pinntk.Problem.preset("darcy-ntk", nc=256)
net = pinntk.Mlp([1, 50, 1], init="normal", seed=0)
pinntk.ntk(prob, net, device="cpu")
loop = []
for _ in range(max(50, args.reps)):
    t = time.perf_counter()
    pinntk.ntk(pinntk.Problem.preset("darcy-ntk", nc=256), pinntk.Mlp([1, 50, 1], init="normal", seed=0), device="cpu")
    loop.append(time.perf_counter() - t)

med = statistics.median
mn = min
print(f"(a) the work        CLI wall_time_s median {med(cli_work)*1e3:7.2f} ms (min {mn(cli_work)*1e3:6.2f})   "
      f"Python first call median {med(py_work)*1e3:7.2f} ms (min {mn(py_work)*1e3:6.2f})   "
      f"ratio of medians {med(py_work)/med(cli_work):.2f}")
print(f"(a') Python first call 0.3 s after the import: median {med(py_settled)*1e3:7.2f} ms (min {mn(py_settled)*1e3:6.2f})")
print(f"(b) whole process   CLI median {med(cli_proc)*1e3:7.1f} ms   python3 -c median {med(py_proc)*1e3:7.1f} ms "
      f"(of which import pinntk {med(py_import)*1e3:.1f} ms)")
print(f"(c) repeated calls in one process: median {med(loop)*1e3:.2f} ms, min {mn(loop)*1e3:.2f} ms")
