#!/usr/bin/env python3
"""The NTK along training at several eps: does ||K_uu||_F keep growing like eps^-2 while the network trains?

Theorem 3.2 states the growth for every time t of the gradient flow at which some first-layer weight stays
asymptotically larger than eps (the set Upsilon), under a uniform bound on ||theta(t)||_inf; Fig. 2 measures the
kernel at initialization and after 10000 Adam steps at learning rate 1e-5, a rate at which the weights hardly move.
This script trains the Fig. 2 network at each 1/eps and seed with `pinntk train --ntk-every K` and fits, at each
recorded iteration, the log-log slope of the seeds' geometric mean of ||K_uu||_F (and lambda_max(K_uu)) against
eps, beside the mean of max |W^(0)| and ||theta||_inf and the max-norm error.

Standard library only (matplotlib, when importable, adds along.png). Example (the default settings):
    scripts/ntk_along_training.py --out results/along
    scripts/ntk_along_training.py --out results/along --inv-eps 10,20,40 --seeds 2 -- --schedule 5000@1e-3
Writes OUT/along.csv (a row per run and recorded iteration), OUT/slopes.csv and OUT/fit.json (the slopes per
iteration), and OUT/runs/eps_1_E_seed_S/ (each run's own folder).
"""
import concurrent.futures
import csv
import json
import math
import os
import subprocess
import sys

from ntk_sweep import check_inputs, fit, sweep_parser  # this folder's scripts/ntk_sweep.py

