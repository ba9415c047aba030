"""Levenberg-Marquardt training of the Darcy PINN (Sec. 4.2, eps = 1/32) with a live plot of its error.

    python3 examples/lm_darcy_live.py [--quick] [--out lm_error.png]

The progress callback receives every LM iteration with the newest history row (max-norm error on the test points);
the plot updates in a window when there is a display and is saved as a PNG (matplotlib's Agg backend otherwise).
Ctrl-C stops the training cleanly: the network keeps its last accepted step.
"""

import argparse
import os

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import pinntk  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--quick", action="store_true", help="a small network, few points and iterations (a CI smoke test)")
ap.add_argument("--out", default="lm_error.png")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

problem = pinntk.Problem.preset("darcy-twoscale", eps=1 / 32, nc=256 if args.quick else 1024)
layers = [1, 16, 16, 1] if args.quick else [1, 40, 40, 40, 40, 1]
net = pinntk.Mlp.for_problem(problem, seed=0, layers=layers)

fig, ax = plt.subplots(figsize=(5, 3.5))
(line,) = ax.semilogy([], [], "-o", ms=3)
ax.set_xlabel("iteration")
ax.set_ylabel("max |u - u*|")
ax.set_title(f"LM on {problem.name}, eps = 1/{1 / problem.eps:.0f}")
its, errs = [], []
interactive = matplotlib.get_backend().lower() != "agg"


def show(info):
    if info.phase != "lm" or info.row is None or (its and its[-1] == info.row["iteration"]):
        return
    its.append(info.row["iteration"])
    errs.append(info.row["max_error"])
    line.set_data(its, errs)
    ax.relim()
    ax.autoscale_view()
    if interactive:
        plt.pause(0.001)


try:
    r = pinntk.train(
        problem, net, schedule="200@1e-3", optimizer="lm", lm_iters=20 if args.quick else 300,
        history_every=1 if args.quick else 5, device=args.device, progress=show,
    )  # fmt: skip
except pinntk.TrainingInterrupted as e:
    r = e.result
    print("interrupted: the network holds its last good state")
print(r)
print(f"max error {r.max_error:.3e}, relative L2 error {r.rel_l2_error:.3e} after {r.iterations} iterations")
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"error plot in {args.out}")
x = np.linspace(-np.pi, np.pi, 5)
print("u(x) at", x, "=", np.round(net(x), 4))
