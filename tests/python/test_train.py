"""pinntk.train: Adam, L-BFGS, LM with eps continuation, progress callbacks, Ctrl-C, divergence and bad settings."""

import signal

import numpy as np
import pytest

import pinntk

KEYS = ["iteration", "lr", "loss", "loss_pde", "loss_boundary", "max_error", "rel_l2_error", "time_s"]


@pytest.fixture
def setup():
    p = pinntk.Problem.preset("darcy-twoscale", nc=96)
    return p, pinntk.Mlp([1, 16, 16, 1], init="glorot-normal", seed=0)


@pytest.fixture
def sigint():
    """Python's own SIGINT handler for the test: a runner started in the background by a shell inherits SIGINT
    ignored, and Python then installs no handler of its own."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_adam_history(setup):
    p, net = setup
    before = net.theta.copy()
    view = net.theta
    r = pinntk.train(p, net, schedule="200@1e-3,100@1e-4", device="cpu", history_every=50, progress=False)
    assert r.status == "complete" and r.iterations == 300 and r.adam_iterations == 300
    h = r.history
    for k in KEYS:
        assert isinstance(h[k], np.ndarray) and h[k].shape == (7,)
    np.testing.assert_array_equal(h["iteration"], np.arange(0, 301, 50))
    assert h["optimizer"] == ["adam"] * 7
    assert h["lr"][0] == 1e-3 and h["lr"][-1] == 1e-4
    assert r.final_loss == h["loss"][-1] and r.final_loss < h["loss"][0]
    assert not np.array_equal(view, before)  # trained in place: the old view sees the new parameters
    assert r.lm is None and r.diverged is None


def test_same_as_schedule_list(setup):
    p, net = setup
    a, b = net.copy(), net.copy()
    pinntk.train(p, a, schedule="100@1e-3", device="cpu", progress=False)
    pinntk.train(p, b, schedule=[(100, 1e-3)], device="cpu", progress=False)
    assert a == b


def test_same_as_cli(setup, cli, tmp_path):
    """The trained network is the CLI's `pinntk train` checkpoint, bit for bit (same device and thread count)."""
    import subprocess

    p, net = setup
    out = tmp_path / "train"
    subprocess.run(
        [cli, "train", "--problem", "darcy-twoscale", "--nc", "96", "--layers", "1,16,16,1", "--schedule", "100@1e-3",
         "--device", "cpu", "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    pinntk.train(p, net, schedule="100@1e-3", device="cpu", progress=False)
    assert pinntk.Mlp.load(out / "checkpoint.json") == net


def test_lbfgs(setup):
    p, net = setup
    r = pinntk.train(p, net, schedule="50@1e-3", lbfgs=30, device="cpu", history_every=10, progress=False)
    assert r.lbfgs["iterations"] > 0 and "lbfgs" in r.history["optimizer"]
    r2 = pinntk.train(p, net.copy(), schedule="", lbfgs=10, lbfgs_method="two-loop", device="cpu", progress=False)
    assert r2.status == "complete"


def test_ntk_along_training(setup):
    """ntk_every: a row at 0, K, 2K, ... through Adam and L-BFGS, each the NTK of that iteration's network (the first
    that of the initial network, the last that of the trained one), as the CLI's ntk_history.csv."""
    p, net = setup
    init = net.copy()
    r = pinntk.train(p, net, schedule="40@1e-3", lbfgs=40, history_every=20, ntk_every=20, ntk_scaling="none",
                     device="cpu", threads=1, progress=False)  # fmt: skip
    h = r.ntk_history
    n = r.iterations // 20 + 1
    np.testing.assert_array_equal(h["iteration"], np.arange(n) * 20)
    for k in ("frobenius_K", "frobenius_Kuu", "lambda_max_Kuu", "trace_Kbb", "w0_max_abs", "ntk_time_s"):
        assert h[k].shape == (n,) and np.all(np.isfinite(h[k]))
    first = pinntk.ntk(p, init, scaling="none", device="cpu", threads=1)
    assert h["frobenius_Kuu"][0] == pytest.approx(first.frobenius_Kuu, rel=1e-12)
    assert h["w0_max_abs"][0] == np.max(np.abs(init.theta[:16]))
    if r.iterations % 20 == 0:
        last = pinntk.ntk(p, net, scaling="none", device="cpu", threads=1)
        assert h["frobenius_K"][-1] == pytest.approx(last.frobenius_K, rel=1e-12)
    assert h["frobenius_K"][-1] != h["frobenius_K"][0]
    assert pinntk.train(p, init.copy(), schedule="20@1e-3", device="cpu", progress=False).ntk_history is None


def test_lm_with_continuation(setup):
    p, net = setup
    seen = []
    r = pinntk.train(
        p, net, schedule="50@1e-3", optimizer="lm", lm_iters=[5, 5], eps_continuation=[1 / 8, 1 / 16],
        history_every=2, device="cpu", progress=seen.append,
    )  # fmt: skip
    assert r.status == "complete" and r.eps == pytest.approx(1 / 16)
    assert [s["eps"] for s in r.lm["stages"]] == [1 / 8, 1 / 16]
    lh = r.lm["history"]
    assert lh["loss"].shape == (10,) and set(lh["stage"].tolist()) == {0, 1}
    assert "lm" in r.history["optimizer"]
    assert np.all(np.diff(r.history["iteration"]) > 0)  # one row per iteration, the last one too
    lm_calls = [s for s in seen if s.phase == "lm"]
    assert len(lm_calls) == 10 and isinstance(lm_calls[-1], pinntk.Progress)
    assert lm_calls[-1].row is not None and "max_error" in lm_calls[-1].row


def test_ctrl_c_keeps_the_network(setup, sigint):
    """SIGINT during Adam: TrainingInterrupted after the network is set to the state of the last progress step."""
    p, net = setup
    ref = net.copy()
    pinntk.train(p, ref, schedule="200@1e-3", device="cpu", progress=False)

    def cb(info):
        if info.iteration >= 200:
            signal.raise_signal(signal.SIGINT)  # to this thread: handled before the call returns

    with pytest.raises(pinntk.TrainingInterrupted) as e:
        pinntk.train(p, net, schedule="1000@1e-3", device="cpu", history_every=50, progress=cb)
    assert isinstance(e.value, KeyboardInterrupt)
    res = e.value.result
    assert res.status == "interrupted" and res.iterations == 200 and res.history["iteration"][-1] == 200
    assert e.value.net is net and net == ref  # exactly the network of iteration 200
    assert res.final_loss == res.history["loss"][-1]


def test_ctrl_c_in_lm(setup, sigint):
    p, net = setup

    def cb(info):
        if info.phase == "lm" and info.iteration >= 23:
            signal.raise_signal(signal.SIGINT)  # to this thread: handled before the call returns

    with pytest.raises(pinntk.TrainingInterrupted) as e:
        pinntk.train(p, net, schedule="20@1e-3", optimizer="lm", lm_iters=50, device="cpu", progress=cb)
    r = e.value.result
    assert r.iterations == 23 and r.lm["stages"][0]["stop"] == "interrupted"
    assert np.all(np.isfinite(net.theta))


def test_callback_exception_is_reraised(setup):
    p, net = setup

    class Stop(Exception):
        pass

    def cb(info):
        raise Stop("from the callback")

    with pytest.raises(Stop) as e:
        pinntk.train(p, net, schedule="500@1e-3", device="cpu", progress=cb)
    assert e.value.pinntk_result.status == "interrupted"
    assert np.all(np.isfinite(net.theta))


def test_diverged_run_keeps_last_finite_network():
    p = pinntk.Problem.preset("darcy-twoscale", nc=64)
    net = pinntk.Mlp([1, 8, 1], seed=0)
    r = pinntk.train(p, net, schedule="200@1e30", device="cpu", progress=False, history_every=10)
    if r.status == "diverged":
        assert r.diverged and np.all(np.isfinite(net.theta))
    else:  # Adam's normalized steps may stay finite: then at least it ran
        assert r.status == "complete"


def test_tqdm_default(setup, capsys):
    pytest.importorskip("tqdm")
    p, net = setup
    pinntk.train(p, net, schedule="100@1e-3", device="cpu")
    assert "adam" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(schedule="100@"), ValueError),
        (dict(schedule=[(100,)]), ValueError),
        (dict(schedule=""), ValueError),
        (dict(optimizer="sgd"), ValueError),
        (dict(optimizer="lm", lbfgs=10), ValueError),
        (dict(eps_continuation=[0.1]), ValueError),
        (dict(optimizer="lm", lm_iters=[1, 2, 3], eps_continuation=[0.1, 0.05]), ValueError),
        (dict(optimizer="lm", eps_continuation=[-0.1]), ValueError),
        (dict(adam_beta1=1.5), ValueError),
        (dict(history_every=0), ValueError),
        (dict(lbfgs=5, lbfgs_method="newton"), ValueError),
        (dict(lm_damping="none", optimizer="lm"), ValueError),
        (dict(progress=42), TypeError),
        (dict(history_every=100, ntk_every=150), ValueError),
        (dict(ntk_every=-1), ValueError),
        (dict(ntk_every=100, ntk_scaling="half"), ValueError),
        (dict(ntk_every=100, optimizer="lm"), ValueError),
    ],
)
def test_bad_settings(setup, kwargs, exc):
    p, net = setup
    before = net.theta.copy()
    with pytest.raises(exc):
        pinntk.train(p, net, device="cpu", **kwargs)
    np.testing.assert_array_equal(net.theta, before)


