"""pinntk.ntk: norms, spectra, J and K against their definitions, the CLI's numbers, paths and errors."""

import json
import subprocess

import numpy as np
import pytest

import pinntk


@pytest.fixture(scope="module")
def small():
    p = pinntk.Problem.preset("darcy-ntk", nc=48)
    net = pinntk.Mlp([1, 20, 1], init="normal", seed=0)
    return p, net


def test_matrices_match_definitions(small):
    p, net = small
    r = pinntk.ntk(p, net, device="cpu", save_matrices=True)
    N, P = p.nc + p.nb, net.n_params
    assert r.J.shape == (N, P) and r.K.shape == (N, N) and r.points.shape == (N, 1)
    np.testing.assert_array_equal(r.points, p.points)
    d = p.weights
    np.testing.assert_allclose(r.K, (r.J @ r.J.T) * d[None, :], rtol=1e-12, atol=1e-12 * np.abs(r.K).max())
    nc = p.nc
    Kuu = r.K[:nc, :nc]
    assert r.frobenius_Kuu == pytest.approx(np.linalg.norm(Kuu), rel=1e-12)
    assert r.frobenius_K == pytest.approx(np.linalg.norm(r.K), rel=1e-12)
    ev = np.sort(np.linalg.eigvalsh(Kuu))[::-1]
    np.testing.assert_allclose(r.spectrum_Kuu, ev, rtol=0, atol=1e-10 * ev[0])
    assert r.spectrum_K.shape == (N,) and r.spectrum_Kbb.shape == (p.nb,)
    assert np.all(np.diff(r.spectrum_K) <= 0)
    assert r.residuals.shape == (N,)
    assert r.path == "exact" and r.device == "cpu" and r.precision == "fp64"
    assert r.condition_Kuu is None or r.condition_Kuu >= 1
    assert r.spectral_radius_Kbb == pytest.approx(r.spectrum_Kbb[0])
    assert "NtkResult" in repr(r)


def test_scaling_none(small):
    p, net = small
    lem = pinntk.ntk(p, net, device="cpu", save_matrices=True)
    none = pinntk.ntk(p, net, device="cpu", scaling="none", save_matrices=True)
    np.testing.assert_allclose(none.K, lem.J @ lem.J.T, rtol=1e-12, atol=1e-12 * np.abs(none.K).max())
    assert none.frobenius_Kuu == pytest.approx(lem.frobenius_Kuu * p.nc, rel=1e-12)  # D_u = 1/nc


def test_no_matrices_by_default(small):
    p, net = small
    r = pinntk.ntk(p, net, device="cpu")
    assert r.J is None and r.K is None and r.points is None


def test_chunked_path_agrees():
    p = pinntk.Problem.preset("darcy-ntk", nc=300)
    net = pinntk.Mlp([1, 10, 1], init="normal", seed=1)  # P = 31 < N: the chunked path applies
    ex = pinntk.ntk(p, net, device="cpu", path="exact")
    ch = pinntk.ntk(p, net, device="cpu", path="chunked", chunk_rows=64)
    assert ch.path == "chunked" and ch.chunk_rows == 64 and ch.gram_trick
    assert ch.frobenius_Kuu == pytest.approx(ex.frobenius_Kuu, rel=1e-12)
    np.testing.assert_allclose(ch.spectrum_Kuu[:31], ex.spectrum_Kuu[:31], rtol=0, atol=1e-12 * ex.spectrum_Kuu[0])


def test_fig2_growth():
    """||K_uu||_F grows like eps^-2 (paper Fig. 2a), on a 3-point sweep."""
    inv = np.array([10.0, 20.0, 40.0])
    net = pinntk.Mlp([1, 50, 1], init="normal", seed=0)
    f = [pinntk.ntk(pinntk.Problem.preset("darcy-ntk", eps=1 / k), net, device="cpu").frobenius_Kuu for k in inv]
    slope = np.polyfit(np.log(1 / inv), np.log(f), 1)[0]
    assert -2.4 < slope < -1.6


def test_same_numbers_as_cli(cli, tmp_path):
    """The Python call and `pinntk ntk` on the Fig. 2 network give the same spectra and norms (to rounding)."""
    out = tmp_path / "ntk"
    subprocess.run(
        [cli, "ntk", "--problem", "darcy-ntk", "--layers", "1,50,1", "--nc", "256", "--device", "cpu", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    s = json.loads((out / "summary.json").read_text())["ntk"]
    r = pinntk.ntk(pinntk.Problem.preset("darcy-ntk", nc=256), pinntk.Mlp([1, 50, 1], init="normal", seed=0), device="cpu")
    # To rounding: OpenBLAS's threads may split a product differently from run to run on a loaded machine.
    assert r.frobenius_Kuu == pytest.approx(s["frobenius_Kuu"], rel=1e-14)
    assert r.frobenius_K == pytest.approx(s["frobenius_K"], rel=1e-14)
    for name in ("spectrum_Kuu", "spectrum_K"):
        ref = np.load(out / f"{name}.npy")
        np.testing.assert_allclose(getattr(r, name), ref, rtol=0, atol=1e-14 * ref[0])


def test_bad_arguments(small):
    p, net = small
    with pytest.raises(ValueError, match="input width"):
        pinntk.ntk(p, pinntk.Mlp([2, 5, 1]), device="cpu")
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="cpu", scaling="sideways")
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="cpu", path="diagonal")
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="tpu")
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="cpu", path="chunked", save_matrices=True)
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="cpu", precision="fp16")
    with pytest.raises(ValueError):
        pinntk.ntk(p, net, device="cpu", threads=-1)
    with pytest.raises(TypeError):
        pinntk.ntk("darcy-ntk", net)


def test_cuda_without_device(small):
    p, net = small
    if pinntk.cuda_device_count() > 0:
        r = pinntk.ntk(p, net, device="cuda")
        assert r.device == "cuda"
        c = pinntk.ntk(p, net, device="cpu")
        assert r.frobenius_Kuu == pytest.approx(c.frobenius_Kuu, rel=1e-10)
    else:
        with pytest.raises(ValueError):
            pinntk.ntk(p, net, device="cuda")


def test_numerical_error():
    p = pinntk.Problem.preset("darcy-ntk", nc=16)
    net = pinntk.Mlp([1, 4, 1])
    net.theta = np.full(net.n_params, 1e200)
    with pytest.raises(pinntk.NumericalError, match="not finite"):
        pinntk.ntk(p, net, device="cpu")
