#!/usr/bin/env python3
"""Plot the output folder of `pinntk reproduce` (figN/*.csv, *.npy) or of `pinntk train` as PNGs next to the data.

    python3 scripts/plot.py OUT_DIR

Needs numpy and matplotlib. Draws whichever of fig1..fig4, lm, fig2-2d and poisson2d a reproduce folder holds, and
from the files of a train or ntk folder:
  prediction.png   from prediction.csv: 1-D (x,u,exact,error) u and u* over x with the error below; 2-D
                   (x,y,u,exact,error) or 3-D (x,y,z,...; the mid-z slice) u, u* and the error as images
  history.png      from history.csv (`pinntk train`): loss and max-norm error against the iteration, log scale,
                   with a dotted line where the optimizer (or Adam's learning rate) changes
  density.png      from the density.csv of `pinntk ntk --eigen density`
  ntk_history.png  from the ntk_history.csv of `pinntk train --ntk-every`
A folder that does not exist is an error (exit status 1); one with nothing to draw says so.
"""
import csv
import json
import os
import sys

try:
    import matplotlib
    import numpy  # noqa: F401
except ImportError as e:  # one line, not a traceback
    sys.exit(f"plot.py: needs numpy and matplotlib ({e}): pip install numpy matplotlib into this python3 "
             f"({sys.executable}), or run it with a python3 that has them: /usr/bin/python3 after apt-get install "
             "python3-matplotlib, or build-py/venv/bin/python3 (made by scripts/python_test.sh)")

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
    plt.close(fig)
    return os.path.join(d, "fig1.png")


QUANTITY_LABELS = {"frobenius_Kuu": "||K_uu||_F", "lambda1": "lambda_1", "lambda2": "lambda_2",
                   "lambda3": "lambda_3", "spectral_radius_Kbb": "rho(K_bb)"}


def ntk_sweep(d, csv_name, panels, quantities, title, png):
    """An NTK sweep against eps (fig2, fig2-2d): per panel the geometric mean over seeds of each quantity with its
    spread over seeds, log-log, the fitted slope in the legend and a slope -2 guide line."""
    rows = read_csv(os.path.join(d, csv_name))
    with open(os.path.join(d, "summary.json")) as f:
        fits = json.load(f)["fits"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=False, squeeze=False)
    for ax, (panel, key, subtitle) in zip(axes[0], panels):
        sel = [r for r in rows if r["panel"] == panel]
        eps = sorted({float(r["eps"]) for r in sel})
        top = None
        for q in quantities:
            vals = np.array([[float(r[q]) for r in sel if float(r["eps"]) == e] for e in eps])
            geo = np.exp(np.log(vals).mean(axis=1))
            lo, hi = vals.min(axis=1), vals.max(axis=1)
            fit = fits[key][q]
            s = fit["slope_of_geometric_mean"]
            label = f"{QUANTITY_LABELS[q]} (slope {s:.2f}"
            if "slope_std_over_seeds" in fit and len(fit.get("per_seed", [])) > 1:
                label += f" +- {fit['slope_std_over_seeds']:.2f}"
            ax.errorbar(eps, geo, yerr=[geo - lo, hi - geo], marker="o", ms=3, capsize=2, label=label + ")")
            if top is None:
                top = geo
        e = np.array(eps)
        ax.loglog(e, top[0] * (e / e[0]) ** -2, "k--", lw=0.8, label="eps^-2")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eps")
        ax.set_title(subtitle)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = os.path.join(d, png)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fig2(d):
    return ntk_sweep(d, "sweep.csv", (("a", "a_init_normal", "(a) at initialization (normal)"),
                                      ("b", "b_glorot_adam", "(b) after Adam (Glorot)")),
                     ("frobenius_Kuu", "lambda1", "lambda2", "lambda3"),
                     "Fig. 2: NTK scaling, darcy-ntk, 1x50, Nc = 256 (spread over seeds)", "fig2.png")


def fig2_2d(d):
    with open(os.path.join(d, "summary.json")) as f:
        s = json.load(f)
    return ntk_sweep(d, "fig2_2d.csv", (("a", "a_init_normal", "(a) 2,50,1 at initialization (normal)"),
                                        ("b", "b_init_glorot", "(b) 2,40,40,40,40,1 at initialization (Glorot)")),
                     ("frobenius_Kuu", "lambda1", "spectral_radius_Kbb"),
                     "Fig. 2 in 2-D: NTK scaling, darcy2d-ntk, %s (spread over %d seeds)" % (s["grid"], s["seeds"]),
                     "fig2_2d.png")


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
    plt.close(fig)
    return os.path.join(d, "fig3.png")


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
    plt.close(fig)
    return os.path.join(d, "fig4.png")


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
    plt.close(fig)
    return os.path.join(d, "lm.png")


