#!/usr/bin/env python3
"""The top eigenvalues of a wide network's NTK: pinntk `ntk --eigen top:K` against what PyTorch (torch.func) and JAX
do with the same request.

darcy-twoscale (eps = 1/32), N = Nc + 2 rows, a network of the checkpoint's layers (e.g. 1,160,160,160,160,1,
P = 77761), fp64, the K largest eigenvalues of the NTK K_s = D^1/2 J J^T D^1/2 of Lemma 3.1 (w = 1/Nc for
collocation, lambda/2 for the boundary rows), by one of:

  pinntk         `pinntk ntk --eigen top:K`: Spectra's Lanczos on K_s (N <= P) or on the Gram Jh^T Jh (N > P), each
                 product one J^T y and one J u pass over the points, nothing of size N x P formed.
  torch, jax     the idiomatic way: J (N x P) by vmap(jacrev) / jit(vmap(grad)), K_s = Jh Jh^T (N <= P) or the Gram
                 Jh^T Jh (N > P), eigvalsh, the top K kept.
  torch-matfree, what a careful user writes to avoid J: scipy.sparse.linalg.eigsh (ARPACK) on a LinearOperator
  jax-matfree    whose product is the library's forward-mode J u (torch.func.jvp; jax.jvp) and reverse-mode J^T y
                 (torch.func.vjp; jax.vjp) of the vmapped residual over all rows, the same operator as pinntk's
                 (K_s for N <= P, else the Gram), which="LA", ncv = max(2K + 1, K + 8), tol 1e-12: pinntk's
                 Lanczos settings (host/ntk_lanczos.cpp, lanczos_vectors). JAX's product is one jax.jit.

The residual is the peers' own (torch_peer.py / jax_peer.py: nested jvp in x for u' and u''). Each (library, size)
runs in its own process under a memory cap (RLIMIT_DATA) and a wall-clock limit, as ntk_scale.py's sweep does
(its helpers are used here); the peak RSS is the child's ru_maxrss. Times include the process's start and imports.

  build/pinntk train --problem darcy-twoscale --layers 1,160,160,160,160,1 --schedule 1@1e-300 --out CK
  python3 ntk_top.py sweep --checkpoint CK/checkpoint.json --sizes 2048,8192,32768 --cap 8G --timeout 600 --out DIR
  python3 ntk_top.py table DIR/results.jsonl
  python3 ntk_top.py one --lib jax-matfree --nc 2046 --checkpoint CK/checkpoint.json   # one JSON line

On a GPU (--device cuda): pinntk --device cuda; torch and JAX on the device (their products there; ARPACK's own
vectors on the host, copied each product); no RLIMIT_DATA cap (it can break CUDA initialisation).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common as C  # noqa: E402
import ntk_scale as S  # noqa: E402
import numpy as np  # noqa: E402

PROBLEM = S.PROBLEM
LIBS = ["pinntk", "torch", "torch-matfree", "jax", "jax-matfree"]


def ncv_of(k, dim):
    """pinntk's Krylov subspace size (host/ntk_lanczos.cpp)."""
    return min(dim, max(2 * k + 1, k + 8))


def setup(a):
    """(layers, flat parameters, rows, N, P) of a run: the checkpoint's network, darcy-twoscale's rows."""
    if not a.checkpoint:
        raise SystemExit("ntk_top: --checkpoint is required (the network whose NTK is analysed)")
    layers, theta = C.load_checkpoint(a.checkpoint)
    pts = C.points(PROBLEM, a.nc)
    N, P = len(pts["x"]), C.n_params(layers)
    if not 1 <= a.k < min(N, P):
        raise SystemExit(f"ntk_top: --k must lie in [1, min(N, P) - 1 = {min(N, P) - 1}], got {a.k}")
    return layers, theta, pts, N, P


