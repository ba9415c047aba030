"""Fig. 4's PINNs trained in float32 and in float64 by the same PyTorch code on the CPU: does float32 explain why the
paper's Poisson error (7.2e-2) is about 100 times pinntk's (7.2e-4, fp64)? REPRODUCTION.md names float32 (DeepXDE's
default) and an L-BFGS that stops after a few thousand iterations as the likely causes; this script tests both at
once, since a float32 L-BFGS stops when its line search can no longer lower the loss.

What it runs, per trial (seed s): the problem's rows from the pinntk module (`Problem.preset`), the network of
`pinntk.Mlp.for_problem(problem, seed=s)` (Glorot normal) as a torch module in the chosen dtype, the loss of pinntk,
1/2 sum w r^2 with r = alpha u'' + beta u' + gamma u - f; u, u', u'' by forward jets through the tanh layers (the
formulas of DESIGN.md section 1, in the chosen dtype), the gradient by autograd. Then the paper's Adam schedule
(one Adam whose state the phases keep, as pinntk does) and torch.optim.LBFGS with DeepXDE's L-BFGS settings (history
100, gtol 1e-8, ftol 0, at most 15000 iterations, strong Wolfe line search), called 1000 iterations at a time until
the iteration limit or until a call advances at most one iteration (DeepXDE's PyTorch backend loop). The error is
measured in float64 on the problem's 1000 test points. The loss at initialization is printed with 17 digits: in
float64 it is pinntk's (`pinntk train ... --history-every 1`, first row).

    python benchmarks/peers/fig4_precision.py --problem poisson-twoscale --dtype float32 --trials 3 --json out.json

Needs torch and the pinntk Python module (pip install . in the repository)."""

import argparse
import json
import math
import sys
import time

import numpy as np
import torch

import pinntk

SCHEDULES = {  # the paper's Adam phases (Section 4.2), as host/reproduce.cpp has them
    "regression-twoscale": [(20000, 1e-2), (10000, 1e-3)],
    "poisson-twoscale": [(10000, 1e-4), (10000, 1e-5), (20000, 1e-6), (20000, 1e-7)],
    "darcy-twoscale": [(10000, 1e-3), (10000, 1e-4), (20000, 1e-5), (20000, 1e-6)],
}


def jets(layers, x):
    """u, u', u'' of the tanh MLP `layers` (a list of torch.nn.Linear) at the points x (N x 1), all in x's dtype."""
    h, d1, d2 = x, torch.ones_like(x), torch.zeros_like(x)
    for lin in layers[:-1]:
        z, z1, z2 = lin(h), d1 @ lin.weight.T, d2 @ lin.weight.T
        t = torch.tanh(z)
        s = 1 - t * t
        h, d1, d2 = t, s * z1, s * z2 - 2 * t * s * z1 * z1
    out = layers[-1]
    return out(h), d1 @ out.weight.T, d2 @ out.weight.T