def poisson2d(d):
    """pinntk's runs on the 2-D Poisson benchmark beside the published ones (scripts/plot_poisson2d.py), and the
    darcy2d-twoscale runs' max-norm error against wall time when the folder has them."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from plot_poisson2d import plot_poisson2d  # noqa: E402

    published = os.path.join(here, "..", "benchmarks", "published", "dangel2024_poisson2d.csv")
    path = plot_poisson2d(os.path.join(d, "poisson2d_runs.csv"), published, os.path.join(d, "poisson2d.png"))
    histories = sorted(p for p in os.listdir(d) if p.startswith("darcy2d_") and p != "darcy2d_runs.csv")
    if histories:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for name in histories:
            rows = read_csv(os.path.join(d, name))
            ax.semilogy([float(r["time_s"]) for r in rows], [float(r["max_error"]) for r in rows], lw=1,
                        label=name[len("darcy2d_"):-len(".csv")])
        ax.axhline(1e-2, ls=":", color="gray", lw=0.8)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("max-norm error")
        ax.set_title("darcy2d-twoscale: LM with eps continuation vs Adam + L-BFGS")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "darcy2d.png"), dpi=120)
        plt.close(fig)
    return path


def prediction_1d(d, header, data):
    """A 1-D prediction.csv (x, u, exact, error): u and u* over x above, u - u* below, into prediction.png."""
    col = {c: i for i, c in enumerate(header)}
    x = data[:, col["x"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw=dict(height_ratios=(3, 2)))
    top.plot(x, data[:, col["exact"]], "k", lw=1.6, label="exact u*")
    top.plot(x, data[:, col["u"]], "C1--", lw=1, label="network u")
    top.set_ylabel("u")
    top.legend(fontsize=8)
    top.set_title("prediction (max |u - u*| = %.3g)" % np.abs(data[:, col["error"]]).max())
    bottom.plot(x, data[:, col["error"]], "C3", lw=0.8)
    bottom.axhline(0, color="gray", lw=0.5)
    bottom.set_xlabel("x")
    bottom.set_ylabel("u - u*")
    fig.tight_layout()
    path = os.path.join(d, "prediction.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def prediction(d):
    """A training's prediction.csv in 1-D (x, u, exact, error: two panels), 2-D (x, y, u, exact, error on a closed
    grid, x varying slowest) or 3-D (its mid-z slice; three images) into prediction.png."""
    with open(os.path.join(d, "prediction.csv")) as f:
        header = f.readline().strip().split(",")
    axes_names = [c for c in header if c in ("x", "y", "z")]
    data = np.loadtxt(os.path.join(d, "prediction.csv"), delimiter=",", skiprows=1, ndmin=2)
    if len(axes_names) < 2:
        return prediction_1d(d, header, data)
    col = {c: i for i, c in enumerate(header)}
    x, y = np.unique(data[:, col["x"]]), np.unique(data[:, col["y"]])
    shape = (len(x), len(y))
    title = "prediction"
    if "z" in col:
        z = np.unique(data[:, col["z"]])
        k = len(z) // 2
        data = data.reshape(len(x), len(y), len(z), -1)[:, :, k, :].reshape(-1, data.shape[1])
        title += ", slice z = %.4g" % z[k]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, name in zip(axes, ("u", "exact", "error")):
        img = data[:, col[name]].reshape(shape).T  # rows: y, columns: x
        style = dict(cmap="viridis")
        if name == "error":  # a diverging map centred at 0
            m = float(np.abs(img).max()) or 1.0
            style = dict(cmap="RdBu_r", vmin=-m, vmax=m)
        im = ax.imshow(img, origin="lower", extent=(x[0], x[-1], y[0], y[-1]), aspect="auto", **style)
        fig.colorbar(im, ax=ax)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title({"u": "network u", "exact": "exact u*", "error": "u - u*"}[name])
    fig.suptitle(title + " (max |u - u*| = %.3g)" % np.abs(data[:, col["error"]]).max())
    fig.tight_layout()
    path = os.path.join(d, "prediction.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def history(d):
    """A training's history.csv (iteration, optimizer, lr, loss, loss_pde, loss_boundary, max_error, ...): the loss
    (and its PDE and boundary parts) and the max-norm error against the iteration, log scale, with a dotted line and
    a label where the optimizer or Adam's learning rate changes, into history.png."""
    rows = read_csv(os.path.join(d, "history.csv"))
    if not rows:
        return None
    it = np.array([float(r["iteration"]) for r in rows])

    def col(name):
        return np.array([float(r[name]) if r.get(name, "") != "" else np.nan for r in rows])

    def phase(r):  # LM's lr column is its damping mu, which changes every row: not a phase
        return ("adam", r["lr"]) if r["optimizer"] == "adam" else (r["optimizer"], None)

    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(12, 4.2))
    ax_loss.semilogy(it, col("loss"), "k", lw=1.4, zorder=3, label="loss")
    for name, label in (("loss_pde", "PDE part"), ("loss_boundary", "boundary part")):
        if name in rows[0]:
            ax_loss.semilogy(it, col(name), lw=0.7, alpha=0.8, label=label)
    ax_err.semilogy(it, col("max_error"), "C3", lw=1.2, label="max |u - u*|")
    if "rel_l2_error" in rows[0]:
        ax_err.semilogy(it, col("rel_l2_error"), "C4", lw=0.7, alpha=0.8, label="relative L2 error")
    starts = [0] + [i for i in range(1, len(rows)) if phase(rows[i]) != phase(rows[i - 1])]
    for ax in (ax_loss, ax_err):
        for k, i in enumerate(starts):
            # pinntk train's rows: an Adam phase's and L-BFGS's first row is the state they start from (labelled
            # with the new phase), LM's first row comes after its first steps (the row before is the start)
            x0 = it[i - 1] if i > 0 and rows[i]["optimizer"] == "lm" else it[i]
            if i > 0:
                ax.axvline(x0, color="gray", ls=":", lw=0.8)
            opt, lr = phase(rows[i])
            text = {"adam": "Adam", "lbfgs": "L-BFGS", "lm": "LM"}.get(opt, opt) + (f" lr {float(lr):g}" if lr else "")
            ax.text(x0, 0.98, " " + text, transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="gray")
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8, loc="lower left")
    ax_loss.set_title("loss")
    ax_err.set_title("error on the test points (final max %.3g)" % col("max_error")[-1])
    fig.tight_layout()
    path = os.path.join(d, "history.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def density(d):
    """`pinntk ntk --eigen density`'s density.csv (log10_lo,log10_hi,count) as bars on the log10(lambda) axis, the
    mass below the axis ("below" in summary.json) in the title."""
    data = np.loadtxt(os.path.join(d, "density.csv"), delimiter=",", skiprows=1, ndmin=2)
    lo, hi, count = data[:, 0], data[:, 1], data[:, 2]
    title = "NTK spectral density (stochastic Lanczos quadrature)"
    summary = os.path.join(d, "summary.json")
    if os.path.exists(summary):
        with open(summary) as f:
            e = json.load(f).get("density", {})
        if e:
            title += (f"\n{e['probes']} probes x {e['steps']} steps on {e['operator']}, "
                      f"{e['below']:.1f} of N = {e['n']} below the axis")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(lo, count, width=hi - lo, align="edge", edgecolor="k", linewidth=0.3)
    ax.set_xlabel("log10(lambda)")
    ax.set_ylabel("eigenvalues per bin")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = os.path.join(d, "density.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def ntk_history(d):
    """`pinntk train --ntk-every`'s ntk_history.csv: the kernel's norms and largest eigenvalues along training (left),
    ||theta||_inf and max |W^(0)|, the quantities of Theorem 3.2's hypotheses (right), into ntk_history.png."""
    rows = read_csv(os.path.join(d, "ntk_history.csv"))
    it = [int(r["iteration"]) for r in rows]

    def col(name):  # empty cells (a kernel that was not finite) as NaN: matplotlib leaves a gap
        return [float(r[name]) if r[name] != "" else float("nan") for r in rows]

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for name, label in (("frobenius_K", "||K||_F"), ("frobenius_Kuu", "||K_uu||_F"), ("frobenius_Kbb", "||K_bb||_F"),
                        ("lambda_max_Kuu", "lambda_max(K_uu)")):
        ax[0].semilogy(it, col(name), marker=".", label=label)
    ax[0].set_xlabel("iteration")
    ax[0].legend()
    ax[0].set_title("the NTK along training")
    ax[1].plot(it, col("theta_max_abs"), marker=".", label="||theta||_inf")
    ax[1].plot(it, col("w0_max_abs"), marker=".", label="max |W^(0)| (first layer)")
    ax[1].set_xlabel("iteration")
    ax[1].legend()
    fig.tight_layout()
    path = os.path.join(d, "ntk_history.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    if not os.path.isdir(out):
        sys.exit(f"plot.py: {out}: " + ("not a folder" if os.path.exists(out) else "no such folder"))
    drawn = []
    for name, fn in (("fig1", fig1), ("fig2", fig2), ("fig3", fig3), ("fig4", fig4), ("lm", lm),
                     ("fig2-2d", fig2_2d), ("poisson2d", poisson2d)):
        d = os.path.join(out, name)
        if os.path.isdir(d):
            drawn.append(fn(d))
    if os.path.exists(os.path.join(out, "density.csv")):
        drawn.append(density(out))
    if os.path.exists(os.path.join(out, "ntk_history.csv")):
        drawn.append(ntk_history(out))
    for name, fn in (("prediction.csv", prediction), ("history.csv", history)):
        if os.path.exists(os.path.join(out, name)):
            path = fn(out)
            if path:
                drawn.append(path)
    print("plot.py: wrote " + (", ".join(drawn) if drawn else "nothing (no figure folders, prediction.csv, "
                               "history.csv, density.csv or ntk_history.csv in " + out + ")"))


if __name__ == "__main__":
    main()