def test_wrong_network(setup):
    p, _ = setup
    with pytest.raises(ValueError, match="input width"):
        pinntk.train(p, pinntk.Mlp([2, 4, 1]), schedule="10@1e-3", device="cpu", progress=False)


def test_2d_problem():
    p = pinntk.Problem.preset("poisson2d-sines", nc=64, nb=16)
    net = pinntk.Mlp.for_problem(p, layers=[2, 8, 1])
    r = pinntk.train(p, net, schedule="20@1e-3", optimizer="lm", lm_iters=5, device="cpu", progress=False)
    assert r.status == "complete" and np.isfinite(r.rel_l2_error)


def test_a_network_that_is_not_finite_is_refused_and_left_as_it_is(setup):
    """NaN parameters are bad input (a ValueError naming the parameter), not a divergence of the training."""
    p, net = setup
    net.theta = np.full(net.n_params, np.nan)
    with pytest.raises(pinntk.UsageError, match=r"theta\[0\] is nan"):
        pinntk.train(p, net, schedule="10@1e-3", device="cpu", progress=False)
    assert np.all(np.isnan(net.theta))
    with pytest.raises(ValueError, match="finite"):
        pinntk.train(p, net, schedule="", optimizer="lm", lm_iters=3, device="cpu", progress=False)
    with pytest.raises(ValueError, match="finite"):
        pinntk.ntk(p, net, device="cpu")
    with pytest.raises(ValueError, match="finite"):
        net.save("/tmp/pinntk_nan_checkpoint_never_written.json")


