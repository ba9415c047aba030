#!/usr/bin/env python3
"""Convert the released best runs of Dangel et al. (NeurIPS 2024) on 2-D Poisson to one CSV.

    python3 scripts/convert_dangel2024.py SNAPSHOT [--rev REV] [--out CSV] [--sin-product-only]

SNAPSHOT is a copy of https://github.com/f-dangel/kfac-pinns-experiments: either
a bare git directory (read at REV, default HEAD) or a checked-out work tree.
The runs are read from the `best_runs/` folders of the three 2-D Poisson
experiments (exp09: 2-64-1, exp15: 2-64-64-48-48-1, exp20: 2-256-256-128-128-1).
Each `*_best_meta.csv` holds the run's configuration (a Python dict literal),
each `*_best_history.csv` the logged points (wandb export).

Output columns (one row per logged point of each optimizer's best run):

    D            number of network parameters
    optimizer    SGD, Adam, LBFGS, HessianFree, ENGD_full, ENGD_per_layer,
                 ENGD_diagonal, KFAC (grid line search), KFAC* (automatic lr)
    step         iteration index (0-based, as logged)
    time_s       training wall time since the start of the run, in seconds
    rel_l2       relative L2 error, l2_published / ||u||_L2(Omega)
    l2_published the logged `l2_error`: sqrt(mean((u_net - u)^2)) over 9000
                 uniform test points, i.e. the absolute L2 error (not relative)
    problem      manufactured solution: sin_product (u = sin(pi x) sin(pi y),
                 ||u|| = 1/2) or cos_sum (u = cos(pi x) + cos(pi y), ||u|| = 1)

Only the Python standard library is used.
"""
import argparse
import ast
import csv
import math
import os
import subprocess
import sys

EXPERIMENTS = (
    "kfac_pinns_exp/exp09_reproduce_poisson2d",
    "kfac_pinns_exp/exp15_poisson2d_deepwide",
    "kfac_pinns_exp/exp20_poisson2d_mlp_tanh_256",
)

# Exact L2(Omega) norm of each manufactured solution on the unit square.
SOLUTION_NORM = {"sin_product": 0.5, "cos_sum": 1.0}

OPTIMIZER_ORDER = (
    "ENGD_full",
    "ENGD_per_layer",
    "ENGD_diagonal",
    "KFAC",
    "KFAC*",
    "HessianFree",
    "LBFGS",
    "Adam",
    "SGD",
)

COLUMNS = ("D", "optimizer", "step", "time_s", "rel_l2", "l2_published", "problem")


