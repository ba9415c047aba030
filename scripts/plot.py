#!/usr/bin/env python3
"""Plot the output folder of `pinntk reproduce` (figN/*.csv, *.npy) as PNGs next to the data.

    python3 scripts/plot.py OUT_DIR

Needs numpy and matplotlib; draws whichever of fig1..fig4 the folder holds.
"""
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def rolling_mean(v, w):
    if len(v) < w:
        return np.asarray(v)
    c = np.cumsum(np.insert(np.asarray(v, dtype=float), 0, 0.0))
    return (c[w:] - c[:-w]) / w


def fig1(d):
    rows = read_csv(os.path.join(d, "dft.csv"))
    it = np.array([float(r["iteration"]) for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in ("e1", "e5", "e15", "e55"):
        v = rolling_mean([float(r[k]) for r in rows], 50)
        ax.semilogy(it[len(it) - len(v):], v, label=f"|e_{k[1:]}|")
    ax.set_xlabel("iteration")
    ax.set_ylabel("|DFT of u_true - u_NN| (rolling mean of 50)")
    ax.set_title("Fig. 1: frequency principle, eq. (4)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fig1.png"), dpi=120)


def fig2(d):
    rows = read_csv(os.path.join(d, "sweep.csv"))
    with open(os.path.join(d, "summary.json")) as f:
        fits = json.load(f)["fits"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, panel, key, title in ((axes[0], "a", "a_init_normal", "(a) at initialization (normal)"),
                                  (axes[1], "b", "b_glorot_adam", "(b) after Adam (Glorot)")):
        sel = [r for r in rows if r["panel"] == panel]
        eps = sorted({float(r["eps"]) for r in sel})
        for q, label in (("frobenius_Kuu", "||K_uu||_F"), ("lambda1", "lambda_1"), ("lambda2", "lambda_2"),
                         ("lambda3", "lambda_3")):
            vals = np.array([[float(r[q]) for r in sel if float(r["eps"]) == e] for e in eps])
            geo = np.exp(np.log(vals).mean(axis=1))
            lo, hi = vals.min(axis=1), vals.max(axis=1)
            s = fits[key][q]["slope_of_geometric_mean"]
            ax.errorbar(eps, geo, yerr=[geo - lo, hi - geo], marker="o", ms=3, capsize=2,
                        label=f"{label} (slope {s:.2f})")
        e = np.array(eps)
        ref = geo[0] * (e / e[0]) ** -2
        ax.loglog(e, ref, "k--", lw=0.8, label="eps^-2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eps")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("Fig. 2: NTK scaling, darcy-ntk, 1x50, Nc = 256 (spread over seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fig2.png"), dpi=120)


def fig3(d):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, tag, title in ((axes[0], "init", "(a) at initialization"), (axes[1], "trained", "(b) after training")):
        lam = np.load(os.path.join(d, f"spectrum_K_{tag}.npy"))
        ax.semilogy(np.arange(1, len(lam) + 1), np.abs(lam), ".", ms=3)
        ax.set_xlabel("index")
        ax.set_ylabel("|eigenvalue| of K")
        ax.set_title(title)
    fig.suptitle("Fig. 3: NTK spectrum, eps = 1/80")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fig3.png"), dpi=120)


def fig4(d):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    first = True
    for name in ("regression", "poisson", "darcy"):
        path = os.path.join(d, f"{name}_mean.csv")
        if not os.path.exists(path):
            continue
        rows = read_csv(path)
        x = np.array([float(r["x"]) for r in rows])
        if first:
            axes[0].plot(x, [float(r["exact"]) for r in rows], "k", lw=1, label="u_eps (26)")
            first = False
        axes[0].plot(x, [float(r["mean_u"]) for r in rows], lw=0.8, label=f"E u, {name}")
        axes[1].semilogy(x, np.abs([float(r["error"]) for r in rows]) + 1e-16, lw=0.8, label=name)
    axes[0].set_title("(a) approximations, eps = 1/32")
    axes[0].legend(fontsize=8)
    axes[1].set_title("(b) |error| of the trial mean")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("x")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "fig4.png"), dpi=120)


def lm(d):
    """Max-norm error against wall time for every run of `pinntk reproduce lm`: Poisson and Darcy at eps = 1/32
    (LM runs and the paper's Adam + L-BFGS on the same network), then Darcy at smaller eps."""
    runs = {r["run"]: r for r in read_csv(os.path.join(d, "runs.csv"))} if os.path.exists(os.path.join(d, "runs.csv")) else {}
    panels = [("(a) Poisson, eps = 1/32", lambda r: r["problem"].startswith("poisson"), 7.20e-2),
              ("(b) Darcy, eps = 1/32", lambda r: r["problem"].startswith("darcy") and float(r["eps"]) > 0.03, 4.31e-1),
              ("(c) Darcy, eps = 1/64 and 1/128", lambda r: r["problem"].startswith("darcy") and float(r["eps"]) < 0.03,
               None)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, (title, pick, paper) in zip(axes, panels):
        for path in sorted(os.listdir(d)):
            if not path.endswith("_history.csv"):
                continue
            name = path[: -len("_history.csv")]
            info = runs.get(name)
            if info is None or not pick(info):
                continue
            rows = read_csv(os.path.join(d, path))
            t = [float(r["time_s"]) for r in rows]
            e = [float(r["max_error"]) for r in rows]
            style = dict(color="k", ls="--") if name.endswith("adam_lbfgs") else {}
            ax.semilogy(t, e, lw=1, label=name, **style)
        if paper is not None:
            ax.axhline(paper, ls=":", lw=0.8, color="gray")
            ax.text(0, paper, "paper, Adam + L-BFGS (10-trial mean)", fontsize=7, va="bottom")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("max-norm error")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "lm.png"), dpi=120)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    drawn = []
    for name, fn in (("fig1", fig1), ("fig2", fig2), ("fig3", fig3), ("fig4", fig4), ("lm", lm)):
        d = os.path.join(out, name)
        if os.path.isdir(d):
            fn(d)
            drawn.append(os.path.join(d, name + ".png"))
    print("plot.py: wrote " + (", ".join(drawn) if drawn else "nothing (no figN folders)"))


if __name__ == "__main__":
    main()
