"""pinntk.Mlp: construction, the writable theta view, checkpoints, evaluation and errors."""

import json

import numpy as np
import pytest

import pinntk


def test_init_and_shape():
    net = pinntk.Mlp([1, 50, 1], init="normal", seed=0)
    assert net.layers == [1, 50, 1] and net.n_params == 151
    assert net.theta.shape == (151,) and net.theta.dtype == np.float64
    # W^1 (50 x 1) row-major, b^1 (50), W^2 (1 x 50), b^2 (1): weight_offset(2) = 100
    assert net.weight_offset(1) == 0 and net.weight_offset(2) == 100
    same = pinntk.Mlp([1, 50, 1], init="normal", seed=0)
    other = pinntk.Mlp([1, 50, 1], init="normal", seed=1)
    assert net == same and net != other


def test_for_problem():
    p = pinntk.Problem.preset("darcy-ntk")
    net = pinntk.Mlp.for_problem(p, seed=3)
    assert net == pinntk.Mlp([1, 50, 1], init="normal", seed=3)


def test_theta_is_a_view():
    net = pinntk.Mlp([1, 4, 1], init="glorot-normal", seed=0)
    view = net.theta
    view[0] = 42.0
    assert net.theta[0] == 42.0
    net.theta = np.arange(net.n_params, dtype=np.float64)
    assert view[5] == 5.0  # the old view sees the assignment: same buffer
    with pytest.raises(ValueError, match="expected 13 parameters"):
        net.theta = np.zeros(3)


def test_evaluate_matches_formula():
    net = pinntk.Mlp([1, 3, 1], init="normal", seed=7)
    th = net.theta
    W1, b1, W2, b2 = th[0:3].reshape(3, 1), th[3:6], th[6:9].reshape(1, 3), th[9]
    x = np.linspace(-2, 2, 11)
    h = np.tanh(W1 @ x[None, :] + b1[:, None])
    u_ref = (W2 @ h)[0] + b2
    du_ref = (W2 @ ((1 - h**2) * W1))[0]
    d2u_ref = (W2 @ (-2 * h * (1 - h**2) * W1**2))[0]
    u, du, d2u = net.evaluate(x)
    np.testing.assert_allclose(u, u_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(du, du_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(d2u, d2u_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(net(x), u_ref, rtol=1e-13, atol=1e-13)


def test_evaluate_2d_shapes():
    net = pinntk.Mlp([2, 5, 1], seed=0)
    u, du, d2u = net.evaluate(np.zeros((4, 2)))
    assert u.shape == (4,) and du.shape == (4, 2) and d2u.shape == (4, 2)
    with pytest.raises(ValueError, match="expected shape"):
        net.evaluate(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="expected shape"):
        net.evaluate(np.zeros(4))


def test_checkpoint_round_trip(tmp_path):
    net = pinntk.Mlp([1, 8, 8, 1], init="glorot-uniform", seed=11)
    path = tmp_path / "net.json"
    net.save(path)
    j = json.loads(path.read_text())
    assert j["format"] == "pinntk-mlp-v1" and j["layers"] == [1, 8, 8, 1]
    back = pinntk.Mlp.load(path)
    assert isinstance(back, pinntk.Mlp) and back == net  # 17 digits: exact
    assert pinntk.Mlp.from_json(net.to_json()) == net
    c = net.copy()
    c.theta[0] += 1
    assert c != net


@pytest.mark.parametrize(
    "layers, init, match",
    [
        ([1, 50, 2], "normal", "."),
        ([1], "normal", "."),
        ([], "normal", "layers"),
        ([1, 0, 1], "normal", "."),
        ([1, 5, 1], "he", "."),
    ],
)
def test_bad_networks(layers, init, match):
    with pytest.raises(ValueError, match=match):
        pinntk.Mlp(layers, init=init)


def test_bad_checkpoints(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format":"pinntk-mlp-v1","layers":[1,2,1],"activation":"tanh","weights":[[[1],[2]]],"biases":[]}')
    with pytest.raises(ValueError):
        pinntk.Mlp.load(bad)
    with pytest.raises(ValueError):
        pinntk.Mlp.load(tmp_path / "missing.json")
    with pytest.raises(ValueError):
        pinntk.Mlp.from_json("not json")


def test_weight_offset_range():
    net = pinntk.Mlp([1, 4, 1])
    with pytest.raises(ValueError):
        net.weight_offset(0)
    with pytest.raises(ValueError):
        net.weight_offset(3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pinntk.Mlp([1, 10.5, 1]), "layers must be an integer, got 10.5"),
        (lambda: pinntk.Mlp([1, 10, 1], seed=1.5), "seed must be an integer"),
        (lambda: pinntk.Mlp([1, 10, 1], seed=-1), r"seed must lie in \[0, 18446744073709551615\]"),
        (lambda: pinntk.Mlp([1, 10, 1], seed=2**64), "seed must lie in"),
        (lambda: pinntk.Mlp([1, 10, 1], seed=True), "seed must be an integer"),
        (lambda: pinntk.Mlp([1, 4, 1]).evaluate(np.zeros(3), threads=1.5), "threads must be an integer"),
        (lambda: pinntk.ntk_top(pinntk.Problem.preset("darcy-ntk", nc=16), pinntk.Mlp([1, 4, 1]), 3.5), "k must be"),
        (lambda: pinntk.train(pinntk.Problem.preset("darcy-ntk", nc=16), pinntk.Mlp([1, 4, 1]),
                              schedule=[(5.5, 1e-3)], progress=False), "schedule: iterations must be an integer"),
        (lambda: pinntk.ntk(pinntk.Problem.preset("darcy-ntk", nc=16), pinntk.Mlp([1, 4, 1]), memory_limit=[1]),
         "memory_limit must be"),
    ],
)
def test_arguments_are_integers_in_range_or_one_line_errors(call, match):
    """Non-integral numbers are refused (never truncated) and out-of-range integers give one line, not nanobind's
    list of signatures; both as pinntk.UsageError (a ValueError)."""
    with pytest.raises(pinntk.UsageError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_a_memory_limit_may_be_a_number_of_bytes():
    p = pinntk.Problem.preset("darcy-ntk", nc=16)
    r = pinntk.ntk(p, pinntk.Mlp([1, 4, 1]), device="cpu", memory_limit=10**9)
    assert np.isfinite(r.frobenius_Kuu)
    with pytest.raises(pinntk.UsageError, match="memory"):
        pinntk.ntk(p, pinntk.Mlp([1, 4, 1]), device="cpu", memory_limit=100)