DEFAULT_FLAGS = ["--problem", "darcy-ntk", "--layers", "1,50,1", "--nc", "256", "--init", "glorot-normal",
                 "--schedule", "10000@1e-3", "--ntk-scaling", "none"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    ap = sweep_parser(__doc__, "10,20,30,40,50,60,70,80,90,100")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 at each eps (default 3)")
    ap.add_argument("--every", type=int, default=1000, help="--ntk-every and --history-every (default 1000)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    ap.add_argument("extra", nargs="*",
                    help="flags passed to pinntk train (after --), each replacing its default: " +
                    " ".join(DEFAULT_FLAGS))
    a = ap.parse_args()
    inv_eps = check_inputs("ntk_along_training", a.pinntk, a.inv_eps)
    if len(inv_eps) < 2 or min(inv_eps) < 1:
        sys.exit("ntk_along_training: --inv-eps needs at least two positive values to fit a slope")
    if a.seeds < 1 or a.every < 1 or a.jobs < 1:
        sys.exit("ntk_along_training: --seeds, --every and --jobs must be positive")
    runs = [(inv, seed) for inv in inv_eps for seed in range(a.seeds)]
    # The defaults (flag, value pairs) that the extra flags do not give again: pinntk refuses a flag given twice.
    given = {f.split("=")[0] for f in a.extra if f.startswith("--")}
    flags = [x for i in range(0, len(DEFAULT_FLAGS), 2) if DEFAULT_FLAGS[i] not in given
             for x in DEFAULT_FLAGS[i:i + 2]] + a.extra

    def train(run):
        inv, seed = run
        d = os.path.join(a.out, "runs", f"eps_1_{inv}_seed_{seed}")
        cmd = [a.pinntk, "train", *flags, "--eps", f"1/{inv}", "--seed", str(seed),
               "--ntk-every", str(a.every), "--history-every", str(a.every), "--checkpoint-every", "0",
               "--device", "cpu", "--threads", "1", "--out", d]
        r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip().splitlines()[-1]}")
        return run, d

    os.makedirs(a.out, exist_ok=True)
    rows = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        futures = [pool.submit(train, run) for run in runs]
        for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            try:
                (inv, seed), d = fut.result()
            except RuntimeError as e:
                sys.exit(f"ntk_along_training: {e}")
            print(f"run {done}/{len(runs)}: 1/eps = {inv}, seed {seed}", file=sys.stderr)
            history = {int(h["iteration"]): h for h in read_csv(os.path.join(d, "history.csv"))}
            for r in read_csv(os.path.join(d, "ntk_history.csv")):
                it = int(r["iteration"])
                if r["frobenius_Kuu"] == "":
                    sys.exit(f"ntk_along_training: the NTK of {d} at iteration {it} was not finite")
                rows.append({"inv_eps": inv, "eps": 1.0 / inv, "seed": seed, "iteration": it,
                             "frobenius_Kuu": float(r["frobenius_Kuu"]), "lambda_max_Kuu": float(r["lambda_max_Kuu"]),
                             "lambda_max_Kbb": float(r["lambda_max_Kbb"]), "w0_max_abs": float(r["w0_max_abs"]),
                             "theta_max_abs": float(r["theta_max_abs"]), "loss": float(history[it]["loss"]),
                             "max_error": float(history[it]["max_error"])})
    rows.sort(key=lambda r: (r["inv_eps"], r["seed"], r["iteration"]))
    with open(os.path.join(a.out, "along.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    # Per iteration: the slope over eps of the seeds' geometric means, and the means of the hypotheses' quantities.
    iterations = sorted({r["iteration"] for r in rows})
    slopes = []
    for it in iterations:
        at = [r for r in rows if r["iteration"] == it]
        means = {}
        for inv in inv_eps:
            group = [r for r in at if r["inv_eps"] == inv]
            if len(group) != a.seeds:
                continue  # a run that stopped early has no row here
            means[inv] = {k: geometric_mean([max(r[k], 1e-300) for r in group])
                          for k in ("frobenius_Kuu", "lambda_max_Kuu", "lambda_max_Kbb")}
        if len(means) < 2:
            continue
        eps = [1.0 / inv for inv in means]
        row = {"iteration": it}
        for k in ("frobenius_Kuu", "lambda_max_Kuu", "lambda_max_Kbb"):
            s, se = fit(eps, [means[inv][k] for inv in means])
            row[f"slope_{k}"] = s
            row[f"stderr_{k}"] = se
        row["w0_max_abs_min"] = min(r["w0_max_abs"] for r in at)
        row["theta_max_abs_max"] = max(r["theta_max_abs"] for r in at)
        row["max_error_median"] = sorted(r["max_error"] for r in at)[len(at) // 2]
        slopes.append(row)
    with open(os.path.join(a.out, "slopes.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(slopes[0].keys()))
        w.writeheader()
        w.writerows(slopes)
    with open(os.path.join(a.out, "fit.json"), "w") as f:
        json.dump({"inv_eps": inv_eps, "seeds": a.seeds, "every": a.every, "flags": flags,
                   "slopes": slopes}, f, indent=2)
    print(f"{'iteration':>9} {'slope ||K_uu||_F':>18} {'slope lambda_max':>17} {'slope rho(K_bb)':>16} "
          f"{'min max|W0|':>12} {'max |theta|':>12} {'median error':>13}")
    for s in slopes:
        print(f"{s['iteration']:9d} {s['slope_frobenius_Kuu']:+11.3f} +- {s['stderr_frobenius_Kuu']:.3f} "
              f"{s['slope_lambda_max_Kuu']:+10.3f} +- {s['stderr_lambda_max_Kuu']:.3f} "
              f"{s['slope_lambda_max_Kbb']:+9.3f} +- {s['stderr_lambda_max_Kbb']:.3f} {s['w0_max_abs_min']:12.4g} "
              f"{s['theta_max_abs_max']:12.4g} {s['max_error_median']:13.4g}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    lo, hi = math.log(min(inv_eps)), math.log(max(inv_eps))
    for k, inv in enumerate(inv_eps):
        its = [r["iteration"] for r in rows if r["inv_eps"] == inv and r["seed"] == 0]
        ks = [r["frobenius_Kuu"] for r in rows if r["inv_eps"] == inv and r["seed"] == 0]
        shade = (math.log(inv) - lo) / (hi - lo) if hi > lo else 0.0
        labelled = k in (0, len(inv_eps) // 2, len(inv_eps) - 1)
        ax[0].semilogy(its, ks, color=plt.cm.viridis(shade), label=f"1/eps = {inv}" if labelled else None)
    ax[0].set_xlabel("iteration")
    ax[0].set_ylabel("||K_uu||_F (seed 0)")
    ax[0].legend(fontsize=7)
    ax[1].errorbar([s["iteration"] for s in slopes], [s["slope_frobenius_Kuu"] for s in slopes],
                   yerr=[s["stderr_frobenius_Kuu"] for s in slopes], marker="o", label="||K_uu||_F")
    ax[1].errorbar([s["iteration"] for s in slopes], [s["slope_lambda_max_Kuu"] for s in slopes],
                   yerr=[s["stderr_lambda_max_Kuu"] for s in slopes], marker="s", label="lambda_max(K_uu)")
    ax[1].axhline(-2.0, color="gray", lw=0.8, ls="--")
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("log-log slope against eps")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "along.png"), dpi=120)


if __name__ == "__main__":
    main()
