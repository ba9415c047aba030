#!/usr/bin/env python3
"""The NTK at scale: what PyTorch (torch.func) and JAX do when asked for pinntk's NTK analysis at growing N.

For darcy-twoscale with the 4x40 tanh network (layers 1,40,40,40,40,1, P = 5041), N = Nc + 2 rows, fp64:
  J (N x P) by the library's idiomatic per-point Jacobian (torch: vmap(jacrev(r_point)); JAX: jit(vmap(grad))),
  then, when N > P, the P x P Grams G_u = J_u^T J_u, G_b = J_b^T J_b and G = J^T D J = w_u G_u + w_b G_b (same
  nonzero eigenvalues as K_s = D^1/2 J J^T D^1/2), or, when N <= P, K_s itself (N x N);
  then ||K_s||_F, ||K||_F of the non-symmetric K = J J^T D (pinntk's frobenius_K; from the Grams when N > P:
  ||K||_F^2 = <J^T J, J^T D^2 J>_F), and the top 20 eigenvalues by eigvalsh.
Variants (--lib): torch (idiomatic: the whole J), torch-chunked (what a careful user has to write: J by chunks of
rows, Grams accumulated with addmm, each chunk dropped), jax (one jax.jit of the whole analysis, x64; when N > P,
G = Jh^T Jh with Jh = D^1/2 J, and G_b = J_b^T J_b from the 2 boundary rows recomputed, G_u = (G - w_b G_b)/w_u),
jax-split (the same with G_u and G_b from row slices of J, as torch does: XLA plans about 11 N x P buffers for it).

Each (library, size) runs in its own subprocess under a memory cap (RLIMIT_DATA: private writable memory, i.e.
heap and anonymous mappings; RLIMIT_AS would also count the GBs of shared libraries torch and jaxlib map) and a
wall-clock timeout; the parent reads the child's peak RSS from os.wait4 (ru_maxrss). pinntk itself is run the same
way (`--pinntk BIN`). See NTK_SCALE.md in this folder for the results and the exact commands.

  python3 ntk_scale.py sweep --libs pinntk-chunked,pinntk-auto,torch,torch-chunked,jax --pinntk build/pinntk \\
      --checkpoint CK/checkpoint.json --sizes 1024,4096,16384,65536,131072 --cap 8G --timeout 180 --out DIR
  python3 ntk_scale.py one --lib torch --nc 4096 --checkpoint CK/checkpoint.json   # one child run, JSON on stdout

On a GPU (--device cuda, on both sweep and one): pinntk runs with --device cuda, torch puts the model and every tensor
on torch.device("cuda") (fp64, torch.cuda.synchronize() before each clock reading), JAX runs on its CUDA platform
(x64; block_until_ready before the clock stops). Each child then also reports the device's name and its peak
memory: torch's torch.cuda.max_memory_allocated() (after reset_peak_memory_stats() at the start), JAX's
memory_stats()['peak_bytes_in_use'] (null where the device gives no statistics); pinntk reports its own estimate.
Running out of device memory (torch.cuda.OutOfMemoryError, JAX's RESOURCE_EXHAUSTED) is reported as
"device out of memory", with the peak reached, not as a traceback. RLIMIT_DATA can break CUDA initialisation, so
under --device cuda the cap is not applied (one warning line when --cap is not ''); the host's peak RSS is still
measured.

  python3 ntk_scale.py sweep --device cuda --libs pinntk-chunked,torch-chunked,jax --pinntk build-sm90/pinntk \\
      --sizes 65536,262144,1048576 --cap '' --timeout 100 --out DIR
"""

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common as C  # noqa: E402
import numpy as np  # noqa: E402

PROBLEM = "darcy-twoscale"
TOPK = 20


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s[:-1] if s[-1:] in "KMG" else s) * mult)


def network(checkpoint, seed):
    args = argparse.Namespace(seed=seed)
    ck = C.load_checkpoint(checkpoint) if checkpoint else None
    return C.network(PROBLEM, args, ck)


