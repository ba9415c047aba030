"""pinntk.Problem: presets, problem files, overrides and their errors."""

import numpy as np
import pytest

import pinntk


def test_names():
    names = pinntk.problem_names()
    assert "darcy-ntk" in names and "poisson2d-sines" in names
    assert "normal" in pinntk.init_names()


def test_preset_defaults_and_overrides():
    p = pinntk.Problem.preset("darcy-ntk")
    assert (p.name, p.dim, p.nc, p.nb) == ("darcy-ntk", 1, 256, 2)
    assert p.eps == pytest.approx(1 / 80)
    assert p.default_layers == [1, 50, 1] and p.default_init == "normal"
    q = pinntk.Problem.preset("darcy-ntk", eps=1 / 40, nc=64, nb=4, lam=3.0, grid="interior")
    assert (q.nc, q.nb, q.lam, q.grid) == (64, 4, 3.0, "interior")
    assert q.eps == pytest.approx(1 / 40)
    x = q.points
    assert x.shape == (68, 1) and x.dtype == np.float64
    w = q.weights
    assert w.shape == (68,)
    np.testing.assert_allclose(w[:64], 1 / 64)
    np.testing.assert_allclose(w[64:], 3.0 / 4)
    rows = q.rows
    assert rows["alpha"].shape == (68, 1) and rows["gamma"].shape == (68,)


def test_preset_nd_and_solution():
    p = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40)
    assert p.dim == 2 and p.points.shape == (140, 2) and p.eps is None
    x = np.array([[0.5, 0.5], [0.25, 0.5]])
    np.testing.assert_allclose(p.solution(x), np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]), rtol=1e-14)
    assert p.test_points.shape[1] == 2


def test_regression_eps_sets_nc():
    p = pinntk.Problem.preset("regression-twoscale", eps=1 / 16)
    assert p.nc == int(np.ceil(2 * np.pi / (1 / 32)))


def test_from_file(repo):
    path = repo / "problems" / "darcy-ntk.json"
    if not path.exists():
        pytest.skip("problems/darcy-ntk.json not in this checkout")
    p = pinntk.Problem.from_file(str(path), eps=1 / 40, nc=64)
    assert p.nc == 64 and p.dim == 1
    q = pinntk.Problem.from_file(path, eps=1 / 40, nc=64)  # a pathlib.Path as well as a str
    assert np.array_equal(q.points, p.points)


def test_full_tensor_rows_and_training(repo):
    """A full coefficient tensor: the rows carry their directions (orthonormal, A = sum_k -alpha_k v_k v_k^T), and
    LM on the constant anisotropic problem reaches a small error; the CUDA kernels take such rows (their Jacobian is
    the CPU's to rounding where a GPU answers, a one-line refusal where none does)."""
    p = pinntk.Problem.from_file(str(repo / "problems" / "anisotropic-2d.json"), nc=144, nb=48)
    rows = p.rows
    dirs = rows["dirs"]
    assert dirs.shape == (p.nc + p.nb, 2, 2)
    for k in range(p.nc):
        v = dirs[k]
        np.testing.assert_allclose(v @ v.T, np.eye(2), atol=1e-14)
        A = sum(-rows["alpha"][k, i] * np.outer(v[i], v[i]) for i in range(2))
        c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
        R = np.array([[c, -s], [s, c]])
        np.testing.assert_allclose(A, R @ np.diag([1.0, 10.0]) @ R.T, atol=1e-13)
    assert "dirs" not in pinntk.Problem.preset("poisson2d-sines", nc=16).rows
    net = pinntk.Mlp([2, 12, 12, 1], seed=0)
    res = pinntk.train(p, net, schedule="300@1e-3", optimizer="lm", lm_iters=60, device="cpu")
    assert res.history["rel_l2_error"][-1] < 0.05
    cpu = pinntk.jacobian(p, net, device="cpu")
    if pinntk.built_with_cuda and pinntk.cuda_device_count() > 0:
        gpu = pinntk.jacobian(p, net, device="cuda")
        np.testing.assert_allclose(gpu.residuals, cpu.residuals, rtol=0, atol=1e-12 * np.abs(cpu.residuals).max())
        torch = pytest.importorskip("torch")  # J lives in device memory: torch copies it to the host
        J = torch.from_dlpack(gpu.J).cpu().numpy()
        np.testing.assert_allclose(J, np.asarray(cpu.J), rtol=0, atol=1e-12 * np.abs(np.asarray(cpu.J)).max())
    else:
        with pytest.raises(pinntk.UsageError, match="CUDA"):
            pinntk.jacobian(p, net, device="cuda")


