"""Library-independent parts of the peer benchmarks (numpy only): command line, problems, init, checkpoints,
timing statistics and the report. The math follows pinntk's DESIGN.md section 1; see README.md here."""

import argparse
import json
import math
import platform
import statistics
import sys
import time

import numpy as np

LAYERS_MAIN = [1, 40, 40, 40, 40, 1]
LAYERS_SMALL = [1, 50, 1]

# Presets of pinntk (host/problem.cpp) used here. Both are -(a(x/eps) u')' = f on [-pi, pi] with
# a(y) = 1/(2.1 + 2 sin(omega y)) and the exact solution of paper eq. (26).
PROBLEMS = {
    "darcy-twoscale": dict(eps=1.0 / 32, omega=1.0, lam=2.0, nc=1024, layers=LAYERS_MAIN, init="glorot-normal"),
    "darcy-ntk": dict(eps=1.0 / 80, omega=2.0 * math.pi, lam=1.0, nc=256, layers=LAYERS_SMALL, init="normal"),
}


def parse_args(peer):
    p = argparse.ArgumentParser(description=f"{peer} peer benchmark of pinntk (see benchmarks/peers/README.md)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--repeats", type=int, default=200, help="timed repetitions of the Adam step (default 200)")
    p.add_argument("--heavy-repeats", type=int, default=20,
                   help="timed repetitions of the Jacobian/NTK/eigh cases (default 20)")
    p.add_argument("--budget", type=float, default=10.0,
                   help="stop repeating a case after this many seconds (at least 3 repetitions; default 10)")
    p.add_argument("--jacobian-sizes", default=None,
                   help="comma-separated Nc values (default 1024,16384,65536 on cuda, 1024,4096 on cpu)")
    p.add_argument("--ensemble", type=int, default=10, metavar="B",
                   help="also time one Adam step of B networks at once (vmap over the networks; 0: not timed; "
                        "default 10)")
    p.add_argument("--quick", action="store_true", help="smoke test: few repetitions, Jacobian at Nc=1024 only")
    p.add_argument("--json", metavar="PATH", help="write all results to PATH")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="pinntk checkpoint (pinntk-mlp-v1) used for every case with the same layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialization (numpy; default 0)")
    p.add_argument("--check", action="store_true",
                   help="print the cross-check numbers (darcy-twoscale, 4x40, Nc=1024) with 17 digits")
    p.add_argument("--check-only", action="store_true", help="compute and print the cross-check numbers, no timing")
    if peer == "torch":
        p.add_argument("--compile", action="store_true", help="also time a torch.compile'd Adam step")
    a = p.parse_args()
    if a.ensemble < 0 or a.ensemble > 1000:
        p.error(f"--ensemble {a.ensemble}: give 0 (not timed) to 1000 networks")
    if a.check_only:
        a.check = True
    if a.quick:
        a.repeats, a.heavy_repeats, a.budget = 5, 2, 2.0
    return a


def jacobian_sizes(args, device):
    if args.jacobian_sizes:
        return [int(s) for s in args.jacobian_sizes.split(",") if s.strip()]
    if args.quick:
        return [1024]
    return [1024, 16384, 65536] if device == "cuda" else [1024, 4096]


def unflatten(theta, layers):
    """(W, b) per layer of the flat parameters (W^l row-major, then b^l: pinntk's order), as views of theta where the
    array library gives them (numpy, torch; JAX arrays in a traced function)."""
    out, o = [], 0
    for din, dout in zip(layers[:-1], layers[1:]):
        W = theta[o:o + dout * din].reshape(dout, din)
        o += dout * din
        out.append((W, theta[o:o + dout]))
        o += dout
    return out


def n_params(layers):
    return sum(layers[i + 1] * layers[i] + layers[i + 1] for i in range(len(layers) - 1))


def init_params(layers, init, seed):
    """Flat fp64 parameters: per layer W (d_l x d_{l-1}, row-major) then b. glorot-normal: W ~ N(0, 2/(fan_in +
    fan_out)), b = 0; normal: W, b ~ N(0, 1) (pinntk's darcy-ntk preset). numpy's generator, not pinntk's."""
    rng = np.random.default_rng(seed)
    parts = []
    for din, dout in zip(layers[:-1], layers[1:]):
        if init == "glorot-normal":
            parts += [rng.normal(0.0, math.sqrt(2.0 / (din + dout)), size=dout * din), np.zeros(dout)]
        else:
            parts += [rng.normal(size=dout * din), rng.normal(size=dout)]
    return np.concatenate(parts)


def ensemble_params(layers, theta0, count, seed):
    """The count networks of the batched Adam step (B x P, fp64): the case's own network first, then Glorot normal
    networks of seeds seed + 1 .. seed + count - 1."""
    return np.stack([np.asarray(theta0, dtype=np.float64)] +
                    [init_params(layers, "glorot-normal", seed + b) for b in range(1, count)])


def check_member_losses(peer, batched, single, tol):
    """Warns when a batched step's first losses differ from the networks' own losses (one at a time)."""
    for b, (lb, ls) in enumerate(zip(batched, single)):
        if abs(lb - ls) > tol * abs(ls):
            print(f"{peer}: WARNING: ensemble member {b}: batched loss {lb!r} != its own {ls!r}", file=sys.stderr)


def load_checkpoint(path):
    """Returns (layers, flat fp64 parameters) of a pinntk-mlp-v1 checkpoint."""
    with open(path) as fh:
        c = json.load(fh)
    if c.get("format") != "pinntk-mlp-v1" or c.get("activation", "tanh") != "tanh":
        raise SystemExit(f"{path}: not a pinntk-mlp-v1 tanh checkpoint")
    layers = [int(d) for d in c["layers"]]
    parts = []
    for l, (W, b) in enumerate(zip(c["weights"], c["biases"])):
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if W.shape != (layers[l + 1], layers[l]) or b.shape != (layers[l + 1],):
            raise SystemExit(f"{path}: layer {l + 1} has shapes {W.shape}, {b.shape}; layers say {layers}")
        parts += [W.ravel(), b]
    return layers, np.concatenate(parts)


