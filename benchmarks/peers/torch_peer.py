#!/usr/bin/env python3
"""PyTorch peer of pinntk: the same PINN residuals, loss, Adam step, Jacobian and NTK, written with torch.func
(nested jvp for u' and u'', vmap over points, grad over the flat parameters). See README.md in this folder."""

import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

import torch  # noqa: E402
from torch.func import grad, grad_and_value, jvp, vmap  # noqa: E402

# torch's own forward-AD decompositions still call torch.jit.script on first use of jvp; not ours to fix.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)

B1, B2, ADAM_EPS, LR = 0.9, 0.999, 1e-8, 1e-3


unflatten = C.unflatten  # views (W, b) per layer of the flat parameters


def u_point(params, x):
    """Network output at one scalar x (0-d tensor): tanh hidden layers, linear output."""
    h = x.reshape(1)
    for l, (W, b) in enumerate(params):
        h = torch.addmv(b, W, h)
        if l + 1 < len(params):
            h = torch.tanh(h)
    return h[0]


def r_point(params, x, a, b, g, f):
    """r = alpha u'' + beta u' + gamma u - f at one point; u' and u'' by forward-over-forward jvp in x."""
    one = torch.ones_like(x)
    (u, du), (_, d2u) = jvp(lambda y: jvp(lambda z: u_point(params, z), (y,), (one,)), (x,), (one,))
    return a * d2u + b * du + g * u - f


def flat(tensors, lead=()):
    """Concatenates per-layer tensors (W, b, W, b, ...) in pinntk's flat parameter order."""
    return torch.cat([t.reshape(*lead, -1) for t in tensors], dim=-1)


class Model:
    """Functional model of one (problem, network, points) on a device. Parameters are passed as the per-layer
    views of one flat tensor: differentiating w.r.t. the views (not the flat tensor) avoids one full-size slice
    backward per layer, and in-place updates of the flat tensor reach the views."""

    def __init__(self, layers, pts, dev, dtype):
        self.layers = layers
        t = lambda v: torch.as_tensor(v, dtype=dtype, device=dev)  # noqa: E731
        self.cols = tuple(t(pts[k]) for k in ("x", "alpha", "beta", "gamma", "f"))
        self.w = t(pts["w"])
        self.sqrt_w = self.w.sqrt()
        self.nc = pts["nc"]
        self._res = vmap(r_point, in_dims=(None, 0, 0, 0, 0, 0))
        self._rows = vmap(grad(r_point), in_dims=(None, 0, 0, 0, 0, 0))
        self._loss_and_grad = grad_and_value(self.loss)

    def params(self, theta):
        """Per-layer (W, b) views of the flat parameters."""
        return unflatten(theta, self.layers)

    def residuals(self, params):
        return self._res(params, *self.cols)

    def loss(self, params):
        r = self.residuals(params)
        return 0.5 * torch.sum(self.w * r * r)

    def loss_and_grad(self, theta):
        """(flat gradient, loss) at the flat parameters theta."""
        g, loss = self._loss_and_grad(self.params(theta))
        return flat([x for wb in g for x in wb]), loss

    def jacobian(self, theta):
        """J (N x P) at the flat parameters theta: per-point parameter gradients of the residuals."""
        g = self._rows(self.params(theta), *self.cols)
        return flat([x for wb in g for x in wb], lead=(self.cols[0].shape[0],))

    def ntk(self, J):
        """K_s = D^1/2 J J^T D^1/2."""
        Jh = self.sqrt_w[:, None] * J
        return Jh @ Jh.T


def adam_update(theta, g, m, v, t):
    """In place, pinntk's formula: theta -= lr (m/c1) / (sqrt(v/c2) + eps)."""
    m.mul_(B1).add_(g, alpha=1 - B1)
    v.mul_(B2).addcmul_(g, g, value=1 - B2)
    c1, c2 = 1 - B1**t, 1 - B2**t
    theta.sub_(LR * (m / c1) / ((v / c2).sqrt_() + ADAM_EPS))