def test_toml_file_is_the_json_file(repo):
    try:
        t = pinntk.Problem.from_file(str(repo / "problems" / "anisotropic-2d.toml"), nc=64, nb=32)
    except pinntk.UsageError as e:
        if "without toml++" in str(e):
            pytest.skip("built without toml++")
        raise
    j = pinntk.Problem.from_file(str(repo / "problems" / "anisotropic-2d.json"), nc=64, nb=32)
    for key in ("alpha", "beta", "f", "w", "dirs"):
        np.testing.assert_array_equal(t.rows[key], j.rows[key])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="nope"), "unknown problem"),
        (dict(name="darcy-ntk", eps=-1.0), "eps"),
        (dict(name="poisson-sines", eps=0.1), "no eps"),
        (dict(name="darcy-ntk", nc=0), "nc"),
        (dict(name="darcy-ntk", grid="hexagonal"), "unknown grid"),
        (dict(name="darcy-ntk", nc=2**40), r"nc must lie in \[0, 2147483647\]"),
        (dict(name="darcy-ntk", nb=-1), "nb must lie in"),
        (dict(name="poisson2d-sines", point_seed=-1), r"point_seed must be an integer in \[0, 2\^64 - 1\]"),
        (dict(name="poisson2d-sines", point_seed=2**64), "point_seed must be an integer"),
    ],
)
def test_bad_presets(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        pinntk.Problem.preset(**kwargs)
    assert "\n" not in str(e.value)  # one line, not nanobind's list of signatures


def test_usage_error_is_value_error():
    assert issubclass(pinntk.UsageError, ValueError)
    assert issubclass(pinntk.NumericalError, ArithmeticError)


def test_missing_file():
    with pytest.raises(ValueError):
        pinntk.Problem.from_file("/nonexistent/problem.json")


def test_module_attributes():
    assert pinntk.__version__ == "0.1.0"
    assert isinstance(pinntk.built_with_cuda, bool)
    assert pinntk.cuda_device_count() >= 0
    assert pinntk.UsageError.__module__ == "pinntk"


def test_domain_and_omega():
    p = pinntk.Problem.preset("darcy-twoscale", domain="0,2pi", omega=3.0, nc=16)
    lo, hi = p.domain
    assert lo == [0.0] and hi == [pytest.approx(2 * np.pi)] and p.omega == 3.0
    assert p.points.min() >= 0.0 and p.points.max() <= 2 * np.pi + 1e-12
    q = pinntk.Problem.preset("poisson2d-sines", domain="0,2", nc=16, nb=8)
    assert q.domain == ([0.0, 0.0], [2.0, 2.0])
    with pytest.raises(ValueError):
        pinntk.Problem.preset("darcy-twoscale", domain="1,0")


def test_boundary_and_point_seed():
    """The n-D overrides of --boundary and --point-seed on poisson2d-sines (uniform collocation and boundary points
    by default): the seed moves both, boundary="grid" puts the boundary points on a grid of each face."""
    a = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40)
    b = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, boundary="uniform", point_seed=0)
    c = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, boundary="uniform", point_seed=3)
    g = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, boundary="grid", point_seed=3)
    assert a.points.shape == b.points.shape == c.points.shape == g.points.shape == (140, 2)
    np.testing.assert_array_equal(a.points, b.points)  # the preset's own settings
    assert not np.array_equal(b.points[:100], c.points[:100])  # another seed: other collocation points
    assert not np.array_equal(b.points[100:], c.points[100:])  # and other boundary points
    np.testing.assert_array_equal(c.points[:100], g.points[:100])
    assert not np.array_equal(c.points[100:], g.points[100:])
    lo, hi = c.domain
    for q in (c, g):
        on_face = np.isclose(q.points[100:], lo) | np.isclose(q.points[100:], hi)
        assert np.all(on_face.any(axis=1))
    again = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, boundary="uniform", point_seed=3)
    np.testing.assert_array_equal(c.points, again.points)
    s0 = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, grid="grid")
    s3 = pinntk.Problem.preset("poisson2d-sines", nc=100, nb=40, grid="grid", point_seed=3)
    np.testing.assert_array_equal(s0.points[:100], s3.points[:100])  # a grid has no seed