def trial(problem, name, seed, dtype, lbfgs_max, log, scale=1):
    net = pinntk.Mlp.for_problem(problem, seed=seed)
    model = net.to_torch(dtype=torch.float64).to(dtype)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    rows = problem.rows
    col = lambda a: torch.tensor(np.ascontiguousarray(a).reshape(-1, 1), dtype=dtype)
    x = col(problem.points[:, 0])
    alpha, beta, gamma, f, w = (col(rows[k][:, 0] if rows[k].ndim > 1 else rows[k]) for k in
                                ("alpha", "beta", "gamma", "f", "w"))
    xt = problem.test_points
    exact = problem.solution(xt)
    xt_t = torch.tensor(xt[:, :1], dtype=torch.float64)

    def loss_fn():
        u, u1, u2 = jets(layers, x)
        r = alpha * u2 + beta * u1 + gamma * u - f
        return 0.5 * (w * r * r).sum()

    def max_error():
        with torch.no_grad():
            m64 = [torch.nn.Linear(l.in_features, l.out_features, dtype=torch.float64) for l in layers]
            for a, b in zip(m64, layers):
                a.weight.copy_(b.weight.double())
                a.bias.copy_(b.bias.double())
            u = jets(m64, xt_t)[0].numpy()[:, 0]
        return float(np.max(np.abs(u - exact)))

    params = list(model.parameters())
    log(f"  seed {seed} {dtype}: loss at initialization {loss_fn().item():.17g}")
    t0 = time.perf_counter()
    opt = torch.optim.Adam(params, lr=SCHEDULES[name][0][1])
    it = 0
    for steps, lr in SCHEDULES[name]:
        steps //= scale
        for g in opt.param_groups:
            g["lr"] = lr
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            opt.step()
            it += 1
            if it % 10000 == 0:
                log(f"  seed {seed} {dtype}: Adam {it}, loss {loss.item():.4e}")
    adam_loss, adam_err = float(loss_fn().item()), max_error()
    history = [{"lbfgs_iterations": 0, "loss": adam_loss, "max_error": adam_err}]
    lb = torch.optim.LBFGS(params, lr=1.0, max_iter=1000, max_eval=1250, tolerance_grad=1e-8, tolerance_change=0.0,
                           history_size=100, line_search_fn="strong_wolfe")

    def closure():
        lb.zero_grad(set_to_none=True)
        l_ = loss_fn()
        l_.backward()
        return l_

    done, stop, group = 0, "reached the limit of iterations", lb.param_groups[0]
    while done < lbfgs_max:
        group["max_iter"] = min(1000, lbfgs_max - done)  # read at each step() call
        group["max_eval"] = int(1.25 * group["max_iter"])
        before = lb.state[params[0]].get("n_iter", 0)
        lb.step(closure)
        ran = lb.state[params[0]]["n_iter"] - before
        done += ran
        l_now = float(loss_fn().item())
        if not math.isfinite(l_now):
            raise SystemExit(f"seed {seed} {dtype}: the loss is not finite after {done} L-BFGS iterations")
        history.append({"lbfgs_iterations": done, "loss": l_now, "max_error": max_error()})
        log(f"  seed {seed} {dtype}: L-BFGS {done}, loss {l_now:.4e}, max error {history[-1]['max_error']:.3e}")
        if ran <= 1 < group["max_iter"]:  # DeepXDE's PyTorch loop ends when a call advances at most one iteration
            stop = "stopped: a call of 1000 iterations advanced at most one (converged, or no progress possible)"
            break
    return {"seed": seed, "dtype": str(dtype).replace("torch.", ""), "adam_iterations": it,
            "adam_max_error": adam_err, "lbfgs_iterations": done, "lbfgs_stop": stop,
            "final_loss": history[-1]["loss"], "max_error": history[-1]["max_error"], "history": history,
            "wall_time_s": time.perf_counter() - t0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problem", choices=sorted(SCHEDULES), default="poisson-twoscale")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--trials", type=int, default=3, help="seeds first-seed .. first-seed + trials - 1 (default 3)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--lbfgs", type=int, default=15000, help="L-BFGS iteration limit (default 15000, the paper's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", metavar="PATH", help="write the trials' results to PATH")
    p.add_argument("--quick", action="store_true", help="a smoke test: Adam phases 100 times shorter, 50 L-BFGS")
    a = p.parse_args()
    if a.trials < 1 or a.lbfgs < 0 or a.threads < 1:
        p.error("--trials and --threads must be positive, --lbfgs non-negative")
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    problem = pinntk.Problem.preset(a.problem)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    out = {"problem": a.problem, "dtype": a.dtype, "torch": torch.__version__, "lbfgs_max_iterations": a.lbfgs,
           "schedule": SCHEDULES[a.problem], "trials": []}
    for s in range(a.first_seed, a.first_seed + a.trials):
        r = trial(problem, a.problem, s, dtype, 50 if a.quick else a.lbfgs, log, 100 if a.quick else 1)
        out["trials"].append(r)
        print(f"{a.problem} {a.dtype} seed {s}: max error after Adam {r['adam_max_error']:.3e}, after "
              f"{r['lbfgs_iterations']} L-BFGS iterations {r['max_error']:.3e} ({r['lbfgs_stop']}), "
              f"{r['wall_time_s']:.0f} s", flush=True)
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
