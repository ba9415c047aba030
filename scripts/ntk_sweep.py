#!/usr/bin/env python3
"""Sweep eps for `pinntk ntk` and fit the log-log slope of ||K_uu||_F and lambda_1..3 against eps (Sec. 4.1).

Standard library only. Example (the paper's Fig. 2a setting):
    scripts/ntk_sweep.py --pinntk build/pinntk --out results/sweep -- --problem darcy-ntk --layers 1,50,1 \
        --init normal --nc 256
Writes OUT/sweep.csv and OUT/fit.json, prints a table and the fitted slopes.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys


def fit(xs, ys):
    """Least-squares slope of log y against log x, with its standard error."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    n = len(lx)
    mx, my = sum(lx) / n, sum(ly) / n
    sxx = sum((a - mx) ** 2 for a in lx)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    resid = [b - my - slope * (a - mx) for a, b in zip(lx, ly)]
    se = math.sqrt(sum(r * r for r in resid) / (n - 2) / sxx) if n > 2 else float("nan")
    return slope, se


def check_inputs(prog, pinntk, inv_eps_text):
    """The pinntk binary's path checked, and --inv-eps as integers; exits with one line naming prog otherwise."""
    if not (os.path.isfile(pinntk) and os.access(pinntk, os.X_OK)):
        sys.exit(f"{prog}: no pinntk binary at {pinntk} (build it, or give --pinntk PATH)")
    try:
        return [int(v) for v in inv_eps_text.split(",")]
    except ValueError:
        sys.exit(f"{prog}: --inv-eps '{inv_eps_text}' is not a comma-separated list of integers")


def sweep_parser(doc, inv_eps):
    """The sweeps' shared arguments: --pinntk (default: this repository's build/pinntk), --out, --inv-eps."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--pinntk", default=os.path.join(os.path.dirname(here), "build", "pinntk"),
                    help="the pinntk binary (default: build/pinntk of this repository)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--inv-eps", default=inv_eps, help="comma-separated values of 1/eps")
    return ap


def main():
    ap = sweep_parser(__doc__, "10,15,20,25,30,35,40,45,50,55,60,65,70,75,80,85,90,95,100")
    ap.add_argument("extra", nargs="*", help="flags passed to pinntk ntk (after --)")
    a = ap.parse_args()
    inv_eps = check_inputs("ntk_sweep", a.pinntk, a.inv_eps)
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for inv in inv_eps:
        d = os.path.join(a.out, f"eps_1_{inv}")
        cmd = [a.pinntk, "ntk", *a.extra, "--eps", f"1/{inv}", "--out", d]
        r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"ntk_sweep: {' '.join(cmd)} failed: {r.stderr.strip()}")
        with open(os.path.join(d, "summary.json")) as f:
            n = json.load(f)["ntk"]
        l1, l2, l3 = n["eigenvalues_Kuu_top"]
        rows.append({"eps": 1.0 / inv, "frobenius_Kuu": n["frobenius_Kuu"], "lambda1": l1, "lambda2": l2,
                     "lambda3": l3, "spectral_radius_Kbb": n["spectral_radius_Kbb"]})
        print(f"1/eps={inv:4d}  ||K_uu||_F={n['frobenius_Kuu']:.6e}  lambda_1..3={l1:.4e} {l2:.4e} {l3:.4e}  "
              f"rho(K_bb)={n['spectral_radius_Kbb']:.4e}")
    with open(os.path.join(a.out, "sweep.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    eps = [r["eps"] for r in rows]
    result = {}
    for key in ("frobenius_Kuu", "lambda1", "lambda2", "lambda3", "spectral_radius_Kbb"):
        s, se = fit(eps, [max(r[key], 1e-300) for r in rows])
        result[key] = {"slope": s, "stderr": se}
        print(f"log-log slope of {key:20s} against eps: {s:+.4f} +- {se:.4f}")
    with open(os.path.join(a.out, "fit.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
