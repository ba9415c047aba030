"""pinntk.ntk_top and pinntk.ntk_density (the CLI's `ntk --eigen top:K` and `--eigen density`): against the full
spectrum of pinntk.ntk, the CLI's numbers and the checks of k and the density's settings."""

import json
import subprocess

import numpy as np
import pytest

import pinntk


def case(nc):
    """darcy-twoscale, nc collocation + 2 boundary rows, layers 1,8,8,1 (P = 97): N <= P at nc = 60 (K_s), N > P at
    nc = 200 (the Gram)."""
    p = pinntk.Problem.preset("darcy-twoscale", nc=nc, nb=2)
    net = pinntk.Mlp.for_problem(p, seed=2, layers=[1, 8, 8, 1])
    return p, net


@pytest.mark.parametrize("nc", [60, 200])
def test_top_matches_full_spectrum(nc):
    p, net = case(nc)
    N, P = p.nc + p.nb, net.n_params
    full = pinntk.ntk(p, net, device="cpu", save_matrices=True)
    k = 4
    t = pinntk.ntk_top(p, net, k, vectors=True, device="cpu")
    assert t.values.shape == (k,) and np.all(np.diff(t.values) <= 0)
    np.testing.assert_allclose(t.values, full.spectrum_K[:k], rtol=1e-10, atol=0)
    assert t.gram == (N > P) and t.dim == min(N, P) and t.k == k
    assert t.products > 0 and t.converged >= k
    assert t.vectors.shape == (t.dim, k)
    # Eigenvectors of K_s = D^1/2 J J^T D^1/2 (row space) or of the Gram J^T D J (parameter space), unit length.
    J, d = full.J, full.weights
    if t.gram:
        A = J.T @ (d[:, None] * J)
        assert t.vectors_of.startswith("Jh^T Jh")
    else:
        s = np.sqrt(d)
        A = (s[:, None] * J) @ (J.T * s[None, :])
        assert t.vectors_of.startswith("K_s")
    np.testing.assert_allclose(np.linalg.norm(t.vectors, axis=0), 1.0, rtol=1e-10)
    np.testing.assert_allclose(A @ t.vectors, t.vectors * t.values[None, :], rtol=0, atol=1e-8 * t.values[0])
    assert "NtkTopResult" in repr(t)


def test_top_every_eigenvalue_dense():
    p = pinntk.Problem.preset("darcy-twoscale", nc=20, nb=2)
    net = pinntk.Mlp.for_problem(p, seed=1, layers=[1, 8, 8, 1])
    full = pinntk.ntk(p, net, device="cpu")
    t = pinntk.ntk_top(p, net, 22, device="cpu")  # k = N = min(N, P): the dense solve
    assert t.vectors is None and t.method.startswith("dense")
    big = full.spectrum_K > 1e-8 * full.spectrum_K[0]
    np.testing.assert_allclose(t.values[big], full.spectrum_K[big], rtol=1e-10, atol=0)


def test_top_bad_k():
    p, net = case(60)
    for k in (0, -3, 63, 10**12):
        with pytest.raises(pinntk.UsageError, match=r"k must lie in \[1, min\(N, P\) = 62\]"):
            pinntk.ntk_top(p, net, k, device="cpu")
    with pytest.raises(ValueError):
        pinntk.ntk_top(p, net, 2, device="cpu", tol=0.0)
    with pytest.raises(ValueError, match="input width"):
        pinntk.ntk_top(p, pinntk.Mlp([2, 4, 1]), 2, device="cpu")
    with pytest.raises(pinntk.UsageError, match="ntk_top: needs about"):
        pinntk.ntk_top(p, net, 2, device="cpu", memory_limit="1k")


