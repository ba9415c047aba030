#!/usr/bin/env python3
"""JAX peer of pinntk: the same PINN residuals, loss, Adam step, Jacobian and NTK, jit-compiled (nested jvp for
u' and u'', vmap over points, grad over the flat parameters). See README.md in this folder."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

B1, B2, ADAM_EPS, LR = 0.9, 0.999, 1e-8, 1e-3


# ---- model: flat parameters, per-point functions (vmapped over points by the callers) ----
# jax is imported inside: the callers configure it first (x64, matmul precision, platform). ntk_scale.py uses them too.


unflatten = C.unflatten  # (W, b) per layer of the flat parameters


def u_point(params, x):
    import jax.numpy as jnp

    h = jnp.reshape(x, (1,))
    for l, (W, b) in enumerate(params):
        h = W @ h + b
        if l + 1 < len(params):
            h = jnp.tanh(h)
    return h[0]


def r_point(params, x, a, b, g, f):
    """r = alpha u'' + beta u' + gamma u - f; u' and u'' by forward-over-forward jvp in x."""
    import jax
    import jax.numpy as jnp

    one = jnp.ones_like(x)
    (u, du), (_, d2u) = jax.jvp(lambda y: jax.jvp(lambda z: u_point(params, z), (y,), (one,)), (x,), (one,))
    return a * d2u + b * du + g * u - f


def main():
    args = C.parse_args("jax")
    import jax  # imported after parsing so that --help works fast; configured before any computation

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")  # never TF32 / bf16 passes
    if args.device != "auto":
        jax.config.update("jax_platforms", args.device)
    import jax.numpy as jnp
    import numpy as np

    backend = jax.default_backend()
    if args.device == "auto":
        args.device = "cuda" if backend == "gpu" else "cpu"
    cuda = args.device == "cuda"
    dtype = jnp.dtype(args.dtype)

    def make(layers):
        """Jitted loss-and-grad, Jacobian and NTK for one network shape; cols = (x, alpha, beta, gamma, f)."""
        res = jax.vmap(r_point, in_axes=(None, 0, 0, 0, 0, 0))

        def loss(theta, cols, w):
            r = res(unflatten(theta, layers), *cols)
            return 0.5 * jnp.sum(w * r * r)

        rows = jax.vmap(jax.grad(lambda th, *c: r_point(unflatten(th, layers), *c)), in_axes=(None, 0, 0, 0, 0, 0))

        def jacobian(theta, cols):
            return rows(theta, *cols)

        def ntk(J, w):
            Jh = jnp.sqrt(w)[:, None] * J
            return Jh @ Jh.T

        def step(theta, m, v, t, cols, w):
            """One Adam step (pinntk's formula); t is the step count before this step."""
            l, g = jax.value_and_grad(loss)(theta, cols, w)
            t = t + 1
            m = B1 * m + (1 - B1) * g
            v = B2 * v + (1 - B2) * g * g
            theta = theta - LR * (m / (1 - B1**t)) / (jnp.sqrt(v / (1 - B2**t)) + ADAM_EPS)
            return theta, m, v, t, l

        return dict(
            loss=jax.jit(loss),
            loss_and_grad=jax.jit(jax.value_and_grad(loss)),
            jacobian=jax.jit(jacobian),
            ntk=jax.jit(ntk),
            step=jax.jit(step, donate_argnums=(0, 1, 2) if cuda else ()),
            # B networks at once: the step vmapped over their parameters and moments (points and step count shared)
            ensemble_step=jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None, None, None), out_axes=(0, 0, 0, None, 0)),
                                  donate_argnums=(0, 1, 2) if cuda else ()),
            ntk_eig=jax.jit(lambda th, cols, w: jnp.linalg.eigvalsh(ntk(jacobian(th, cols), w))),
        )

    def device_points(pts):
        t = lambda k: jnp.asarray(pts[k], dtype=dtype)  # noqa: E731
        return tuple(t(k) for k in ("x", "alpha", "beta", "gamma", "f")), t("w")

    def timed(fn):
        """Seconds of one call of fn, waiting for its results."""
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - t0

    ckpt = C.load_checkpoint(args.checkpoint) if args.checkpoint else None
    layers, theta_np = C.network("darcy-twoscale", args, ckpt)
    pts = C.points("darcy-twoscale")
    f = make(layers)
    cols, w = device_points(pts)
    theta0 = jnp.asarray(theta_np, dtype=dtype)
    eigvalsh = jax.jit(jnp.linalg.eigvalsh)

    # Cross-check numbers at the initial (or loaded) network.
    loss, g = f["loss_and_grad"](theta0, cols, w)
    J = f["jacobian"](theta0, cols)
    Ks = f["ntk"](J, w)
    nc = pts["nc"]
    check = C.check_numbers(float(loss), float(jnp.linalg.norm(g)), np.asarray(Ks),
                            np.asarray(eigvalsh(Ks[:nc, :nc])), np.asarray(eigvalsh(Ks)), pts["w"], nc)
    if args.check:
        C.print_check(check)
    dev0 = jax.devices()[0]
    meta = {"peer": "jax", "version": jax.__version__, "device": args.device,
            "device_name": dev0.device_kind if cuda else C.cpu_name(), "dtype": args.dtype, "layers": layers,
            "n_params": C.n_params(layers), "checkpoint": args.checkpoint, "seed": args.seed}
    if args.check_only:
        C.report(meta, {}, check, args)
        return
    del J
    timings = {}

    # 1. Adam step, 4x40, Nc = 1024: one jitted (params, m, v, t) -> (params, m, v, t, loss).
    st = [theta0 + 0, jnp.zeros_like(theta0), jnp.zeros_like(theta0), jnp.zeros((), dtype)]
    l0 = f["step"](*[s + 0 for s in st], cols, w)[4]  # compile; at the initial network, so loss = check loss
    if abs(float(l0) - check["loss"]) > (1e-8 if args.dtype == "float64" else 1e-4) * abs(check["loss"]):
        print(f"jax_peer: WARNING: step loss {float(l0)!r} != {check['loss']!r}", file=sys.stderr)

    def one_step():
        out = f["step"](*st, cols, w)
        st[:] = out[:4]
        return out
    timings["adam_step"] = C.stats(C.repeat(lambda: timed(one_step), args.repeats, args.budget, warmup=5), "us")

    # 1b. The same step for --ensemble B networks at once (pinntk's batched sessions, `train --ensemble B`).
    if args.ensemble > 0:
        nb = args.ensemble
        thetas = jnp.asarray(C.ensemble_params(layers, theta_np, nb, args.seed), dtype=dtype)
        own = [float(f["loss"](thetas[b], cols, w)) for b in range(nb)]
        est = [thetas + 0, jnp.zeros_like(thetas), jnp.zeros_like(thetas), jnp.zeros((), dtype)]
        lb = f["ensemble_step"](*[s + 0 for s in est], cols, w)[4]  # compile; first losses = the networks' own
        C.check_member_losses("jax_peer", [float(x) for x in lb], own, 1e-8 if args.dtype == "float64" else 1e-4)

        def ensemble_step():
            out = f["ensemble_step"](*est, cols, w)
            est[:] = out[:4]
            return out
        timings[f"adam_step_ensemble{nb}"] = C.stats(
            C.repeat(lambda: timed(ensemble_step), args.repeats, args.budget, warmup=5), "us")

    # 2. Full residual Jacobian at several Nc (each size compiles once during the warm-up).
    for n in C.jacobian_sizes(args, args.device):
        cj, _ = device_points(C.points("darcy-twoscale", n))
        timings[f"jacobian_nc{n}"] = C.stats(C.repeat(lambda: timed(lambda: f["jacobian"](theta0, cj)),
                                                      args.heavy_repeats, args.budget), "ms")
        del cj

    # 3. K_s = Jh Jh^T and its eigenvalues, Nc = 1024.
    Jh = jnp.sqrt(w)[:, None] * f["jacobian"](theta0, cols)
    gram = jax.jit(lambda A: A @ A.T)
    timings["ntk"] = C.stats(C.repeat(lambda: timed(lambda: gram(Jh)), args.heavy_repeats, args.budget), "ms")
    timings["eigh"] = C.stats(C.repeat(lambda: timed(lambda: eigvalsh(Ks)), args.heavy_repeats, args.budget), "ms")

    # 4. darcy-ntk, layers 1,50,1, Nc = 256: J + K_s + eigvalsh together, one jitted function.
    l2, th2 = C.network("darcy-ntk", args, ckpt)
    f2 = make(l2)
    c2, w2 = device_points(C.points("darcy-ntk"))
    th2 = jnp.asarray(th2, dtype=dtype)
    timings["ntk_1x50"] = C.stats(C.repeat(lambda: timed(lambda: f2["ntk_eig"](th2, c2, w2)), args.heavy_repeats,
                                           args.budget), "ms")
    C.report(meta, timings, check, args)


if __name__ == "__main__":
    main()