# ------------------------------------------------------------------------------------------------------------ torch

def torch_device(a):
    """torch.device of --device; on cuda, checks that torch sees a device and starts its peak-memory count."""
    import torch
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("ntk_scale: --device cuda but torch sees no CUDA device")
        torch.cuda.reset_peak_memory_stats()  # the peak from here on: inputs, J or its chunks, Grams, eigvalsh
    return torch.device(a.device)


def torch_device_info(dev):
    """Device name, peak and total memory of a CUDA run (read after the analysis, or after it ran out of memory)."""
    import torch
    return dict(device="cuda", device_name=torch.cuda.get_device_name(dev),
                peak_device_bytes=torch.cuda.max_memory_allocated(dev),
                device_total_bytes=torch.cuda.get_device_properties(dev).total_memory)


def run_torch(a, chunked):
    import torch
    from torch.func import jacrev, vmap
    import torch_peer as T

    torch.set_num_threads(a.threads)
    dev = torch_device(a)
    cuda = dev.type == "cuda"

    def clock():
        """time.perf_counter() once the device has finished the work queued so far (CUDA runs asynchronously)."""
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    dt = torch.float64
    layers, theta_np = network(a.checkpoint, a.seed)
    pts = C.points(PROBLEM, a.nc)
    nc, N = pts["nc"], len(pts["x"])
    P = C.n_params(layers)
    theta = torch.as_tensor(theta_np, dtype=dt, device=dev)
    params = T.unflatten(theta, layers)
    cols = tuple(torch.as_tensor(pts[k], dtype=dt, device=dev) for k in ("x", "alpha", "beta", "gamma", "f"))
    wu, wb = float(pts["w"][0]), float(pts["w"][-1])
    rows = vmap(jacrev(T.r_point), in_dims=(None, 0, 0, 0, 0, 0))  # per point: d r / d (W, b) of every layer

    def jac(lo, hi):
        g = rows(params, *(c[lo:hi] for c in cols))
        return T.flat([x for wb_ in g for x in wb_], lead=(hi - lo,))

    t = {}
    t0 = clock()
    with torch.no_grad():
        if N <= P:
            if chunked:
                raise SystemExit("torch-chunked is for N > P only")
            J = jac(0, N)
            t["jacobian_s"] = clock() - t0
            s = torch.as_tensor(pts["w"], dtype=dt, device=dev).sqrt()
            Jh = s[:, None] * J
            Ks = Jh @ Jh.T
            frob_s = torch.linalg.matrix_norm(Ks).item()
            Kn = Ks / s[:, None] * s[None, :]  # K = J J^T D = D^-1/2 K_s D^1/2
            frob_k = torch.linalg.matrix_norm(Kn).item()
            del Kn
            t["ntk_s"] = clock() - t0 - t["jacobian_s"]
            ev = torch.linalg.eigvalsh(Ks)
        else:
            if chunked:
                Gu = torch.zeros(P, P, dtype=dt, device=dev)
                for lo in range(0, nc, a.chunk):
                    Jc = jac(lo, min(nc, lo + a.chunk))
                    Gu.addmm_(Jc.T, Jc)  # Gu += Jc^T Jc
                    del Jc
                Jb = jac(nc, N)
                t["jacobian_s"] = float("nan")  # interleaved with the Grams
            else:
                J = jac(0, N)
                t["jacobian_s"] = clock() - t0
                Ju, Jb = J[:nc], J[nc:]
                Gu = Ju.T @ Ju
            Gb = Jb.T @ Jb
            G = wu * Gu + wb * Gb  # J^T D J
            frob_s = torch.linalg.matrix_norm(G).item()
            frob_k = math.sqrt(torch.sum((Gu + Gb) * (wu * wu * Gu + wb * wb * Gb)).item())
            del Gu, Gb
            t["ntk_s"] = clock() - t0 - (0.0 if chunked else t["jacobian_s"])
            ev = torch.linalg.eigvalsh(G)
    t["compute_s"] = clock() - t0
    t["eig_s"] = t["compute_s"] - t["ntk_s"] - (0.0 if (chunked and N > P) else t["jacobian_s"])
    top = torch.sort(ev, descending=True).values[:TOPK].tolist()
    return dict(version=torch.__version__, threads=torch.get_num_threads(), frobenius_Ks=frob_s,
                frobenius_K=frob_k, eig_top=top, **t, **(torch_device_info(dev) if cuda else {}))