def autograd_step_fn(layers, pts, dev, dtype, theta0):
    """The classic (DeepXDE-style) alternative: batched forward, u' and u'' by torch.autograd.grad with
    create_graph, loss.backward() and torch.optim.Adam on one flat leaf tensor."""
    theta = torch.nn.Parameter(torch.as_tensor(theta0, dtype=dtype, device=dev).clone())
    t = lambda v: torch.as_tensor(v, dtype=dtype, device=dev)  # noqa: E731
    x = t(pts["x"])[:, None].requires_grad_(True)
    a, b, g, f, w = (t(pts[k]) for k in ("alpha", "beta", "gamma", "f", "w"))
    kw = {"fused": True} if dev.type == "cuda" else {"foreach": True}
    opt = torch.optim.Adam([theta], lr=LR, betas=(B1, B2), eps=ADAM_EPS, **kw)

    def step():
        opt.zero_grad(set_to_none=True)
        h = x
        params = unflatten(theta, layers)
        for l, (W, bb) in enumerate(params):
            h = torch.addmm(bb, h, W.T)
            if l + 1 < len(params):
                h = torch.tanh(h)
        u = h[:, 0]
        du, = torch.autograd.grad(u.sum(), x, create_graph=True)
        d2u, = torch.autograd.grad(du.sum(), x, create_graph=True)
        r = a * d2u[:, 0] + b * du[:, 0] + g * u - f
        loss = 0.5 * torch.sum(w * r * r)
        loss.backward(inputs=[theta])  # not into x.grad
        opt.step()
        return loss
    return step


