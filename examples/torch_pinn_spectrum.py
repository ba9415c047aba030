"""The NTK spectrum of your own PyTorch PINN: any nn.Sequential of Linear and Tanh layers, on a pinntk problem.

    python3 examples/torch_pinn_spectrum.py [--quick] [--plot spectrum.png]

pinntk takes the model's parameters (Mlp.from_torch), forms the Jacobian of every residual of the Darcy problem
-(a(x/eps) u')' = f and the kernel K = J J^T D of Lemma 3.1, and returns its full spectrum as numpy arrays.
Without torch it prints a note and exits 0; --plot needs matplotlib (without it: a one-line message, exit status 1).
"""

import argparse
import sys

import numpy as np

import pinntk

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--quick", action="store_true", help="a small network and point set (a CI smoke test)")
ap.add_argument("--plot", help="draw the spectra into this PNG (matplotlib)")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

if args.plot:  # before the work: --plot asked for a picture this python cannot draw
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("--plot needs matplotlib, which is not installed (pip install matplotlib; or run without --plot)")

try:
    import torch
    from torch import nn
except ImportError:
    print("torch is not installed (pip install torch): nothing to do")
    sys.exit(0)

torch.manual_seed(0)
width = 16 if args.quick else 64
model = nn.Sequential(  # "your" PINN, e.g. trained elsewhere
    nn.Linear(1, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1)
).double()

problem = pinntk.Problem.preset("darcy-twoscale", eps=1 / 32, nc=128 if args.quick else 1024)
net = pinntk.Mlp.from_torch(model)
r = pinntk.ntk(problem, net, device=args.device)
lam = r.spectrum_Kuu
print(f"{problem.name}, eps = {problem.eps:g}: N = {r.nc + r.nb} rows, P = {r.n_params} parameters ({r.device})")
print(f"||K_uu||_F = {r.frobenius_Kuu:.4e}, lambda_1..3 = {lam[0]:.4e} {lam[1]:.4e} {lam[2]:.4e}")
above = lam[lam > lam[0] * 1e-15]
print(f"{above.size} of {lam.size} eigenvalues above the rounding level; lambda_1 / lambda_min there = {lam[0] / above[-1]:.3e}")

if args.plot:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(np.arange(1, lam.size + 1), np.maximum(lam, 1e-300), ".", ms=3, label="K_uu")
    ax.semilogy(np.arange(1, r.spectrum_K.size + 1), np.maximum(r.spectrum_K, 1e-300), ".", ms=2, label="K")
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue")
    ax.set_ylim(lam[0] * 1e-18, lam[0] * 10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"spectra drawn in {args.plot}")