# -------------------------------------------------------------------------------------------------------------- jax

def jax_device(a):
    """Configures JAX (x64, highest matmul precision, the platform of --device) and returns its first device."""
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
    jax.config.update("jax_platforms", a.device)  # "cpu" or "cuda"; set explicitly, whatever JAX_PLATFORMS says
    if a.device == "cpu":
        return jax.devices()[0]
    try:
        dev = jax.devices()[0]
    except Exception as e:  # jaxlib without its CUDA plugin, or no device: an AssertionError or a RuntimeError
        detail = " ".join(str(e).split())[:200]
        raise SystemExit("ntk_scale: --device cuda but jax sees no CUDA device"
                         + (f" ({type(e).__name__}: {detail})" if detail else "")) from None
    if dev.platform == "cpu":  # a CUDA device says "gpu"
        raise SystemExit("ntk_scale: --device cuda but jax's first device is the CPU")
    return dev


def jax_device_info(dev):
    """Device kind and peak memory of a CUDA run; peak_bytes_in_use is the process's peak since JAX started (the
    allocator has no reset), bytes_limit what JAX lets itself use (XLA_PYTHON_CLIENT_MEM_FRACTION, 75% by default)."""
    st = dev.memory_stats() or {}
    return dict(device="cuda", device_name=dev.device_kind, peak_device_bytes=st.get("peak_bytes_in_use"),
                device_bytes_limit=st.get("bytes_limit"))


def run_jax(a, split=False):
    import jax
    dev = jax_device(a)
    import jax.numpy as jnp
    import jax_peer as JP

    layers, theta_np = network(a.checkpoint, a.seed)
    pts = C.points(PROBLEM, a.nc)
    nc, N = pts["nc"], len(pts["x"])
    P = C.n_params(layers)
    wu, wb = float(pts["w"][0]), float(pts["w"][-1])

    def r_point(theta, x, al, be, ga, f):  # jax_peer.py's residual of one point, as a function of the flat theta
        return JP.r_point(JP.unflatten(theta, layers), x, al, be, ga, f)

    rows = jax.vmap(jax.grad(r_point), in_axes=(None, 0, 0, 0, 0, 0))

    @jax.jit
    def analysis(theta, cols, w):
        J = rows(theta, *cols)
        if N <= P:
            s = jnp.sqrt(w)
            Jh = s[:, None] * J
            Ks = Jh @ Jh.T
            frob_s = jnp.linalg.norm(Ks)
            frob_k = jnp.linalg.norm(Ks / s[:, None] * s[None, :])
            ev = jnp.linalg.eigvalsh(Ks)
        elif split:  # jax-split: the Grams of the row blocks of J; XLA then plans ~11 N x P buffers
            Ju, Jb = J[:nc], J[nc:]
            Gu, Gb = Ju.T @ Ju, Jb.T @ Jb
            G = wu * Gu + wb * Gb
            frob_s = jnp.linalg.norm(G)
            frob_k = jnp.sqrt(jnp.sum((Gu + Gb) * (wu * wu * Gu + wb * wb * Gb)))
            ev = jnp.linalg.eigvalsh(G)
        else:  # jax: G = Jh^T Jh with Jh = D^1/2 J, which XLA fuses; G_b from the 2 boundary rows again
            Jh = jnp.sqrt(w)[:, None] * J
            G = Jh.T @ Jh
            Jb = rows(theta, *(c[nc:] for c in cols))
            Gb = Jb.T @ Jb
            Gu = (G - wb * Gb) / wu
            frob_s = jnp.linalg.norm(G)
            frob_k = jnp.sqrt(jnp.sum((Gu + Gb) * (wu * wu * Gu + wb * wb * Gb)))
            ev = jnp.linalg.eigvalsh(G)
        return frob_s, frob_k, jnp.sort(ev)[::-1][:TOPK]

    cols = tuple(jnp.asarray(pts[k]) for k in ("x", "alpha", "beta", "gamma", "f"))
    w = jnp.asarray(pts["w"])
    theta = jnp.asarray(theta_np)
    jax.block_until_ready((cols, w, theta))  # the copies to the device are not timed
    t0 = time.perf_counter()
    compiled = analysis.lower(theta, cols, w).compile()
    t_comp = time.perf_counter() - t0
    fs, fk, top = jax.block_until_ready(compiled(theta, cols, w))
    t1 = time.perf_counter()
    return dict(version=jax.__version__, frobenius_Ks=float(fs), frobenius_K=float(fk),
                eig_top=[float(v) for v in np.asarray(top)], compile_s=t_comp, run_s=t1 - t0 - t_comp,
                compute_s=t1 - t0, **(jax_device_info(dev) if a.device == "cuda" else {}))


