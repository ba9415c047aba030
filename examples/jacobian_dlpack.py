"""The Jacobian without a copy: pinntk computes J, your array library takes it as it is (DLPack).

    python3 examples/jacobian_dlpack.py [--quick] [--device cuda]

On the CPU, J is a numpy array; on CUDA it stays in device memory and torch.from_dlpack (or cupy.from_dlpack,
jax.dlpack.from_dlpack) wraps it without copying. The script checks that (the same address), forms the kernel
K_s = D^1/2 J J^T D^1/2 with the library it found, and compares its largest eigenvalue with pinntk.ntk's.
"""

import argparse

import numpy as np

import pinntk

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--quick", action="store_true", help="a small network and point set (a CI smoke test)")
ap.add_argument("--device", default="auto")
args = ap.parse_args()

problem = pinntk.Problem.preset("darcy-twoscale", eps=1 / 32, nc=256 if args.quick else 4096)
net = pinntk.Mlp([1, 20, 20, 1] if args.quick else [1, 40, 40, 40, 40, 1], seed=0)
res = pinntk.jacobian(problem, net, device=args.device)
d = np.sqrt(problem.weights)
try:
    import torch

    J = torch.from_dlpack(res.J)  # no copy: the same memory, on the CPU or the GPU
    same = J.data_ptr() == res.data_ptr
    Jh = J * torch.from_numpy(d).to(J.device)[:, None]
    lam1 = torch.linalg.eigvalsh(Jh @ Jh.T)[-1].item()
    lib = f"torch ({J.device})"
except ImportError:
    J = np.from_dlpack(res.J)  # numpy takes host arrays only: the CPU backend's
    same = J.__array_interface__["data"][0] == res.data_ptr
    Jh = J * d[:, None]
    lam1 = np.linalg.eigvalsh(Jh @ Jh.T)[-1]
    lib = "numpy"
ref = pinntk.ntk(problem, net, device=res.device).spectrum_K[0]
print(f"J: {res.J.shape[0]} x {res.J.shape[1]} on {res.device}, taken by {lib} without a copy: {same}")
print(f"lambda_1(K) = {lam1:.12e} from J, {ref:.12e} from pinntk.ntk (relative difference {abs(lam1 / ref - 1):.1e})")
assert same and abs(lam1 / ref - 1) < 1e-10