def test_an_empty_network_is_refused_not_a_crash(setup):
    """The core's Mlp() (the wrapper's placeholder) has no layers: every call refuses it in one line."""
    p, _ = setup
    empty = pinntk._core.Mlp()
    for call in (lambda: pinntk.ntk(p, empty, device="cpu"), lambda: pinntk.jacobian(p, empty, device="cpu"),
                 lambda: pinntk.kernel(p, empty, device="cpu"), lambda: pinntk.ntk_top(p, empty, 2, device="cpu"),
                 lambda: pinntk.train(p, empty, schedule="5@1e-3", device="cpu", progress=False),
                 lambda: empty.evaluate(np.zeros((2, 1)), "cpu"), lambda: empty.to_json()):
        with pytest.raises(ValueError, match="no layers"):
            call()


def test_an_ensemble_whose_seeds_pass_2_to_the_64_is_refused(setup):
    p, _ = setup
    with pytest.raises(ValueError, match="2\\^64"):
        pinntk.train_ensemble(p, [1, 4, 1], 3, seed=2**64 - 2, schedule="5@1e-3", progress=False)
    with pytest.raises(ValueError, match="1024"):
        pinntk.train_ensemble(p, [1, 4, 1], 1025, schedule="5@1e-3", progress=False)


def test_callback_may_call_pinntk(setup):
    """A progress callback may evaluate or analyse (the backend lock is re-entrant: no deadlock)."""
    p, net = setup
    seen = []

    def cb(info):
        seen.append(pinntk.ntk(p, pinntk.Mlp([1, 4, 1]), device="cpu").frobenius_Kuu)
        net.evaluate(np.zeros(3))

    pinntk.train(p, net, schedule="40@1e-3", history_every=10, device="cpu", progress=cb)
    pinntk.train(p, net, schedule="", optimizer="lm", lm_iters=3, device="cpu", progress=cb)
    assert len(seen) >= 7