class Snapshot:
    """Read files from a bare git directory (at a revision) or a work tree."""

    def __init__(self, path, rev):
        self.path = os.path.abspath(path)
        self.is_tree = os.path.isdir(os.path.join(self.path, "kfac_pinns_exp"))
        self.rev = rev
        self.commit = self._commit()

    def _git(self, *args):
        git_dir = self.path if not self.is_tree else os.path.join(self.path, ".git")
        out = subprocess.run(
            ["git", "--git-dir=" + git_dir, *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def _commit(self):
        try:
            return self._git("rev-parse", self.rev + "^{commit}").strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            return "unknown"

    def list_dir(self, folder):
        if self.is_tree:
            full = os.path.join(self.path, folder)
            if not os.path.isdir(full):
                return []
            return sorted(folder + "/" + name for name in os.listdir(full))
        listing = self._git("ls-tree", "--name-only", self.rev, folder + "/")
        return sorted(line for line in listing.splitlines() if line)

    def read(self, name):
        if self.is_tree:
            with open(os.path.join(self.path, name)) as f:
                return f.read()
        return self._git("show", self.rev + ":" + name)


def num_params(model, dim_in=2, dim_out=1):
    """Parameter count of an `mlp-tanh-W1-W2-...` network (weights and biases)."""
    parts = model.split("-")
    if parts[:2] != ["mlp", "tanh"]:
        raise ValueError("unexpected model name " + repr(model))
    widths = [dim_in] + [int(w) for w in parts[2:]] + [dim_out]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def optimizer_name(config):
    """Name a run after its optimizer and the variant that matters for the paper."""
    opt = config["optimizer"]
    if opt == "ENGD":
        return "ENGD_" + config["ENGD_approximation"]
    if opt == "KFAC":
        return "KFAC*" if config.get("KFAC_lr") == "auto" else "KFAC"
    return opt


def parse_meta(text):
    rows = list(csv.DictReader(text.splitlines()))
    if len(rows) != 1:
        raise ValueError("a meta file should hold one run, found %d" % len(rows))
    return ast.literal_eval(rows[0]["config"])


def parse_history(text):
    points = []
    for row in csv.DictReader(text.splitlines()):
        try:
            step = int(float(row["step"]))
            time_s = float(row["time"])
            l2 = float(row["l2_error"])
        except (KeyError, ValueError):
            continue  # a row without these fields (none in the released data)
        if math.isfinite(time_s) and math.isfinite(l2):
            points.append((step, time_s, l2))
    points.sort()
    return points


def convert(snapshot, sin_product_only=False, log=sys.stderr):
    """Return the output rows and the list of files used."""
    rows, used = [], []
    for exp in EXPERIMENTS:
        names = snapshot.list_dir(exp + "/best_runs")
        if not names:
            print("warning: no best_runs in " + exp, file=log)
        for meta_name in (n for n in names if n.endswith("_best_meta.csv")):
            hist_name = meta_name[: -len("_meta.csv")] + "_history.csv"
            config = parse_meta(snapshot.read(meta_name))
            if config.get("equation") != "poisson" or config.get("dim_Omega") != 2:
                print("skip %s: not 2-D Poisson" % meta_name, file=log)
                continue
            problem = config.get("boundary_condition", "sin_product")
            if problem not in SOLUTION_NORM:
                print("skip %s: unknown solution %s" % (meta_name, problem), file=log)
                continue
            if problem != "sin_product":
                if sin_product_only:
                    print("skip %s: solution %s" % (meta_name, problem), file=log)
                    continue
                print("note %s: solution %s" % (meta_name, problem), file=log)
            D = num_params(config["model"])
            opt = optimizer_name(config)
            points = parse_history(snapshot.read(hist_name))
            used += [meta_name, hist_name]
            for step, time_s, l2 in points:
                rel = l2 / SOLUTION_NORM[problem]
                rows.append((D, opt, step, time_s, rel, l2, problem))
    order = {name: i for i, name in enumerate(OPTIMIZER_ORDER)}
    rows.sort(key=lambda r: (r[0], order.get(r[1], len(order)), r[1], r[2]))
    return rows, used


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "benchmarks", "published", "dangel2024_poisson2d.csv")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", help="bare git dir or work tree of kfac-pinns-experiments")
    parser.add_argument("--rev", default="HEAD", help="revision to read from a bare git dir")
    parser.add_argument("--out", default=os.path.normpath(default_out), help="output CSV")
    parser.add_argument(
        "--sin-product-only",
        action="store_true",
        help="drop runs on the cos_sum solution (the released Hessian-free runs for D=9873, 116097)",
    )
    args = parser.parse_args(argv)

    snapshot = Snapshot(args.snapshot, args.rev)
    rows, used = convert(snapshot, args.sin_product_only)
    if not rows:
        print("error: no runs found under " + snapshot.path, file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for D, opt, step, time_s, rel, l2, problem in rows:
            writer.writerow((D, opt, step, repr(time_s), repr(rel), repr(l2), problem))

    print("commit %s, %d files, %d rows -> %s" % (snapshot.commit, len(used), len(rows), args.out))
    summary = {}
    for D, opt, step, time_s, rel, l2, problem in rows:
        best = summary.get((D, opt), (None, math.inf))[1]
        summary[(D, opt)] = ((step, time_s, rel, l2, problem), min(best, rel))
    for (D, opt), ((step, time_s, rel, l2, problem), best) in summary.items():
        print(
            "D=%-6d %-14s last step %-6d t=%7.1fs rel_l2 last %.3g min %.3g"
            " (l2_published last %.3g) %s" % (D, opt, step, time_s, rel, best, l2, problem)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