def device_oom(e):
    """True for running out of device memory: torch.cuda.OutOfMemoryError (the caching allocator), a RuntimeError
    from cuBLAS/cuSOLVER's own allocations, or JAX's XlaRuntimeError (JaxRuntimeError) RESOURCE_EXHAUSTED."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    names = {c.__name__ for c in type(e).__mro__}
    msg = str(e)
    if names & {"XlaRuntimeError", "JaxRuntimeError"}:
        return "RESOURCE_EXHAUSTED" in msg
    return isinstance(e, RuntimeError) and any(x in msg for x in ("CUDA out of memory", "CUDA error: out of memory",
                                                                   "ALLOC_FAILED"))


def run_reporting_device_oom(a, run, tag):
    """A child's run(): its result, or, when it runs out of device memory on --device cuda, a JSON line with
    error = "device out of memory" (and the peak reached), one line on stderr tagged `tag`, and exit status 3."""
    try:
        return run()
    except Exception as e:
        if a.device != "cuda" or not device_oom(e):
            raise
        detail = " ".join(str(e).split())[:300]
        r = dict(error="device out of memory", error_type=type(e).__name__, error_detail=detail)
        try:
            if a.lib.startswith("jax"):
                import jax
                r.update(jax_device_info(jax.devices()[0]))
            else:
                import torch
                r.update(torch_device_info(torch.device("cuda")))
        except Exception as e2:  # a broken CUDA context: the failure is still reported
            r["device_info_error"] = f"{type(e2).__name__}: {' '.join(str(e2).split())[:200]}"
        r.update(lib=a.lib, nc=a.nc, N=a.nc + 2)
        print(json.dumps(r), flush=True)
        print(f"{tag}: {a.lib} Nc={a.nc}: device out of memory ({type(e).__name__}: {detail[:160]})",
              file=sys.stderr, flush=True)
        sys.exit(3)


def one(a):
    """One child run: one JSON line on stdout (run_reporting_device_oom on a GPU)."""
    jax_lib = a.lib.startswith("jax")
    r = run_reporting_device_oom(
        a, lambda: run_jax(a, a.lib == "jax-split") if jax_lib else run_torch(a, a.lib == "torch-chunked"),
        "ntk_scale")
    r.update(lib=a.lib, nc=a.nc, N=a.nc + 2)
    print(json.dumps(r), flush=True)


# ------------------------------------------------------------------------------------------------------ the parent

def child_limits(cap):
    def fn():
        if cap:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        os.setsid()
    return fn


def run_child(cmd, cap, timeout, env=None):
    """Runs cmd under the cap; returns (rc or None on timeout, wall s, peak RSS bytes, stdout, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=child_limits(cap),
                         env=env, text=True)
    import threading
    out = {}

    def rd(name, f):
        out[name] = f.read()
    th = [threading.Thread(target=rd, args=(n, f)) for n, f in (("o", p.stdout), ("e", p.stderr))]
    for x in th:
        x.start()
    rc, timed_out = None, False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            os.killpg(p.pid, signal.SIGKILL)
            pid, status, ru = os.wait4(p.pid, 0)
            timed_out = True
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for x in th:
        x.join()
    rc = None if timed_out else p.returncode
    return rc, wall, ru.ru_maxrss * 1024, out.get("o", ""), out.get("e", "")


