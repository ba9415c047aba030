"""pinntk.jacobian: the residuals and J where the backend computed them, handed over without a copy (numpy on the
CPU; DLPack in device memory on CUDA, checked against torch.func on the GPU when one answers)."""

import numpy as np
import pytest

import pinntk


def test_cpu_jacobian_is_the_ntk_jacobian_without_a_copy():
    problem = pinntk.Problem.preset("darcy-twoscale", nc=60)
    net = pinntk.Mlp([1, 9, 7, 1], seed=2)
    res = pinntk.jacobian(problem, net, device="cpu")
    ref = pinntk.ntk(problem, net, device="cpu", save_matrices=True)
    assert isinstance(res.J, np.ndarray) and res.J.dtype == np.float64
    assert res.J.shape == (problem.nc + problem.nb, net.n_params)
    np.testing.assert_array_equal(res.J, ref.J)  # the same path on the same backend
    np.testing.assert_array_equal(res.residuals, ref.residuals)
    assert res.J.__array_interface__["data"][0] == res.data_ptr
    assert np.from_dlpack(res.J).__array_interface__["data"][0] == res.data_ptr  # DLPack: no copy either
    assert res.device == "cpu" and res.precision == "fp64"
    J = res.J
    del res  # the array keeps its memory alive
    np.testing.assert_array_equal(J, ref.J)


def test_cpu_kernel_is_the_ntk_kernel_without_a_copy():
    problem = pinntk.Problem.preset("darcy-twoscale", nc=60)
    net = pinntk.Mlp([1, 9, 7, 1], seed=2)
    res = pinntk.kernel(problem, net, device="cpu")
    ref = pinntk.ntk(problem, net, device="cpu", save_matrices=True)
    assert isinstance(res.K, np.ndarray) and res.K.shape == (62, 62)
    np.testing.assert_allclose(res.K, ref.K, rtol=0, atol=1e-13 * np.abs(ref.K).max())
    assert res.K.__array_interface__["data"][0] == res.data_ptr
    J = ref.J
    plain = pinntk.kernel(problem, net, device="cpu", scaling="none").K  # D = I
    np.testing.assert_allclose(plain, J @ J.T, rtol=0, atol=1e-12 * np.abs(plain).max())
    np.testing.assert_array_equal(res.weights, problem.weights)


def test_two_dimensional_rows():
    problem = pinntk.Problem.preset("poisson2d-sines", nc=49, nb=16)
    net = pinntk.Mlp([2, 6, 5, 1], seed=1)
    res = pinntk.jacobian(problem, net, device="cpu")
    ref = pinntk.ntk(problem, net, device="cpu", save_matrices=True)
    np.testing.assert_array_equal(res.J, ref.J)


def test_bad_arguments():
    problem = pinntk.Problem.preset("darcy-twoscale", nc=20)
    with pytest.raises(pinntk.UsageError, match="input width"):
        pinntk.jacobian(problem, pinntk.Mlp([2, 5, 1]), device="cpu")
    with pytest.raises(pinntk.UsageError, match="device"):
        pinntk.jacobian(problem, pinntk.Mlp([1, 5, 1]), device="tpu")
    with pytest.raises(pinntk.UsageError, match="jacobian: needs about"):
        pinntk.jacobian(problem, pinntk.Mlp([1, 5, 1]), device="cpu", memory_limit="1K")


def test_torch_takes_the_cpu_jacobian_without_a_copy():
    torch = pytest.importorskip("torch")
    problem = pinntk.Problem.preset("darcy-ntk", nc=30)
    res = pinntk.jacobian(problem, pinntk.Mlp([1, 8, 1], seed=4), device="cpu")
    t = torch.from_dlpack(res.J)
    assert t.data_ptr() == res.data_ptr and t.dtype == torch.float64


def _cuda_ready():
    if not (pinntk.built_with_cuda and pinntk.cuda_device_count() > 0):
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda_ready(), reason="needs a CUDA device, a CUDA build of pinntk and torch with CUDA")
def test_cuda_jacobian_reaches_torch_without_a_copy_and_matches_torch_func():
    """Issue 16's GPU goal (tests/python/gpu_jacobian_check.py, which device_check.sh also runs)."""
    import gpu_jacobian_check

    assert gpu_jacobian_check.check().startswith("ok")
