"""The Python module on a GPU (benchmarks/device_check.sh runs this file; tests/python/test_jacobian.py calls check()
where a device answers): pinntk.jacobian's J of a 4x40 network at N = 65536 handed to PyTorch as a CUDA tensor
without a copy (pointer equality), equal to torch.func's Jacobian of the same residuals on the GPU to 1e-12; and
pinntk.ntk on CUDA against the CPU. Needs pinntk built with CUDA, a device, and torch with CUDA. No pytest."""

import sys
import time

import numpy as np

import pinntk


def check(n_rows=65536):
    """Raises AssertionError on a mismatch; returns a one-line summary."""
    import torch
    from torch.func import functional_call, grad, jacrev, vmap

    problem = pinntk.Problem.preset("darcy-twoscale", nc=n_rows - 2)  # and the 2 boundary rows
    net = pinntk.Mlp([1, 40, 40, 40, 40, 1], seed=0)
    t0 = time.perf_counter()
    res = pinntk.jacobian(problem, net, device="cuda")
    t_pinntk = time.perf_counter() - t0
    J = torch.from_dlpack(res.J)
    assert J.is_cuda and J.dtype == torch.float64, (J.device, J.dtype)
    assert J.data_ptr() == res.data_ptr, "torch made a copy"
    assert tuple(J.shape) == (n_rows, net.n_params)

    model = net.to_torch().to("cuda")
    rows = problem.rows
    dev = torch.device("cuda")
    x = torch.from_numpy(problem.points[:, 0].copy()).to(dev)
    alpha, beta = (torch.from_numpy(rows[k][:, 0].copy()).to(dev) for k in ("alpha", "beta"))
    gamma, f = (torch.from_numpy(rows[k].copy()).to(dev) for k in ("gamma", "f"))
    params = {k: v.detach() for k, v in model.named_parameters()}

    def residual(p, xi, a, b, g, ff):  # one row: r = alpha u'' + beta u' + gamma u - f
        def u(t):
            return functional_call(model, p, (t.reshape(1, 1),)).reshape(())

        du = grad(u)
        return a * grad(du)(xi) + b * du(xi) + g * u(xi) - ff

    per_row = vmap(jacrev(residual), in_dims=(None, 0, 0, 0, 0, 0))  # per-row gradients: memory O(rows x P)
    worst = 0.0
    scale = J.abs().max().item()
    for lo in range(0, x.shape[0], 4096):
        sl = slice(lo, lo + 4096)
        jac = per_row(params, x[sl], alpha[sl], beta[sl], gamma[sl], f[sl])
        Jt = torch.cat([jac[k].reshape(x[sl].shape[0], -1) for k in params], dim=1)
        worst = max(worst, (J[sl] - Jt).abs().max().item())
    assert worst <= 1e-12 * scale, (worst, scale)
    r = torch.from_numpy(res.residuals).to(dev)
    rt = vmap(residual, in_dims=(None, 0, 0, 0, 0, 0))(params, x, alpha, beta, gamma, f)
    assert (r - rt).abs().max().item() <= 1e-12 * rt.abs().max().item()

    # The first part's result on its own line (stderr), so that a failure further on does not hide it.
    print(
        f"J {n_rows}x{net.n_params} zero-copy (pointer equal), max |J - torch.func| {worst / scale:.1e} of max|J|, "
        f"pinntk.jacobian {t_pinntk:.3f} s",
        file=sys.stderr,
    )
    small = pinntk.Problem.preset("darcy-twoscale", nc=1024)
    a = pinntk.ntk(small, net, device="cuda")
    b = pinntk.ntk(small, net, device="cpu")
    rel = abs(a.frobenius_Kuu / b.frobenius_Kuu - 1)
    assert a.device == "cuda" and rel <= 1e-12, (a.device, rel)
    # K = J J^T D formed on the device, into torch without a copy, against the CPU's K.
    kc = pinntk.kernel(small, net, device="cuda")
    K = torch.from_dlpack(kc.K)
    assert K.is_cuda and K.data_ptr() == kc.data_ptr, "torch made a copy of K"
    Kh = pinntk.kernel(small, net, device="cpu").K
    krel = np.abs(K.cpu().numpy() - Kh).max() / np.abs(Kh).max()
    assert krel <= 1e-12, krel
    return (
        f"ok: J {n_rows}x{net.n_params} zero-copy (pointer equal), max |J - torch.func| {worst / scale:.1e} of max|J|, "
        f"pinntk.jacobian {t_pinntk:.3f} s; ntk cuda vs cpu ||K_uu||_F rel {rel:.1e}; K zero-copy, vs cpu {krel:.1e}"
    )


def memory_report():
    """What the process could read of its memory room (a failed memory estimate is explained by it)."""
    lines = []
    for path, keys in (("/proc/meminfo", ("MemTotal", "MemAvailable", "MemFree", "Cached")),
                       ("/sys/fs/cgroup/memory.max", None), ("/sys/fs/cgroup/memory.current", None),
                       ("/sys/fs/cgroup/memory/memory.limit_in_bytes", None),
                       ("/sys/fs/cgroup/memory/memory.usage_in_bytes", None),
                       ("/sys/fs/cgroup/memory.stat", ("anon", "file", "inactive_file", "active_file"))):
        try:
            with open(path) as fh:
                text = fh.read().split("\n")
        except OSError as e:
            lines.append(f"{path}: {e.strerror}")
            continue
        if keys is None:
            lines.append(f"{path}: {text[0]}")
        else:
            lines += [f"{path}: {t}" for t in text if t.split(":")[0].split(" ")[0] in keys]
    lines.append(f"pinntk's available_memory_bytes(): {pinntk._core.available_memory_bytes()}")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        print(check())
    except Exception:
        print(memory_report(), file=sys.stderr)
        raise