def test_points_file(tmp_path):
    p = pinntk.Problem.preset("poisson2d-sines", nb=8)
    lo, hi = map(np.array, p.domain)
    rng = np.random.default_rng(0)
    pts = lo + (hi - lo) * rng.uniform(0.05, 0.95, size=(9, 2))
    path = tmp_path / "pts.npy"
    np.save(path, pts)
    for given in (path, str(path)):
        q = pinntk.Problem.preset("poisson2d-sines", nb=8, points=given)
        assert q.nc == 9 and q.points.shape == (17, 2)
        np.testing.assert_array_equal(q.points[:9], pts)
    with pytest.raises(pinntk.UsageError, match="points replaces nc and grid: give one"):
        pinntk.Problem.preset("poisson2d-sines", nc=9, points=path)
    with pytest.raises(pinntk.UsageError, match="points replaces nc and grid"):
        pinntk.Problem.preset("poisson2d-sines", grid="sobol", points=path)
    np.save(tmp_path / "w3.npy", np.zeros((4, 3)))
    with pytest.raises(pinntk.UsageError):
        pinntk.Problem.preset("poisson2d-sines", points=tmp_path / "w3.npy")
    with pytest.raises(pinntk.UsageError):
        pinntk.Problem.preset("poisson2d-sines", points=tmp_path / "missing.npy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="darcy-ntk", boundary="uniform"), "boundary, points and point_seed are for n-dimensional"),
        (dict(name="darcy-ntk", point_seed=1), "are for n-dimensional problems"),
        (dict(name="darcy-ntk", points="x.npy"), "are for n-dimensional problems"),
        (dict(name="darcy2d-ntk", boundary="edges"), r"boundary: unknown placement 'edges' \(known: grid, uniform\)"),
    ],
)
def test_bad_point_overrides(kwargs, match):
    with pytest.raises(pinntk.UsageError, match=match):
        pinntk.Problem.preset(**kwargs)


def test_from_file_point_overrides(repo, tmp_path):
    path = repo / "problems" / "poisson2d-sines.json"
    if not path.exists():
        pytest.skip("problems/poisson2d-sines.json not in this checkout")
    a = pinntk.Problem.from_file(str(path), nc=64, nb=16, grid="uniform", boundary="uniform", point_seed=3)
    b = pinntk.Problem.from_file(str(path), nc=64, nb=16, grid="uniform", boundary="uniform", point_seed=4)
    assert a.points.shape == (80, 2) and not np.array_equal(a.points, b.points)
    pts = np.array([[0.25, 0.5], [0.5, 0.25], [0.75, 0.75]])
    np.save(tmp_path / "p.npy", pts)
    q = pinntk.Problem.from_file(str(path), nb=8, points=tmp_path / "p.npy")
    assert q.nc == 3
    np.testing.assert_array_equal(q.points[:3], pts)
    with pytest.raises(pinntk.UsageError, match="points replaces nc and grid"):
        pinntk.Problem.from_file(str(path), nc=3, points=tmp_path / "p.npy")


def test_a_problems_arrays_are_read_only():
    """Its rows are fixed when the problem is made (an edit would be silently ignored by ntk and train)."""
    p = pinntk.Problem.preset("darcy-ntk", nc=16)
    for a in (p.points, p.weights, *p.rows.values()):
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 1.0


def test_messages_name_python_keywords_not_cli_flags():
    """The library's one-line messages say nc, memory_limit, scaling where the CLI's say --nc, --memory-limit,
    --ntk-scaling."""
    p = pinntk.Problem.preset("darcy-ntk", nc=64)
    cases = [
        (lambda: pinntk.Problem.preset("darcy-ntk", nc=0), r"^nc must be at least 1"),
        (lambda: pinntk.ntk(p, pinntk.Mlp([1, 5, 1]), scaling="x"), r"^scaling: unknown value"),
        (lambda: pinntk.ntk(p, pinntk.Mlp([1, 50, 1]), memory_limit="1K"), r"more than the 1.0 kB of memory_limit"),
        (lambda: pinntk.Problem.preset("darcy-ntk", lam=-1.0), r"^lam must"),
    ]
    for call, match in cases:
        with pytest.raises(pinntk.UsageError, match=match) as e:
            call()
        assert "--" not in str(e.value), str(e.value)
