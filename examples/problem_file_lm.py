"""Your own problem in a file: check it, train the PINN with Levenberg-Marquardt, and measure it against the
reference solution pinntk computes when the file gives no exact one.

    python3 examples/problem_file_lm.py [--quick] [--file problems/incommensurate-1d.json]
"""

import argparse
import os

import pinntk

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--file", default=os.path.join(here, "..", "problems", "incommensurate-1d.json"))
ap.add_argument("--quick", action="store_true", help="a small network and few iterations (a CI smoke test)")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

problem = pinntk.Problem.from_file(args.file, nc=128 if args.quick else None)
print(problem.check())  # what the file defines; a forcing that does not match its exact solution is marked CHECK
net = pinntk.Mlp([problem.dim, 20, 20, 1] if args.quick else problem.default_layers, seed=0)
result = pinntk.train(problem, net, schedule="500@1e-3" if args.quick else "1000@1e-3", optimizer="lm",
                      lm_iters=100 if args.quick else 500, device=args.device, progress=False)  # fmt: skip
h = result.history
print(f"{result.iterations} iterations: loss {result.final_loss:.3e}, max error {result.max_error:.3e}, "
      f"relative L2 error {result.rel_l2_error:.3e} (against the file's exact solution or pinntk's reference)")
print(f"max error every {int(h['iteration'][1] - h['iteration'][0])} iterations:",
      " ".join(f"{e:.1e}" for e in h["max_error"][-5:]))
