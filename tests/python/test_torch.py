"""PyTorch interoperability: Mlp.from_torch / to_torch, and pinntk's NTK equal to torch.func's on the same points."""

import numpy as np
import pytest

import pinntk

torch = pytest.importorskip("torch")
nn = torch.nn


def tanh_mlp(widths, seed=0):
    torch.manual_seed(seed)
    mods = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))
        if i < len(widths) - 2:
            mods.append(nn.Tanh())
    return nn.Sequential(*mods)


@pytest.mark.parametrize("widths", [[1, 7, 1], [1, 6, 5, 4, 1], [2, 8, 8, 1], [3, 4, 1]])
def test_round_trip(widths):
    m = tanh_mlp(widths, seed=1)
    net = pinntk.Mlp.from_torch(m)
    assert net.layers == widths
    x = torch.randn(13, widths[0], dtype=torch.float64)
    with torch.no_grad():
        ref = m(x)[:, 0].numpy()
    xin = x.numpy()[:, 0] if widths[0] == 1 else x.numpy()
    np.testing.assert_allclose(net(xin), ref, rtol=1e-13, atol=1e-13)
    back = net.to_torch()
    for a, b in zip(m.parameters(), back.parameters()):
        assert torch.equal(a, b)
    assert pinntk.Mlp.from_torch(back) == net


def test_flat_order_is_weight_offset():
    m = tanh_mlp([1, 3, 2, 1], seed=2)
    net = pinntk.Mlp.from_torch(m)
    for l, lin in enumerate([m[0], m[2], m[4]], start=1):
        off = net.weight_offset(l)
        W = lin.weight.detach().numpy()
        np.testing.assert_array_equal(net.theta[off : off + W.size], W.reshape(-1))
        np.testing.assert_array_equal(net.theta[off + W.size : off + W.size + W.shape[0]], lin.bias.detach().numpy())


def test_float32_module_is_converted():
    m = tanh_mlp([1, 4, 1]).float()
    net = pinntk.Mlp.from_torch(m)
    assert net.theta.dtype == np.float64
    assert net.to_torch(dtype=torch.float32)[0].weight.dtype == torch.float32


@pytest.mark.parametrize(
    "module, exc, match",
    [
        (nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1)), TypeError, "ReLU"),
        (nn.Sequential(nn.Linear(1, 4, bias=False), nn.Tanh(), nn.Linear(4, 1)), ValueError, "bias"),
        (nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 2)), ValueError, "outputs"),
        (nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(5, 1)), ValueError, "inputs"),
        (nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1), nn.Tanh()), ValueError, "last layer"),
        (nn.Sequential(nn.Linear(1, 4), nn.Linear(4, 1)), ValueError, "alternate"),
        (nn.Sequential(nn.Linear(1, 1)), ValueError, "hidden"),
        (nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1)), ValueError, "input width"),
        (nn.Linear(1, 1), TypeError, "Sequential"),
        (nn.Sequential(), ValueError, "empty"),
    ],
)
def test_refused_modules(module, exc, match):
    with pytest.raises(exc, match=match):
        pinntk.Mlp.from_torch(module)


def torch_residual_jacobian(model, problem):
    """J = d r / d theta of the rows r_k = alpha u'' + beta u' + gamma u - f (1-D), by torch.func."""
    from torch.func import functional_call, grad, jacrev, vmap

    rows = problem.rows
    x = torch.from_numpy(problem.points[:, 0].copy())
    alpha = torch.from_numpy(rows["alpha"][:, 0].copy())
    beta = torch.from_numpy(rows["beta"][:, 0].copy())
    gamma = torch.from_numpy(rows["gamma"].copy())
    f = torch.from_numpy(rows["f"].copy())
    params = {k: v.detach() for k, v in model.named_parameters()}

    def residuals(p):
        def u(xi):
            return functional_call(model, p, (xi.reshape(1, 1),)).reshape(())

        du = grad(u)
        d2u = grad(du)
        return alpha * vmap(d2u)(x) + beta * vmap(du)(x) + gamma * vmap(u)(x) - f

    jac = jacrev(residuals)(params)
    # pinntk's order: per Linear, weight (row-major) then bias -- model.named_parameters()'s order.
    J = torch.cat([jac[k].reshape(x.shape[0], -1) for k in params], dim=1)
    return J.numpy(), residuals(params).detach().numpy()


def test_ntk_equals_torch_func():
    problem = pinntk.Problem.preset("darcy-ntk", nc=40)
    model = tanh_mlp([1, 12, 9, 1], seed=3)
    net = pinntk.Mlp.from_torch(model)
    r = pinntk.ntk(problem, net, device="cpu", save_matrices=True)
    J, res = torch_residual_jacobian(model, problem)
    scale = np.abs(J).max()
    assert np.abs(r.J - J).max() <= 1e-12 * scale
    np.testing.assert_allclose(r.residuals, res, rtol=0, atol=1e-12 * np.abs(res).max())
    K = (J @ J.T) * problem.weights[None, :]
    assert np.abs(r.K - K).max() <= 1e-12 * np.abs(K).max()