def child_json(out):
    """The last line of a child's stdout as a dict ({} when it is not a JSON object)."""
    try:
        r = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {}
    return r if isinstance(r, dict) else {}


def run_recorded(rec, cmd, cap, a, env, peer):
    """Runs a sweep's child (run_child under cap and a.timeout) and records it in rec: the command, wall time, peak
    RSS, return code and status (timeout, oom, error or ok; stderr's tail on a failure, and a peer child's own JSON
    line on a GPU). Returns (stdout, stderr, why the library's larger sizes are skipped, or None)."""
    rec["cmd"] = " ".join(cmd)
    rc, wall, rss, so, se = run_child(cmd, cap, a.timeout, env)
    rec.update(wall_s=wall, peak_rss_bytes=rss, rc=rc)
    nc = rec["nc"]
    if rc is None:
        rec["status"] = "timeout"
        return so, se, f"timeout ({a.timeout:.0f} s) at Nc={nc}"
    if rc != 0:
        rec["status"] = "oom" if (oom_text(se) or rc in (-9, 137, 134, -6)) else "error"
        rec["stderr_tail"] = se[-600:]
        if a.device == "cuda" and peer:
            # "device out of memory" and the peak reached, where the child says so
            rec.update({k: v for k, v in child_json(so).items() if k not in rec})
        return so, se, f"{rec['status']} at Nc={nc}"
    rec["status"] = "ok"
    return so, se, f"exceeding {a.timeout_soft:.0f} s at Nc={nc}" if wall > a.timeout_soft else None


def oom_text(err):
    e = err.lower()
    return any(s in e for s in ("can't allocate memory", "memoryerror", "out of memory", "resource_exhausted",
                                "bad_alloc", "cannot allocate", "failed to allocate", "std::bad_alloc",
                                "memory limit", "estimated"))


