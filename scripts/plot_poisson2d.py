#!/usr/bin/env python3
"""Plot pinntk's 2-D Poisson runs beside the published best runs of Dangel et al. (2024).

    python3 scripts/plot_poisson2d.py OURS_CSV PUBLISHED_CSV OUT_PNG

OURS_CSV holds pinntk's runs with columns D,optimizer,time_s,rel_l2 (other
columns are ignored). PUBLISHED_CSV is benchmarks/published/dangel2024_poisson2d.csv
(columns D,optimizer,step,time_s,rel_l2, and optionally problem). One panel per
network size D, relative L2 error against wall time, both on log scales: the
published curves thin, ours thick, and a dotted line at each goal. A missing
published file gives a figure with our runs only and a note in the title; a D
that our file lacks gives a panel with only the published curves.

Needs numpy and matplotlib (backend Agg).
"""
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The three networks of the benchmark and the error each should reach.
ARCHITECTURES = {257: "2-64-1", 9873: "2-64-64-48-48-1", 116097: "2-256-256-128-128-1"}
GOALS = {257: 5e-8, 9873: 5e-7, 116097: 1e-6}

PUBLISHED_TAG = "Dangel et al. 2024"
PUBLISHED_COLORS = {
    "ENGD_full": "tab:blue",
    "ENGD_per_layer": "tab:cyan",
    "ENGD_diagonal": "tab:purple",
    "KFAC": "tab:gray",
    "KFAC*": "tab:olive",
    "HessianFree": "tab:green",
    "LBFGS": "tab:brown",
    "Adam": "tab:orange",
    "SGD": "tab:pink",
}
OURS_COLORS = ("black", "crimson", "navy", "darkgreen", "darkorange", "indigo")


def read_runs(path, with_problem=False):
    """Group a CSV's rows into {(D, optimizer): (time_s, rel_l2[, problem])}, sorted by time."""
    groups = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                key = (int(float(row["D"])), row["optimizer"].strip())
                t, e = float(row["time_s"]), float(row["rel_l2"])
            except (KeyError, TypeError, ValueError):
                continue
            if not (math.isfinite(t) and math.isfinite(e)):
                continue
            entry = groups.setdefault(key, ([], [], set()))
            entry[0].append(t)
            entry[1].append(e)
            entry[2].add((row.get("problem") or "").strip())
    runs = {}
    for key, (t, e, problems) in groups.items():
        t, e = np.asarray(t), np.asarray(e)
        order = np.argsort(t, kind="stable")
        keep = (t[order] > 0) & (e[order] > 0)  # log axes
        t, e = t[order][keep], e[order][keep]
        problems.discard("")
        runs[key] = (t, e, problems) if with_problem else (t, e)
    return runs


def published_label(optimizer, problems):
    other = sorted(p for p in problems if p != "sin_product")
    extra = "; " + ", ".join(other) + " problem" if other else ""
    return "%s (%s%s)" % (optimizer, PUBLISHED_TAG, extra)


def plot_poisson2d(ours_csv, published_csv, out_png):
    """Draw ours (thick) and the published runs (thin) per D into out_png; return out_png."""
    notes = []
    ours = {}
    if ours_csv and os.path.isfile(ours_csv):
        ours = read_runs(ours_csv)
    else:
        notes.append("our runs not found (%s)" % ours_csv)
    published = {}
    if published_csv and os.path.isfile(published_csv):
        published = read_runs(published_csv, with_problem=True)
    else:
        notes.append("published runs not found (%s): ours only" % published_csv)

    sizes = sorted(set(ARCHITECTURES) | {D for D, _ in ours} | {D for D, _ in published})
    ours_names = list(dict.fromkeys(opt for _, opt in ours))  # file order
    ours_color = {opt: OURS_COLORS[i % len(OURS_COLORS)] for i, opt in enumerate(ours_names)}
    extra_colors = iter(plt.get_cmap("tab20").colors)
    pub_color = dict(PUBLISHED_COLORS)

    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 5.2), squeeze=False)
    handles = {}
    for ax, D in zip(axes[0], sizes):
        drawn = 0
        for (d, opt), (t, e, problems) in sorted(published.items()):
            if d != D or t.size == 0:
                continue
            if opt not in pub_color:
                pub_color[opt] = next(extra_colors)
            label = published_label(opt, problems)
            (line,) = ax.plot(t, e, lw=1.0, alpha=0.85, color=pub_color[opt], label=label)
            handles.setdefault(label, line)
            drawn += 1
        for (d, opt), (t, e) in ours.items():
            if d != D or t.size == 0:
                continue
            label = "%s (pinntk)" % opt
            (line,) = ax.plot(
                t, e, lw=2.8, color=ours_color[opt], label=label, marker="o", markevery=[-1], ms=5
            )
            handles.setdefault(label, line)
            drawn += 1
        if D in GOALS:
            label = "goal"
            line = ax.axhline(GOALS[D], color="dimgray", ls=":", lw=1.5, label=label)
            handles.setdefault(label, line)
            ax.annotate(
                "goal %.0e" % GOALS[D],
                xy=(1.0, GOALS[D]),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=8,
                color="dimgray",
            )
        if not any(d == D for d, _ in ours):
            ax.text(
                0.5, 0.97, "no pinntk run for this D", transform=ax.transAxes,
                ha="center", va="top", fontsize=9, color="dimgray",
            )
        if drawn == 0:
            ax.set_xlim(1e-1, 1e3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall time (s)")
        ax.grid(True, which="major", alpha=0.4)
        arch = ARCHITECTURES.get(D)
        ax.set_title("D = %d" % D + (" (%s)" % arch if arch else ""))
    axes[0][0].set_ylabel("relative L2 error")

    title = "2-D Poisson, -Δu = 2π² sin(πx) sin(πy) on [0,1]²: relative L2 error vs wall time"
    if published:
        title += "\npublished: best runs of Dangel et al. (NeurIPS 2024), fp64, RTX 6000, 1000 s"
    if notes:
        title += "\n" + "; ".join(notes)
    fig.suptitle(title, fontsize=11, y=0.99, va="top")
    bottom = 0.12
    if handles:
        # published first, then ours, then the goal line
        def rank(label):
            return (0 if PUBLISHED_TAG in label else 2 if label == "goal" else 1, label)

        labels = sorted(handles, key=rank)
        ncol = min(4, len(labels))
        fig.legend(
            [handles[k] for k in labels], labels,
            loc="lower center", ncol=ncol, fontsize=8, frameon=False,
        )
        bottom += 0.04 * int(math.ceil(len(labels) / float(ncol)))
    top = 0.97 - 0.045 * (title.count("\n") + 1) - 0.04
    fig.subplots_adjust(left=0.06, right=0.99, top=top, bottom=bottom, wspace=0.22)
    out_dir = os.path.dirname(os.path.abspath(out_png))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)
    return out_png


def main(argv):
    if len(argv) != 4:
        print("usage: plot_poisson2d.py OURS_CSV PUBLISHED_CSV OUT_PNG", file=sys.stderr)
        return 2
    print(plot_poisson2d(argv[1], argv[2], argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