def main():
    args = C.parse_args("torch")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_peer: --device cuda but torch sees no CUDA device")
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.backends.cuda.matmul.allow_tf32 = False  # never TF32, also for --dtype float32
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn):
        """Seconds of one synchronized call of fn (CUDA events on the GPU)."""
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            return s.elapsed_time(e) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    ckpt = C.load_checkpoint(args.checkpoint) if args.checkpoint else None
    layers, theta_np = C.network("darcy-twoscale", args, ckpt)
    pts = C.points("darcy-twoscale")
    model = Model(layers, pts, dev, dtype)
    theta0 = torch.as_tensor(theta_np, dtype=dtype, device=dev)

    # Cross-check numbers at the initial (or loaded) network.
    g, loss = model.loss_and_grad(theta0)
    J = model.jacobian(theta0)
    Ks = model.ntk(J)
    ev_s = torch.linalg.eigvalsh(Ks)
    ev_uu = torch.linalg.eigvalsh(Ks[:model.nc, :model.nc])
    check = C.check_numbers(loss.item(), torch.linalg.vector_norm(g).item(), Ks.cpu().numpy(),
                            ev_uu.cpu().numpy(), ev_s.cpu().numpy(), pts["w"], model.nc)
    if args.check:
        C.print_check(check)
    meta = {"peer": "torch", "version": torch.__version__, "device": args.device,
            "device_name": torch.cuda.get_device_name(dev) if cuda else C.cpu_name(),
            "threads": torch.get_num_threads(), "dtype": args.dtype, "layers": layers, "n_params": C.n_params(layers),
            "checkpoint": args.checkpoint, "seed": args.seed}
    if args.check_only:
        C.report(meta, {}, check, args)
        return
    del J, Ks
    timings = {}

    # 1. Adam step, 4x40, Nc = 1024, in two (three with --compile) variants; "adam_step" is the fastest.
    tol = 1e-8 if dtype == torch.float64 else 1e-4

    def time_step(name, step):
        """Times step() after checking that its first call (at the initial network) gives the check loss."""
        l0 = step().detach().item()
        if abs(l0 - check["loss"]) > tol * abs(check["loss"]):
            print(f"torch_peer: WARNING: {name}: first loss {l0!r} != {check['loss']!r}", file=sys.stderr)
        timings[name] = C.stats(C.repeat(lambda: timed(step), args.repeats, args.budget, warmup=5), "us")

    # "func": torch.func gradient of the functional loss + hand-written Adam on the flat parameters.
    theta = theta0.clone()
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    state = {"t": 0}

    def func_step():
        gg, ll = model.loss_and_grad(theta)
        state["t"] += 1
        adam_update(theta, gg, m, v, state["t"])
        return ll
    time_step("adam_step_func", func_step)

    # "autograd": the classic way (autograd.grad with create_graph, backward, torch.optim.Adam).
    time_step("adam_step_autograd", autograd_step_fn(layers, pts, dev, dtype, theta_np))

    if args.compile:  # optional: torch.compile of the whole "func" step (minutes of compilation on a CPU)
        try:
            theta_c = theta0.clone()
            mc, vc = torch.zeros_like(theta_c), torch.zeros_like(theta_c)

            @torch.compile
            def compiled_step(th, mm, vv, c1, c2):
                gg, ll = model.loss_and_grad(th)
                mm.mul_(B1).add_(gg, alpha=1 - B1)
                vv.mul_(B2).addcmul_(gg, gg, value=1 - B2)
                th.sub_(LR * (mm / c1) / ((vv / c2).sqrt() + ADAM_EPS))
                return ll
            st = {"t": 0}

            def cstep():  # bias corrections as tensors, so that the step count does not recompile
                st["t"] += 1
                c1 = torch.tensor(1 - B1 ** st["t"], dtype=dtype, device=dev)
                c2 = torch.tensor(1 - B2 ** st["t"], dtype=dtype, device=dev)
                return compiled_step(theta_c, mc, vc, c1, c2)
            time_step("adam_step_compiled", cstep)
        except Exception as e:  # noqa: BLE001
            print(f"torch_peer: torch.compile step failed, skipped: {type(e).__name__}: {e}", file=sys.stderr)
    best = min((k for k in timings if k.startswith("adam_step_")), key=lambda k: timings[k]["median"])
    timings["adam_step"] = dict(timings[best], variant=best[len("adam_step_"):])

    # 1b. The "func" step for --ensemble B networks at once: torch.func.vmap over the networks' flat parameters
    # (of the loss that is itself vmapped over the points), Adam on the B x P tensors.
    if args.ensemble > 0:
        nb = args.ensemble
        thetas = torch.as_tensor(C.ensemble_params(layers, theta_np, nb, args.seed), dtype=dtype, device=dev)
        own = [model.loss(model.params(thetas[b])).item() for b in range(nb)]
        ens_grad = vmap(grad_and_value(lambda th: model.loss(unflatten(th, layers))))
        me, ve = torch.zeros_like(thetas), torch.zeros_like(thetas)
        est = {"t": 0, "first": None}

        def ensemble_step():
            gg, ll = ens_grad(thetas)
            est["t"] += 1
            adam_update(thetas, gg, me, ve, est["t"])
            if est["first"] is None:
                est["first"] = ll.detach().cpu().tolist()
            return ll
        ensemble_step()
        C.check_member_losses("torch_peer", est["first"], own, tol)
        timings[f"adam_step_ensemble{nb}"] = C.stats(
            C.repeat(lambda: timed(ensemble_step), args.repeats, args.budget, warmup=5), "us")

    # 2. Full residual Jacobian at several Nc.
    for nc in C.jacobian_sizes(args, args.device):
        mj = Model(layers, C.points("darcy-twoscale", nc), dev, dtype)
        timings[f"jacobian_nc{nc}"] = C.stats(C.repeat(lambda: timed(lambda: mj.jacobian(theta0)),
                                                       args.heavy_repeats, args.budget), "ms")
        del mj
        if cuda:
            torch.cuda.empty_cache()

    # 3. K_s = Jh Jh^T and its eigenvalues, Nc = 1024.
    Jh = model.sqrt_w[:, None] * model.jacobian(theta0)
    timings["ntk"] = C.stats(C.repeat(lambda: timed(lambda: Jh @ Jh.T), args.heavy_repeats, args.budget), "ms")
    Ks = Jh @ Jh.T
    timings["eigh"] = C.stats(C.repeat(lambda: timed(lambda: torch.linalg.eigvalsh(Ks)), args.heavy_repeats,
                                       args.budget), "ms")

    # 4. darcy-ntk, layers 1,50,1, Nc = 256: J + K_s + eigvalsh together.
    l2, th2 = C.network("darcy-ntk", args, ckpt)
    m2 = Model(l2, C.points("darcy-ntk"), dev, dtype)
    th2 = torch.as_tensor(th2, dtype=dtype, device=dev)
    timings["ntk_1x50"] = C.stats(C.repeat(lambda: timed(lambda: torch.linalg.eigvalsh(m2.ntk(m2.jacobian(th2)))),
                                           args.heavy_repeats, args.budget), "ms")
    sync()
    C.report(meta, timings, check, args)


if __name__ == "__main__":
    main()
