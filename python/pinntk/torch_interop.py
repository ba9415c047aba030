"""PyTorch <-> pinntk networks (pure Python; torch is imported only here, when asked for).

pinntk's parameter vector is, layer by layer, W^l row-major (d_l rows of d_{l-1} numbers) then b^l (host/mlp.hpp,
weight_offset); torch's ``nn.Linear(d_in, d_out)`` stores ``weight`` as (d_out, d_in) row-major and ``bias`` as
(d_out,), so each Linear's ``weight.flatten()`` then ``bias`` is exactly pinntk's block: no transposition.
"""

import numpy as np

__all__ = ["mlp_from_torch", "mlp_to_torch"]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without torch
        raise ImportError("pinntk: PyTorch interoperability needs torch (pip install torch)") from e
    return torch


def mlp_from_torch(module, cls=None):
    """The pinntk Mlp computing the same function as ``module``.

    ``module`` must be an ``nn.Sequential`` of ``Linear, Tanh, Linear, Tanh, ..., Linear``: every Linear with a bias,
    consecutive widths matching, input width 1 to 3 (the problem's dimension), output width 1, at least one hidden
    layer. Anything else raises TypeError (not a Sequential, a module other than Linear or Tanh) or ValueError (a
    missing bias, a wrong width or order) naming the offending layer. Parameters are copied as float64.
    """
    torch = _torch()
    nn = torch.nn
    if cls is None:
        from . import Mlp as cls
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential of Linear and Tanh layers, got {type(module).__name__}")
    mods = list(module)
    if not mods:
        raise ValueError("from_torch: the Sequential is empty")
    for i, m in enumerate(mods):
        if not isinstance(m, (nn.Linear, nn.Tanh)):
            raise TypeError(
                f"from_torch: layer {i} is {type(m).__name__}; pinntk networks are tanh MLPs "
                "(only Linear and Tanh layers, alternating)"
            )
        want = nn.Linear if i % 2 == 0 else nn.Tanh
        if not isinstance(m, want):
            raise ValueError(
                f"from_torch: layer {i} is {type(m).__name__}, expected {want.__name__}: the layers must alternate "
                "Linear, Tanh, ..., Linear"
            )
    if not isinstance(mods[-1], nn.Linear):
        raise ValueError("from_torch: the last layer must be a Linear (the output, no activation after it)")
    linears = mods[0::2]
    if len(linears) < 2:
        raise ValueError("from_torch: at least one hidden layer (Linear, Tanh, Linear)")
    layers = [linears[0].in_features]
    for i, lin in enumerate(linears):
        if lin.bias is None:
            raise ValueError(f"from_torch: Linear layer {2 * i} has no bias (bias=False); pinntk layers have biases")
        if lin.in_features != layers[-1]:
            raise ValueError(
                f"from_torch: Linear layer {2 * i} takes {lin.in_features} inputs, the layer before gives {layers[-1]}"
            )
        layers.append(lin.out_features)
    if layers[-1] != 1:
        raise ValueError(f"from_torch: the final Linear has {layers[-1]} outputs; pinntk networks have one output")
    if not 1 <= layers[0] <= 3:
        raise ValueError(f"from_torch: input width {layers[0]}; pinntk problems have 1 to 3 coordinates")
    net = cls(layers, init="normal", seed=0)
    blocks = []
    with torch.no_grad():
        for lin in linears:
            blocks.append(lin.weight.detach().to("cpu", torch.float64).reshape(-1).numpy())
            blocks.append(lin.bias.detach().to("cpu", torch.float64).reshape(-1).numpy())
    theta = np.concatenate(blocks)
    assert theta.size == net.n_params
    net.theta = theta
    return net


def mlp_to_torch(net, dtype=None):
    """An ``nn.Sequential`` (Linear, Tanh, ..., Linear) with ``net``'s parameters, float64 unless dtype is given."""
    torch = _torch()
    nn = torch.nn
    dtype = dtype or torch.float64
    layers = list(net.layers)
    theta = np.asarray(net.theta)
    mods = []
    for l in range(1, len(layers)):
        din, dout = layers[l - 1], layers[l]
        off = net.weight_offset(l)
        lin = nn.Linear(din, dout, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(theta[off : off + dout * din].reshape(dout, din).copy()))
            lin.bias.copy_(torch.from_numpy(theta[off + dout * din : off + dout * din + dout].copy()))
        mods.append(lin)
        if l < len(layers) - 1:
            mods.append(nn.Tanh())
    return nn.Sequential(*mods)