def sweep(a):
    sizes = [int(s) for s in a.sizes.split(",")]
    libs = a.libs.split(",")
    os.makedirs(a.out, exist_ok=True)
    cap_asked = cap = parse_size(a.cap) if a.cap else 0
    cuda = a.device == "cuda"
    if cuda and cap:
        print(f"ntk_scale: warning: --cap {a.cap} is not applied with --device cuda (RLIMIT_DATA can break CUDA "
              "initialisation); the children run uncapped", file=sys.stderr, flush=True)
        cap = 0
    results = []
    resf = os.path.join(a.out, "results.jsonl")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads),
               MKL_NUM_THREADS=str(a.threads))
    for lib in libs:
        failed = None
        for nc in sizes:
            N = nc + 2
            rec = dict(lib=lib, nc=nc, N=N, cap_bytes=cap, timeout_s=a.timeout)
            if cuda:
                rec["device"] = "cuda"
            if failed:
                rec.update(status="skipped", note=f"skipped after {failed}")
                results.append(rec)
                print(json.dumps(rec), flush=True)
                with open(resf, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                continue
            if lib.startswith("pinntk"):
                path = lib.split("-", 1)[1] if "-" in lib else "auto"
                od = os.path.join(a.out, f"{lib}_nc{nc}")
                cmd = [a.pinntk, "ntk", "--problem", PROBLEM, "--nc", str(nc), "--device", a.device, "--threads",
                       str(a.threads), "--ntk-path", path, "--out", od]
                if a.checkpoint:
                    cmd += ["--checkpoint", a.checkpoint]
                if cap_asked and a.pinntk_memory_limit:
                    cmd += ["--memory-limit", a.cap]
                if path == "chunked" and N <= C.n_params(C.PROBLEMS[PROBLEM]["layers"]):
                    cmd[cmd.index("chunked")] = "auto"  # chunked is for N > P only; auto takes exact here
                    rec["note"] = "N <= P: chunked path does not apply; ran --ntk-path auto (exact)"
            else:
                cmd = [sys.executable, os.path.abspath(__file__), "one", "--lib", lib, "--nc", str(nc),
                       "--threads", str(a.threads), "--chunk", str(a.chunk)]
                if cuda:
                    cmd += ["--device", "cuda"]
                if a.checkpoint:
                    cmd += ["--checkpoint", a.checkpoint]
            if lib == "torch-chunked" and N <= C.n_params(C.PROBLEMS[PROBLEM]["layers"]):
                rec.update(status="n/a", note="N <= P: nothing to chunk (same as torch)")
                results.append(rec)
                print(json.dumps(rec), flush=True)
                with open(resf, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                continue
            so, se, failed = run_recorded(rec, cmd, cap, a, env, not lib.startswith("pinntk"))
            if rec["status"] == "ok":
                if lib.startswith("pinntk"):
                    s = json.load(open(os.path.join(od, "summary.json")))
                    spec = np.load(os.path.join(od, "spectrum_K.npy"))
                    rec.update(frobenius_K=s["ntk"]["frobenius_K"],
                               frobenius_Ks=float(np.sqrt(np.sum(spec * spec))),
                               eig_top=[float(v) for v in spec[:TOPK]], path=s["ntk"]["path"],
                               chunk_rows=s["ntk"]["chunk_rows"], compute_s=s["wall_time_s"],
                               peak_memory_bytes_estimate=s["ntk"]["peak_memory_bytes_estimate"],
                               stderr_tail=se[-400:])
                    if cuda:
                        rec["pinntk_device"] = s.get("device")  # the backend pinntk says it ran on
                else:
                    rec.update(json.loads(so.strip().splitlines()[-1]))
            results.append(rec)
            print(json.dumps(rec), flush=True)
            with open(resf, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
    return results


def gib(b):
    return "n/a" if b is None else f"{b / 2**30:.2f} GiB"


def fmt_rec(r):
    st = r.get("status")
    if r.get("device") == "cuda":  # analysis time as the child measured it, peak device memory, host peak RSS
        if st == "ok":
            if r["lib"].startswith("pinntk"):
                dev = f"dev {gib(r.get('peak_memory_bytes_estimate'))} (est.)"
            else:
                dev = f"dev {gib(r.get('peak_device_bytes'))}"
            return f"{r['wall_s']:.1f} s (analysis {r['compute_s']:.2f} s) / {dev} / host {gib(r['peak_rss_bytes'])}"
        if st == "oom" and r.get("error") == "device out of memory":
            return f"**device out of memory** ({r['wall_s']:.0f} s, dev peak {gib(r.get('peak_device_bytes'))})"
    if st == "ok":
        return f"{r['wall_s']:.1f} s / {r['peak_rss_bytes'] / 2**30:.2f} GiB"
    if st == "oom":
        return f"**out of memory** ({r['wall_s']:.0f} s, peak {r['peak_rss_bytes'] / 2**30:.2f} GiB)"
    if st == "timeout":
        return f"**> {r['timeout_s']:.0f} s** (killed; peak {r['peak_rss_bytes'] / 2**30:.2f} GiB)"
    if st == "skipped":
        return "skipped"
    if st == "n/a":
        return "n/a (N <= P)"
    return f"error rc={r.get('rc')}"


def table(a):
    recs = {}
    for path in a.results:
        for line in open(path):
            r = json.loads(line)
            recs[(r["lib"], r["nc"])] = r
    libs = [l for l in ["pinntk-chunked", "pinntk-auto", "torch", "torch-chunked", "jax", "jax-split"]
            if any(k[0] == l for k in recs)]
    sizes = sorted({k[1] for k in recs})
    if any(r.get("device") == "cuda" for r in recs.values()):
        names = sorted({r["device_name"] for r in recs.values() if r.get("device_name")})
        print(f"Device: cuda ({', '.join(names) or 'name not reported'}); time / peak device memory / host peak RSS")
        print()
    print("| Nc (N = Nc + 2) | " + " | ".join(libs) + " |")
    print("|---|" + "---|" * len(libs))
    for nc in sizes:
        print(f"| 2^{int(math.log2(nc))} = {nc} | " + " | ".join(fmt_rec(recs[(l, nc)]) if (l, nc) in recs else "-"
                                                    for l in libs) + " |")
    print()
    print("| Nc | peer | ||K||_F (non-sym.) | rel. diff vs pinntk | ||K_s||_F rel. diff | max |dlambda_i|/lambda_1, top 20 |")
    print("|---|---|---|---|---|---|")
    for nc in sizes:
        ref = recs.get(("pinntk-chunked", nc)) or recs.get(("pinntk-auto", nc))
        if not ref or ref.get("status") != "ok":
            continue
        for l in libs:
            r = recs.get((l, nc))
            if not r or r.get("status") != "ok" or r is ref:
                continue
            d = abs(r["frobenius_K"] - ref["frobenius_K"]) / ref["frobenius_K"]
            ds = abs(r["frobenius_Ks"] - ref["frobenius_Ks"]) / ref["frobenius_Ks"]
            de = max(abs(x - y) for x, y in zip(r["eig_top"], ref["eig_top"])) / ref["eig_top"][0]
            print(f"| {nc} | {l} | {r['frobenius_K']:.15g} | {d:.1e} | {ds:.1e} | {de:.1e} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one", help="one child run; prints one JSON line")
    o.add_argument("--lib", choices=["torch", "torch-chunked", "jax", "jax-split"], required=True)
    o.add_argument("--nc", type=int, required=True)
    o.add_argument("--checkpoint")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--chunk", type=int, default=4096, help="rows per chunk of torch-chunked (default 4096)")
    o.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where torch or JAX runs (default cpu)")
    s = sub.add_parser("sweep", help="all (library, size) runs in capped subprocesses")
    s.add_argument("--libs", default="pinntk-chunked,pinntk-auto,torch,torch-chunked,jax")
    s.add_argument("--sizes", default="1024,4096,16384,65536,131072")
    s.add_argument("--pinntk", default=os.path.join(HERE, "..", "..", "build", "pinntk"))
    s.add_argument("--pinntk-memory-limit", action="store_true", help="also pass --memory-limit CAP to pinntk")
    s.add_argument("--checkpoint")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--chunk", type=int, default=4096)
    s.add_argument("--cap", default="8G", help="RLIMIT_DATA of each child (default 8G; '' for none)")
    s.add_argument("--timeout", type=float, default=240.0, help="kill a child after this many seconds")
    s.add_argument("--timeout-soft", type=float, default=180.0,
                   help="skip the larger sizes of a library once a run took longer than this (default 180)")
    s.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cpu (default) or cuda: pinntk --device cuda, torch and JAX on the GPU; no RLIMIT_DATA cap")
    s.add_argument("--out", required=True)
    t = sub.add_parser("table", help="markdown tables from results.jsonl files")
    t.add_argument("results", nargs="+")
    a = ap.parse_args()
    if a.cmd == "table":
        table(a)
    elif a.cmd == "one":
        one(a)
    else:
        sweep(a)


if __name__ == "__main__":
    main()