def test_ensemble_members_are_their_own_runs():
    """train_ensemble: the members' Adam and L-BFGS as one batch, each member bit for bit the run train gives its
    seed (CPU, one thread); the progress callback sees the batch as member -1; the spread of a final number."""
    p = pinntk.Problem.preset("darcy-twoscale", nc=64)
    seen = set()
    e = pinntk.train_ensemble(
        p, [1, 8, 8, 1], 3, seed=5, schedule="200@1e-3", lbfgs=20, device="cpu", threads=1, progress_every=50,
        progress=lambda pr: seen.add((pr.phase, pr.member)),
    )  # fmt: skip
    assert e.status == "complete" and e.seeds == [5, 6, 7] and ("adam", -1) in seen
    for m in e.members:
        net = pinntk.Mlp([1, 8, 8, 1], seed=m.seed)
        r = pinntk.train(p, net, schedule="200@1e-3", lbfgs=20, device="cpu", threads=1, progress=False, progress_every=50)
        np.testing.assert_array_equal(m.net.theta, net.theta)
        np.testing.assert_array_equal(m.result.history["loss"], r.history["loss"])
        assert m.result.final_loss == r.final_loss
    s = e.spread("final_loss")
    assert s["count"] == 3 and s["min"] <= s["median"] <= s["max"]


def test_ensemble_with_lm_and_its_errors():
    p = pinntk.Problem.preset("darcy-twoscale", nc=64)
    seen = set()
    e = pinntk.train_ensemble(
        p, [1, 8, 8, 1], 2, schedule="100@1e-3", optimizer="lm", lm_iters=20, device="cpu", threads=1,
        progress_every=10, history_every=10, progress=lambda pr: seen.add((pr.phase, pr.member)),
    )  # fmt: skip
    assert {("lm", 0), ("lm", 1)} <= seen and all(m.result.lm is not None for m in e.members)
    net = pinntk.Mlp([1, 8, 8, 1], seed=1)
    pinntk.train(
        p, net, schedule="100@1e-3", optimizer="lm", lm_iters=20, device="cpu", threads=1, progress=False,
        progress_every=10, history_every=10,
    )  # fmt: skip
    np.testing.assert_array_equal(e.members[1].net.theta, net.theta)

    def stop(pr):
        if pr.iteration >= 50:
            raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here") as info:
        pinntk.train_ensemble(p, [1, 8, 8, 1], 2, schedule="100@1e-3", device="cpu", progress=stop, progress_every=10)
    assert info.value.pinntk_result.status == "interrupted"
    with pytest.raises(pinntk.UsageError, match="count"):
        pinntk.train_ensemble(p, [1, 8, 8, 1], 0)
    with pytest.raises(pinntk.UsageError, match="input width"):
        pinntk.train_ensemble(p, [2, 8, 1], 2)
    with pytest.raises(TypeError, match="unknown keyword 'colour'"):
        pinntk.train_ensemble(p, [1, 8, 8, 1], 2, colour=1)


def test_ensemble_spread_names_its_keys_and_eps_continuation_takes_the_clis_text(setup):
    p, _ = setup
    e = pinntk.train_ensemble(p, [1, 4, 1], 2, schedule="5@1e-3", progress=False)
    assert e.spread("max_error")["count"] == 2
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        e.spread("bogus")
    net = pinntk.Mlp([1, 6, 1], seed=1)
    a = pinntk.train(p, net.copy(), schedule="", optimizer="lm", lm_iters=[2, 2], eps_continuation="1/8,1/16",
                     progress=False)
    b = pinntk.train(p, net.copy(), schedule="", optimizer="lm", lm_iters=[2, 2], eps_continuation=[1 / 8, 1 / 16],
                     progress=False)
    assert a.final_loss == b.final_loss
    with pytest.raises(ValueError, match="eps_continuation: cannot read"):
        pinntk.train(p, net.copy(), schedule="", optimizer="lm", eps_continuation="1/8,x", progress=False)
