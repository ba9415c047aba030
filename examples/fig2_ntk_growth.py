"""Fig. 2a of Gangal, Kim & Carney in a dozen lines: ||K_uu||_F of the darcy-ntk PINN grows like 1/eps^2.

    python3 examples/fig2_ntk_growth.py [--quick]
"""

import argparse

import numpy as np

import pinntk

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--quick", action="store_true", help="4 values of eps instead of 10 (a CI smoke test)")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

inv_eps = np.array([10, 20, 40, 80] if args.quick else list(range(10, 101, 10)), dtype=float)
net = pinntk.Mlp([1, 50, 1], init="normal", seed=0)  # the Fig. 2a network at initialization
norms = [pinntk.ntk(pinntk.Problem.preset("darcy-ntk", eps=1 / k), net, device=args.device).frobenius_Kuu for k in inv_eps]
slope = np.polyfit(np.log(1 / inv_eps), np.log(norms), 1)[0]
for k, f in zip(inv_eps, norms):
    print(f"1/eps = {k:5.0f}   ||K_uu||_F = {f:.4e}")
print(f"log-log slope of ||K_uu||_F against eps: {slope:.2f} (paper: -2)")