def network(problem, args, checkpoint):
    """(layers, flat fp64 params) for a case: the checkpoint when its layers match, else the preset's init."""
    pr = PROBLEMS[problem]
    if checkpoint is not None and checkpoint[0] == pr["layers"]:
        return checkpoint
    return list(pr["layers"]), init_params(pr["layers"], pr["init"], args.seed)


def exact_twoscale(x, eps):
    """u*, u*', u*'' of paper eq. (26)."""
    c = eps / math.pi * math.sin(math.pi / eps)
    return (np.sin(2 * x) + eps * np.sin(x / eps) - c * x,
            2 * np.cos(2 * x) + np.cos(x / eps) - c,
            -4 * np.sin(2 * x) - np.sin(x / eps) / eps)


def points(problem, nc=None):
    """Rows of r = alpha u'' + beta u' + gamma u - f: nc collocation rows (linspace of [-pi, pi], ends included),
    then nb = 2 boundary rows (x = -pi, +pi; r = u - u*). Also the loss weights w (1/nc, lambda/nb). fp64 numpy."""
    pr = PROBLEMS[problem]
    eps, om, lam = pr["eps"], pr["omega"], pr["lam"]
    nc = nc or pr["nc"]
    xc = np.linspace(-math.pi, math.pi, nc)
    y = xc / eps
    d = 2.1 + 2.0 * np.sin(om * y)
    alpha = -1.0 / d                                   # -a(x/eps)
    beta = -(-2.0 * om * np.cos(om * y) / d**2) / eps  # -a'(x/eps)/eps
    _, u1, u2 = exact_twoscale(xc, eps)
    f = alpha * u2 + beta * u1
    xb = np.array([-math.pi, math.pi])
    nb = len(xb)
    return dict(
        x=np.concatenate([xc, xb]),
        alpha=np.concatenate([alpha, np.zeros(nb)]),
        beta=np.concatenate([beta, np.zeros(nb)]),
        gamma=np.concatenate([np.zeros(nc), np.ones(nb)]),
        f=np.concatenate([f, exact_twoscale(xb, eps)[0]]),
        w=np.concatenate([np.full(nc, 1.0 / nc), np.full(nb, lam / nb)]),
        nc=nc, nb=nb)


def check_numbers(loss, grad_norm, Ks, ev_uu, ev_s, w, nc):
    """Cross-check numbers from numpy copies of K_s = D^1/2 J J^T D^1/2 (its leading nc x nc block is
    K_uu = J_u J_u^T / Nc) and of the eigenvalues of K_uu and K_s computed by the peer library."""
    Ks = np.asarray(Ks, dtype=np.float64)
    ev_uu = np.sort(np.asarray(ev_uu, dtype=np.float64))[::-1]
    ev_s = np.sort(np.asarray(ev_s, dtype=np.float64))[::-1]
    s = np.sqrt(w)
    K_nonsym = (Ks / s[:, None] / s[None, :]) * w[None, :]  # K = J J^T D of Lemma 3.1 (pinntk's frobenius_K)
    return {
        "loss": float(loss),
        "grad_norm": float(grad_norm),
        "frobenius_Kuu": float(np.linalg.norm(Ks[:nc, :nc])),
        "eigenvalues_Kuu_top": [float(v) for v in ev_uu[:3]],
        "frobenius_Ks": float(np.linalg.norm(Ks)),
        "eigenvalues_K_top": [float(v) for v in ev_s[:3]],
        "frobenius_K_nonsymmetric": float(np.linalg.norm(K_nonsym)),
    }


def print_check(check):
    print("cross-check (darcy-twoscale, layers 1,40,40,40,40,1, Nc=1024, Nb=2, Lemma scaling):")
    for k, v in check.items():
        if isinstance(v, list):
            print(f"  {k:26s} " + "  ".join(f"{x:.17g}" for x in v))
        else:
            print(f"  {k:26s} {v:.17g}")


def stats(samples_s, unit):
    """Median/min/mean of per-repetition times (seconds) in unit 'us' or 'ms'."""
    scale = 1e6 if unit == "us" else 1e3
    v = [t * scale for t in samples_s]
    return {"unit": unit, "median": statistics.median(v), "min": min(v), "mean": statistics.fmean(v),
            "repeats": len(v)}


def repeat(run_once, repeats, budget_s, warmup=2):
    """Calls run_once() (which returns the seconds of one synchronized run) warmup times untimed, then up to
    repeats times, stopping early after budget_s seconds once it has 3 samples."""
    for _ in range(warmup):
        run_once()
    out, t0 = [], time.perf_counter()
    for _ in range(max(1, repeats)):
        out.append(run_once())
        if len(out) >= 3 and time.perf_counter() - t0 > budget_s:
            break
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def report(meta, timings, check, args):
    print(f"\n{meta['peer']} {meta['version']}  device={meta['device']} ({meta['device_name']})  "
          f"dtype={meta['dtype']}")
    print(f"  {'case':32s} {'median':>12s} {'min':>12s}  unit  reps")
    for name, t in timings.items():
        print(f"  {name:32s} {t['median']:12.3f} {t['min']:12.3f}  {t['unit']:4s}  {t['repeats']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**meta, "timings": timings, "check": check}, fh, indent=2)
            fh.write("\n")
        print(f"wrote {args.json}")