def arpack_top(matvec, dim, k, tol):
    """The k largest eigenvalues of a symmetric operator by ARPACK (scipy), descending, and the product count."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    count = [0]

    def mv(v):
        count[0] += 1
        return matvec(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
    op = LinearOperator((dim, dim), matvec=mv, dtype=np.float64)
    vals = eigsh(op, k=k, which="LA", ncv=ncv_of(k, dim), tol=tol, return_eigenvectors=False)
    return sorted((float(v) for v in vals), reverse=True), count[0]


# ------------------------------------------------------------------------------------------------------------ torch

def run_torch(a, matfree):
    import torch
    from torch.func import jacrev, jvp, vjp, vmap
    import torch_peer as T

    torch.set_num_threads(a.threads)
    dev = S.torch_device(a)
    cuda = dev.type == "cuda"

    def clock():
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    dt = torch.float64
    layers, theta_np, pts, N, P = setup(a)
    theta = torch.as_tensor(theta_np, dtype=dt, device=dev)
    cols = tuple(torch.as_tensor(pts[k], dtype=dt, device=dev) for k in ("x", "alpha", "beta", "gamma", "f"))
    sw = torch.as_tensor(pts["w"], dtype=dt, device=dev).sqrt()
    gram = N > P
    dim = P if gram else N
    t0 = clock()
    out = {}
    if matfree:
        rows = vmap(T.r_point, in_dims=(None, 0, 0, 0, 0, 0))

        def R(th):  # every row's residual as a function of the flat parameters
            return rows(T.unflatten(th, layers), *cols)

        def J(u):
            return jvp(R, (theta,), (u,))[1]

        def JT(y):
            return vjp(R, theta)[1](y)[0]

        def matvec(v):
            v = torch.as_tensor(v, dtype=dt, device=dev)
            with torch.no_grad():
                y = JT(sw * J(v) * sw) if gram else sw * J(JT(sw * v))
            return y.cpu().numpy()
        top, products = arpack_top(matvec, dim, a.k, a.tol)
        out.update(products=products, operator="Jh^T Jh (P x P)" if gram else "K_s (N x N)")
    else:
        jac_rows = vmap(jacrev(T.r_point), in_dims=(None, 0, 0, 0, 0, 0))
        with torch.no_grad():
            g = jac_rows(T.unflatten(theta, layers), *cols)
            Jh = sw[:, None] * T.flat([x for wb in g for x in wb], lead=(N,))
            del g
            out["jacobian_s"] = clock() - t0
            M = Jh.T @ Jh if gram else Jh @ Jh.T
            del Jh
            ev = torch.linalg.eigvalsh(M)
        top = torch.sort(ev, descending=True).values[:a.k].tolist()
    out["compute_s"] = clock() - t0
    return dict(version=torch.__version__, threads=torch.get_num_threads(), eig_top=top, **out,
                **(S.torch_device_info(dev) if cuda else {}))


# -------------------------------------------------------------------------------------------------------------- jax

def run_jax(a, matfree):
    import jax
    dev = S.jax_device(a)
    import jax.numpy as jnp
    import jax_peer as JP

    layers, theta_np, pts, N, P = setup(a)
    gram = N > P
    dim = P if gram else N

    def r_point(theta, x, al, be, ga, f):
        return JP.r_point(JP.unflatten(theta, layers), x, al, be, ga, f)

    cols = tuple(jnp.asarray(pts[k]) for k in ("x", "alpha", "beta", "gamma", "f"))
    sw = jnp.sqrt(jnp.asarray(pts["w"]))
    theta = jnp.asarray(theta_np)
    jax.block_until_ready((cols, sw, theta))
    t0 = time.perf_counter()
    out = {}
    if matfree:
        rows = jax.vmap(r_point, in_axes=(None, 0, 0, 0, 0, 0))

        def R(th):
            return rows(th, *cols)

        @jax.jit
        def matvec_dev(v):
            def J(u):
                return jax.jvp(R, (theta,), (u,))[1]

            def JT(y):
                return jax.vjp(R, theta)[1](y)[0]
            return JT(sw * J(v) * sw) if gram else sw * J(JT(sw * v))

        compiled = matvec_dev.lower(jnp.zeros(dim)).compile()
        out["compile_s"] = time.perf_counter() - t0

        def matvec(v):
            return np.asarray(jax.block_until_ready(compiled(jnp.asarray(v))))
        top, products = arpack_top(matvec, dim, a.k, a.tol)
        out.update(products=products, operator="Jh^T Jh (P x P)" if gram else "K_s (N x N)")
    else:
        rows = jax.vmap(jax.grad(r_point), in_axes=(None, 0, 0, 0, 0, 0))

        @jax.jit
        def top_k(th):
            Jh = sw[:, None] * rows(th, *cols)
            M = Jh.T @ Jh if gram else Jh @ Jh.T
            return jnp.sort(jnp.linalg.eigvalsh(M))[::-1][:a.k]
        compiled = top_k.lower(theta).compile()
        out["compile_s"] = time.perf_counter() - t0
        top = [float(v) for v in np.asarray(jax.block_until_ready(compiled(theta)))]
    out["compute_s"] = time.perf_counter() - t0
    return dict(version=jax.__version__, eig_top=top, **out, **(S.jax_device_info(dev) if a.device == "cuda" else {}))


def one(a):
    """One child run: one JSON line on stdout; running out of device memory on --device cuda: a JSON line saying so,
    one line on stderr, exit status 3 (as ntk_scale.py's children)."""
    matfree = a.lib.endswith("-matfree")
    r = S.run_reporting_device_oom(
        a, lambda: run_jax(a, matfree) if a.lib.startswith("jax") else run_torch(a, matfree), "ntk_top")
    r.update(lib=a.lib, nc=a.nc, N=a.nc + 2, k=a.k, tol=a.tol)
    print(json.dumps(r), flush=True)


# ------------------------------------------------------------------------------------------------------ the parent

def sweep(a):
    sizes = [int(s) for s in a.sizes.split(",")]
    libs = a.libs.split(",")
    unknown = [l for l in libs if l not in LIBS]
    if unknown:
        raise SystemExit(f"ntk_top: unknown --libs {','.join(unknown)} (known: {','.join(LIBS)})")
    if not a.checkpoint or not os.path.isfile(a.checkpoint):
        raise SystemExit(f"ntk_top: --checkpoint {a.checkpoint or '(none)'}: no such file")
    layers, _ = C.load_checkpoint(a.checkpoint)
    P = C.n_params(layers)
    os.makedirs(a.out, exist_ok=True)
    cap = S.parse_size(a.cap) if a.cap else 0
    cuda = a.device == "cuda"
    if cuda and cap:
        print(f"ntk_top: warning: --cap {a.cap} is not applied with --device cuda", file=sys.stderr, flush=True)
        cap = 0
    resf = os.path.join(a.out, "results.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads),
               MKL_NUM_THREADS=str(a.threads))
    results = []

    def emit(rec):
        results.append(rec)
        print(json.dumps(rec), flush=True)
        with open(resf, "a") as fh:
            fh.write(json.dumps(rec) + "\n")

    for lib in libs:
        failed = None
        for nc in sizes:
            rec = dict(lib=lib, nc=nc, N=nc + 2, P=P, layers=layers, k=a.k, cap_bytes=cap, timeout_s=a.timeout)
            if cuda:
                rec["device"] = "cuda"
            if failed:
                rec.update(status="skipped", note=f"skipped after {failed}")
                emit(rec)
                continue
            if lib == "pinntk":
                od = os.path.join(a.out, f"pinntk_nc{nc}")
                cmd = [a.pinntk, "ntk", "--problem", PROBLEM, "--nc", str(nc), "--checkpoint", a.checkpoint,
                       "--eigen", f"top:{a.k}", "--device", a.device, "--threads", str(a.threads), "--out", od]
            else:
                cmd = [sys.executable, os.path.abspath(__file__), "one", "--lib", lib, "--nc", str(nc), "--k",
                       str(a.k), "--threads", str(a.threads), "--checkpoint", a.checkpoint, "--device", a.device]
            so, se, failed = S.run_recorded(rec, cmd, cap, a, env, lib != "pinntk")
            if rec["status"] == "ok":
                if lib == "pinntk":
                    s = json.load(open(os.path.join(od, "summary.json")))
                    rec.update(eig_top=s["eigen"]["values"], products=s["eigen"]["products"],
                               operator=s["eigen"]["operator"], compute_s=s["wall_time_s"],
                               pinntk_device=s.get("device"), stderr_tail=se[-400:])
                else:
                    rec.update(S.child_json(so))
            emit(rec)
    return results


def fmt_rec(r):
    st = r.get("status")
    if st == "ok":
        dev = f" / dev {S.gib(r['peak_device_bytes'])}" if r.get("peak_device_bytes") is not None else ""
        prod = f", {r['products']} products" if r.get("products") else ""
        return f"{r['wall_s']:.1f} s / {r['peak_rss_bytes'] / 2**30:.2f} GiB{dev}{prod}"
    return S.fmt_rec(r)


def table(a):
    recs = {}
    for path in a.results:
        for line in open(path):
            r = json.loads(line)
            recs[(r["lib"], r["nc"])] = r
    libs = [l for l in LIBS if any(k[0] == l for k in recs)]
    sizes = sorted({k[1] for k in recs})
    any_rec = next(iter(recs.values()))
    print(f"Layers {any_rec.get('layers')} (P = {any_rec.get('P')}), top {any_rec.get('k')} eigenvalues of the NTK; "
          "time (process wall clock) / peak RSS, products of the Krylov method where it has them")
    print()
    print("| Nc (N = Nc + 2) | " + " | ".join(libs) + " |")
    print("|---|" + "---|" * len(libs))
    for nc in sizes:
        print(f"| {nc} | " + " | ".join(fmt_rec(recs[(l, nc)]) if (l, nc) in recs else "-" for l in libs) + " |")
    print()
    print("| Nc | peer | lambda_1 | max_i |lambda_i - pinntk's| / lambda_i |")
    print("|---|---|---|---|")
    for nc in sizes:
        ref = recs.get(("pinntk", nc))
        if not ref or ref.get("status") != "ok":
            continue
        for l in libs:
            r = recs.get((l, nc))
            if not r or r.get("status") != "ok" or r is ref:
                continue
            d = max(abs(x - y) / abs(y) for x, y in zip(r["eig_top"], ref["eig_top"]))
            print(f"| {nc} | {l} | {r['eig_top'][0]:.15g} | {d:.1e} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one", help="one child run; prints one JSON line")
    o.add_argument("--lib", choices=[l for l in LIBS if l != "pinntk"], required=True)
    o.add_argument("--nc", type=int, required=True)
    o.add_argument("--checkpoint", required=True)
    o.add_argument("--k", type=int, default=10)
    o.add_argument("--tol", type=float, default=1e-12)
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    s = sub.add_parser("sweep", help="all (library, size) runs in capped subprocesses")
    s.add_argument("--libs", default=",".join(LIBS))
    s.add_argument("--sizes", default="2046,8190,32766")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--pinntk", default=os.path.join(HERE, "..", "..", "build", "pinntk"))
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--cap", default="8G", help="RLIMIT_DATA of each child (default 8G; '' for none)")
    s.add_argument("--timeout", type=float, default=600.0, help="kill a child after this many seconds")
    s.add_argument("--timeout-soft", type=float, default=300.0,
                   help="skip the larger sizes of a library once a run took longer than this (default 300)")
    s.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    s.add_argument("--out", required=True)
    t = sub.add_parser("table", help="markdown tables from results.jsonl files")
    t.add_argument("results", nargs="+")
    a = ap.parse_args()
    if a.cmd == "table":
        table(a)
    elif a.cmd == "one":
        one(a)
    else:
        sweep(a)


if __name__ == "__main__":
    main()