@pytest.mark.parametrize("nc", [60, 200])
def test_density_matches_exact_spectrum(nc):
    """As tests/test_ntk.cpp: steps = dim (full Lanczos), so only the probe average is left; counts below each edge
    within 0.15 N of the exact spectrum's from 12 decades under lambda_max up."""
    p, net = case(nc)
    N, P = p.nc + p.nb, net.n_params
    dim = min(N, P)
    exact = pinntk.ntk(p, net, device="cpu").spectrum_K
    r = pinntk.ntk_density(p, net, probes=32, steps=dim + 5, bins=32, seed=11, device="cpu")
    assert (r.n, r.dim, r.steps, r.steps_capped, r.gram) == (N, dim, dim, True, N > P)
    assert r.edges.shape == (33,) and r.counts.shape == (32,)
    assert r.nodes.shape == r.weights.shape and r.nodes.size <= 32 * dim + (N > P)
    assert r.known_zeros == N - dim and r.below >= r.known_zeros
    assert np.all(r.counts >= 0) and r.counts[-1] > 0
    assert r.counts.sum() + r.below == pytest.approx(N, rel=1e-9)
    assert r.total == pytest.approx(N, rel=1e-9)
    assert r.weights.sum() == pytest.approx(N, rel=1e-9)  # with the known zeros' node at 0
    assert r.lambda_max == pytest.approx(exact[0], rel=1e-10)
    assert r.edges[-1] - r.edges[0] == pytest.approx(16.0, abs=1e-12)
    cum = r.below + np.concatenate([[0.0], np.cumsum(r.counts)])
    for b, e in enumerate(r.edges[:-1]):
        if e < r.edges[-1] - 12.0:
            continue
        below_exact = np.count_nonzero(exact < 10.0**e)
        assert abs(cum[b] - below_exact) <= 0.15 * N, (e, cum[b], below_exact)
    counts, edges = r.histogram()
    assert counts is r.counts and edges is r.edges
    assert "NtkDensityResult" in repr(r)


def test_density_bad_settings():
    p, net = case(60)
    for kw, name in ((dict(probes=0), "probes"), (dict(steps=-2), "steps"), (dict(bins=0), "bins")):
        with pytest.raises(pinntk.UsageError, match=f"^{name} must be at least 1"):
            pinntk.ntk_density(p, net, device="cpu", **kw)
    with pytest.raises(pinntk.UsageError, match="ntk_density: needs about"):
        pinntk.ntk_density(p, net, device="cpu", memory_limit="1k")


def test_same_numbers_as_cli(cli, tmp_path):
    """ntk_top and ntk_density against `pinntk ntk --eigen top:4 --save-vectors` and `--eigen density`."""
    common = ["ntk", "--problem", "darcy-twoscale", "--nc", "60", "--nb", "2", "--layers", "1,8,8,1", "--seed", "2"]
    common += ["--device", "cpu", "--out"]
    top, dens = tmp_path / "top", tmp_path / "density"
    subprocess.run([cli, *common, str(top), "--eigen", "top:4", "--save-vectors"], check=True, capture_output=True)
    subprocess.run([cli, *common, str(dens), "--eigen", "density", "--density-probes", "8", "--density-steps", "30",
                    "--density-bins", "20"], check=True, capture_output=True)  # fmt: skip
    p, net = case(60)
    t = pinntk.ntk_top(p, net, 4, vectors=True, device="cpu")
    e = json.loads((top / "summary.json").read_text())["eigen"]
    assert t.products == e["products"] and t.operator == e["operator"] and t.vectors_of == e["vectors_of"]
    ref = np.load(top / "eigenvalues_top.npy")
    np.testing.assert_allclose(t.values, ref, rtol=1e-12, atol=0)
    vec = np.load(top / "eigenvectors_top.npy")
    assert vec.shape == t.vectors.shape
    np.testing.assert_allclose(np.abs(t.vectors), np.abs(vec), rtol=0, atol=1e-8)  # up to sign
    # --seed 2 is also the probes' seed.
    r = pinntk.ntk_density(p, net, probes=8, steps=30, bins=20, seed=2, device="cpu")
    s = json.loads((dens / "summary.json").read_text())["density"]
    assert r.products == s["products"] and r.steps == s["steps"] and r.probe_seed == s["probe_seed"] == 2
    assert r.lambda_max == pytest.approx(s["lambda_max"], rel=1e-12)
    assert r.below == pytest.approx(s["below"], rel=1e-9, abs=1e-9)
    csv = np.loadtxt(dens / "density.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(r.edges[:-1], csv[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.edges[1:], csv[:, 1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.counts, csv[:, 2], rtol=0, atol=1e-8 * p.nc)
    np.testing.assert_allclose(r.nodes, np.load(dens / "density_nodes.npy"), rtol=1e-9, atol=1e-12 * r.lambda_max)
    np.testing.assert_allclose(r.weights, np.load(dens / "density_weights.npy"), rtol=0, atol=1e-8)
