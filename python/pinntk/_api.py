"""The Python side of pinntk's API: defaults, result objects and progress, around calls of pinntk._core.

Nothing here computes: every number comes from the C++ library that the CLI uses (python/src/module.cpp).
"""

import inspect
import os
import sys
from typing import Callable, NamedTuple, Optional

import numpy as np

from . import _core

__all__ = [
    "Mlp",
    "jacobian",
    "JacobianResult",
    "kernel",
    "KernelResult",
    "ntk",
    "NtkResult",
    "ntk_top",
    "NtkTopResult",
    "ntk_density",
    "NtkDensityResult",
    "train",
    "TrainResult",
    "train_ensemble",
    "EnsembleResult",
    "Progress",
    "TrainingInterrupted",
    "reproduce",
]


# ---- arguments -------------------------------------------------------------------------------------------------------

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_SEED = (0, 2**64 - 1)


def _int(value, name, bounds=_INT32):
    """value as an int for the C++ call: an integer (or a float with no fraction) inside bounds, else one-line
    pinntk.UsageError (a ValueError) naming the argument; never a silent truncation."""
    if isinstance(value, (bool, np.bool_)):
        raise _core.UsageError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, (int, np.integer)):
        v = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        v = int(value)
    else:
        raise _core.UsageError(f"{name} must be an integer, got {value!r}")
    lo, hi = bounds
    if not lo <= v <= hi:
        raise _core.UsageError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return v


def _memory(memory_limit):
    """memory_limit as the CLI's text: None for the available memory, a size like "8G", or a number of bytes."""
    if memory_limit is None:
        return ""
    if isinstance(memory_limit, (int, np.integer)) and not isinstance(memory_limit, (bool, np.bool_)):
        return str(_int(memory_limit, "memory_limit", (1, 2**63 - 1)))
    if isinstance(memory_limit, str):
        return memory_limit
    raise _core.UsageError(f"memory_limit must be a size like '8G' or a number of bytes, got {memory_limit!r}")


# ---- Mlp -------------------------------------------------------------------------------------------------------------


class Mlp(_core.Mlp):
    """A tanh network ``u = W_L tanh(... tanh(W_1 x + b_1) ...) + b_L`` (pinntk's Mlp, host/mlp.hpp).

    Args:
        layers: widths ``[n, d_1, ..., d_L, 1]``: n inputs (1 to 3, the problem's dimension), at least one hidden
            layer, one output (as ``--layers``).
        init: ``"normal"`` (weights and biases N(0, 1), Fig. 2a), ``"glorot-normal"``, ``"glorot-uniform"`` or
            ``"glorot-truncated"`` (as ``--init``).
        seed: seed of the initialization, an integer in [0, 2^64 - 1]; the same network as the CLI's ``--seed``.

    Attributes:
        layers (list[int]): the widths.
        n_params (int): P, the number of parameters.
        theta (numpy.ndarray): shape (P,), float64, a writable view of the C++ parameters (no copy): W^1 row-major
            (d_1 x n), b^1, W^2, b^2, ... (``weight_offset(l)`` is where W^l starts). Assigning an array of shape (P,)
            copies it in.
    """

    def __init__(self, layers, init: str = "glorot-normal", seed: int = 0):
        super().__init__([_int(w, "layers") for w in layers], str(init), _int(seed, "seed", _SEED))

    @classmethod
    def _wrap(cls, core):
        net = cls.__new__(cls)
        _core.Mlp.__init__(net)
        net._assign(core)
        return net

    @classmethod
    def for_problem(cls, problem, seed: int = 0, layers=None, init=None):
        """The network the CLI would make for ``problem``: its preset's layers and init unless given."""
        return cls(layers or problem.default_layers, init or problem.default_init, seed)

    @classmethod
    def load(cls, path):
        """Reads a ``pinntk-mlp-v1`` checkpoint (``checkpoint.json`` of ``pinntk train``); UsageError when damaged."""
        return cls._wrap(_core.Mlp.load(os.fspath(path)))

    @classmethod
    def from_json(cls, text: str):
        """A network from the text of a ``pinntk-mlp-v1`` checkpoint."""
        return cls._wrap(_core.Mlp.from_json(text))

    def save(self, path):
        """Writes the ``pinntk-mlp-v1`` checkpoint (17 significant digits: it round-trips exactly)."""
        super().save(os.fspath(path))

    def copy(self):
        """An independent copy (its own parameters)."""
        return type(self)._wrap(super().copy())

    def evaluate(self, x, device: str = "cpu", threads: int = 0):
        """u, its first and second derivatives along each axis at the points x.

        Args:
            x: shape (N,) for a 1-D network or (N, n), float64.
        Returns:
            (u, du, d2u): u of shape (N,); du and d2u of x's shape (D_i u and D_i^2 u per axis).
        """
        return super().evaluate(np.ascontiguousarray(x, dtype=np.float64), device, _int(threads, "threads"))

    def __call__(self, x):
        """u at the points x (shape (N,) or (N, n)); evaluate() gives the derivatives too."""
        return self.evaluate(x)[0]

    @classmethod
    def from_torch(cls, module):
        """The pinntk network of a torch ``nn.Sequential`` of Linear and Tanh layers (see pinntk.torch_interop)."""
        from .torch_interop import mlp_from_torch

        return mlp_from_torch(module, cls)

    def to_torch(self, dtype=None):
        """The torch ``nn.Sequential`` (Linear, Tanh, ..., Linear) computing this network, float64 by default."""
        from .torch_interop import mlp_to_torch

        return mlp_to_torch(self, dtype)

    def __repr__(self):
        return f"pinntk.Mlp(layers={self.layers}, n_params={self.n_params})"

    def __eq__(self, other):
        return isinstance(other, _core.Mlp) and self.layers == other.layers and np.array_equal(self.theta, other.theta)

    __hash__ = None


# ---- NTK -------------------------------------------------------------------------------------------------------------


class _Result:
    """A result whose attributes are the entries of the dictionary the compiled core returned."""

    def __init__(self, d):
        self.__dict__.update(d)


class JacobianResult(_Result):
    """The residuals and the Jacobian of a network on a problem's rows, where the backend computed them.

    Attributes:
        J: the Jacobian d r_k / d theta, shape (N, P), row-major, parameters in pinntk's order (per layer W row by
            row, then b). On the CPU a numpy float64 array. On CUDA an array in device memory (float64, or float32
            with precision="fp32"), an object with ``__dlpack__`` and ``__dlpack_device__`` (the array API's
            interchange; it may be taken any number of times): ``torch.from_dlpack(res.J)``,
            ``cupy.from_dlpack(res.J)`` or ``jax.dlpack.from_dlpack(res.J)`` take it without a copy. The memory lives
            as long as J or any tensor made from it.
        data_ptr (int): J's address (host or device), e.g. ``torch.from_dlpack(res.J).data_ptr() == res.data_ptr``.
        residuals (ndarray, (N,)): r_k = rho_k - f_k at the network, on the host (float64).
        device, precision (str): the backend that computed them; nc, nb, n_params (int).
    """

    def __repr__(self):
        return (
            f"pinntk.JacobianResult(N={self.nc + self.nb}, P={self.n_params}, device={self.device}, "
            f"precision={self.precision})"
        )


def jacobian(
    problem, net, device: str = "auto", precision: str = "fp64", threads: int = 0, memory_limit: Optional[str] = None
) -> JacobianResult:
    """The residuals and the Jacobian J (N x P) of ``net`` on ``problem``'s rows, without a copy.

    Args:
        problem: a :class:`Problem`.
        net: an :class:`Mlp` whose input width is the problem's dimension.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. On CUDA J stays in device memory (see :class:`JacobianResult`).
        precision: ``"fp64"``, or ``"fp32"`` on CUDA (J in float32).
        threads: CPU threads (0: all cores).
        memory_limit: e.g. ``"8G"``, the host memory J may take on the CPU; None: the available memory.
    Returns:
        a :class:`JacobianResult`.
    """
    return JacobianResult(
        _core.device_matrix(
            problem, net, "J", device, precision, _int(threads, "threads"), "lemma", _memory(memory_limit)
        )
    )


class KernelResult(_Result):
    """The NTK matrix ``K = J J^T D`` (Lemma 3.1) of a network on a problem's rows, where the backend computed it.

    Attributes:
        K: shape (N, N), without a copy as :class:`JacobianResult`'s J: a numpy array on the CPU (row-major); on CUDA
            an array in device memory (column-major strides) that ``torch.from_dlpack`` and the like take as it is.
        data_ptr (int): K's address; weights (ndarray, (N,)): the diagonal of D; residuals (ndarray, (N,));
            device, precision (str); nc, nb, n_params (int).
    """

    def __repr__(self):
        n = self.nc + self.nb
        return f"pinntk.KernelResult(N={n}, P={self.n_params}, device={self.device}, precision={self.precision})"


def kernel(
    problem,
    net,
    device: str = "auto",
    precision: str = "fp64",
    scaling: str = "lemma",
    threads: int = 0,
    memory_limit: Optional[str] = None,
) -> KernelResult:
    """The NTK matrix ``K = J J^T D`` (N x N) of ``net`` on ``problem``'s rows, without a copy (on CUDA formed on the
    device by cuBLAS and left there).

    Args:
        problem, net, device, precision, threads, memory_limit: as for :func:`jacobian`.
        scaling: ``"lemma"`` (D = the loss weights, Lemma 3.1) or ``"none"`` (D = I), as for :func:`ntk`.
    Returns:
        a :class:`KernelResult`.
    """
    return KernelResult(
        _core.device_matrix(
            problem, net, "K", device, precision, _int(threads, "threads"), scaling, _memory(memory_limit)
        )
    )


class NtkResult(_Result):
    """The NTK of a network on a problem's rows (``pinntk ntk``'s summary.json and .npy files as attributes).

    N = nc + nb rows (collocation, then boundary), P parameters; ``K = J J^T D`` with D the row weights of the
    scaling (``"lemma"``: 1/nc on collocation rows, lambda/nb on boundary rows; ``"none"``: D = I).

    Attributes:
        spectrum_K (ndarray, (N,)): eigenvalues of K (those of D^1/2 J J^T D^1/2), descending.
        spectrum_Kuu (ndarray, (nc,)), spectrum_Kbb (ndarray, (nb,)): of the diagonal blocks, descending.
        frobenius_K, frobenius_Kuu, frobenius_Kbb (float): Frobenius norms (of the non-symmetric K for frobenius_K).
        residuals (ndarray, (N,)): r_k at the network; weights (ndarray, (N,)): the diagonal of D.
        J (ndarray, (N, P) or None), K (ndarray, (N, N) or None), points (ndarray, (N, n) or None): with
            save_matrices=True only.
        gram_trick (bool): spectra from P x P Grams (N > P); path ("exact" or "chunked"), path_reason, chunk_rows,
        peak_memory_bytes_estimate, scaling, device, precision, nc, nb, n_params, wall_time_s (seconds).
    """

    @property
    def eigenvalue_Kuu_min(self) -> float:
        return float(self.spectrum_Kuu[-1])

    @property
    def condition_Kuu(self) -> Optional[float]:
        """lambda_max / lambda_min of K_uu; None when the smallest computed eigenvalue is not positive."""
        lmin = self.spectrum_Kuu[-1]
        return float(self.spectrum_Kuu[0] / lmin) if lmin > 0 else None

    @property
    def spectral_radius_Kbb(self) -> float:
        return float(self.spectrum_Kbb[0]) if len(self.spectrum_Kbb) else 0.0

    def __repr__(self):
        return (
            f"pinntk.NtkResult(N={self.nc + self.nb}, P={self.n_params}, ||K_uu||_F={self.frobenius_Kuu:.6e}, "
            f"lambda_1(K_uu)={self.spectrum_Kuu[0]:.6e}, device={self.device})"
        )


def ntk(
    problem,
    net,
    device: str = "auto",
    save_matrices: bool = False,
    scaling: str = "lemma",
    precision: str = "fp64",
    path: str = "auto",
    chunk_rows: int = 0,
    memory_limit: Optional[str] = None,
    threads: int = 0,
) -> NtkResult:
    """The NTK ``K = J J^T D`` of ``net`` on ``problem``'s rows: norms and full spectra (``pinntk ntk``).

    Args:
        problem: a :class:`Problem`.
        net: an :class:`Mlp` whose input width is the problem's dimension.
        device: ``"auto"`` (CUDA when a device answers, else the CPU with a notice), ``"cpu"`` or ``"cuda"``.
        save_matrices: also return J (N x P), K (N x N) and the points (N x n); needs the exact path and N^2 * 8
            bytes <= 4 GB.
        scaling: ``"lemma"`` (D = loss weights, Lemma 3.1) or ``"none"`` (D = I, the unscaled J_u J_u^T).
        precision: ``"fp64"``, or ``"fp32"`` on CUDA.
        path: ``"auto"``, ``"exact"`` (the whole Jacobian) or ``"chunked"`` (P x P Grams over chunks of rows; N > P).
        chunk_rows: rows per chunk on the chunked path (0: as many as fit, up to 4096).
        memory_limit: e.g. ``"8G"``; None: the available memory.
        threads: CPU threads (0: all cores).
    Returns:
        an :class:`NtkResult` (numpy arrays on the host).
    """
    d = _core.ntk(
        problem, net, device, precision, _int(threads, "threads"), scaling, path,
        _int(chunk_rows, "chunk_rows", _INT64), _memory(memory_limit), bool(save_matrices)
    )
    return NtkResult(d)


class NtkTopResult(_Result):
    """The k largest eigenvalues of the NTK by Lanczos (``pinntk ntk --eigen top:K``: summary.json's ``eigen``,
    eigenvalues_top.npy and, with vectors, eigenvectors_top.npy as attributes).

    The operator is ``K_s = D^1/2 J J^T D^1/2`` (N x N) when N <= P, else the Gram ``Jh^T Jh = J^T D J`` (P x P); both
    have the nonzero eigenvalues of ``K = J J^T D``. Neither J nor K is formed on the CPU and CUDA backends.

    Attributes:
        values (ndarray, (k,)): the k largest eigenvalues of K, descending (units of K: those of u's derivatives
            squared times the row weights).
        vectors (ndarray, (dim, k) or None): with vectors=True, column i the unit eigenvector of values[i]: of K_s
            (dim = N, row space) when ``gram`` is False, of the Gram (dim = P, parameter space) when True; None
            otherwise. ``vectors_of`` says which, as the CLI's summary.json.
        k (int), dim (int): the operator's size, min(N, P); gram (bool); operator (str): ``"K_s (N x N)"`` or
            ``"Jh^T Jh (P x P)"``; method (str): Lanczos (Spectra), or dense when k = dim.
        products (int): operator products, each one J product and one J^T product; converged (int): pairs converged.
        tol (float): Lanczos's relative tolerance; weights (ndarray, (N,)): the diagonal of D; nc, nb, n_params,
            scaling, device, precision, wall_time_s (seconds).
    """

    def __repr__(self):
        return (
            f"pinntk.NtkTopResult(k={self.k}, operator={self.operator!r}, lambda_1={self.values[0]:.6e}, "
            f"products={self.products}, device={self.device})"
        )


class NtkDensityResult(_Result):
    """The NTK's spectral density by stochastic Lanczos quadrature (``pinntk ntk --eigen density``: summary.json's
    ``density``, density.csv, density_nodes.npy and density_weights.npy as attributes).

    Attributes:
        edges (ndarray, (bins + 1,)): bin edges in log10(lambda), ascending; the last is log10(lambda_max), the first
            ``decades`` (16) below it. density.csv's ``log10_lo``, ``log10_hi`` are edges[:-1], edges[1:].
        counts (ndarray, (bins,)): the estimated number of eigenvalues of K in [10^edges[b], 10^edges[b+1])
            (density.csv's ``count``); ``counts.sum() + below`` is N to rounding.
        below (float): the mass below 10^edges[0] (nonpositive Ritz values and, on the Gram, the N - P known zeros);
            known_zeros (float): N - dim when the Gram was the operator; total (float): counts.sum() + below.
        nodes (ndarray, (M,)): every probe's Ritz values theta_j (estimates of eigenvalues of K), probe after probe
            (M = probes x steps used, fewer after a breakdown), then a node at 0 for the known zeros when there are
            any (as density_nodes.npy);
        weights (ndarray, (M,)): their masses dim * tau_j / probes, and the known zeros' N - dim (sum: N).
        lambda_max (float): the largest Ritz value; n (int): N; dim (int): min(N, P); steps (int): Lanczos steps per
            probe (steps_asked capped at dim; steps_capped says so); probes, bins, decades, probe_seed, breakdowns,
            products (int): operator products; gram (bool), operator, method, nc, nb, n_params, scaling, device,
            precision, wall_time_s (seconds).
    """

    def histogram(self):
        """(counts, edges): the histogram in log10(lambda), numpy.histogram's order."""
        return self.counts, self.edges

    def __repr__(self):
        return (
            f"pinntk.NtkDensityResult(N={self.n}, operator={self.operator!r}, lambda_max={self.lambda_max:.6e}, "
            f"bins={self.bins}, below={self.below:.1f}, products={self.products}, device={self.device})"
        )


def ntk_top(
    problem,
    net,
    k: int,
    vectors: bool = False,
    device: str = "auto",
    precision: str = "fp64",
    threads: int = 0,
    scaling: str = "lemma",
    tol: float = 1e-12,
    memory_limit: Optional[str] = None,
) -> NtkTopResult:
    """The k largest eigenvalues (and eigenvectors) of the NTK ``K = J J^T D`` by Lanczos on matrix-free products
    (``pinntk ntk --eigen top:K [--save-vectors]``): no J or K formed, memory O((N + P) k).

    Args:
        problem: a :class:`Problem`; net: an :class:`Mlp` whose input width is the problem's dimension.
        k: how many, in [1, min(N, P)] (N = nc + nb rows, P parameters; K's rank is at most min(N, P)); k =
            min(N, P) gives every eigenvalue by a dense solve of the operator's columns.
        vectors: also return the eigenvectors (``vectors``, shape (dim, k); see :class:`NtkTopResult`).
        device, precision, threads, scaling, memory_limit: as for :func:`ntk`.
        tol: Lanczos's relative tolerance (> 0; the CLI's is 1e-12).
    Returns:
        an :class:`NtkTopResult`.
    Raises:
        UsageError: k outside [1, min(N, P)], bad settings, or more memory than the limit; NumericalError: a product
            not finite, or fewer than k pairs converged.
    """
    d = _core.ntk_top(
        problem, net, _int(k, "k", _INT64), bool(vectors), device, precision, _int(threads, "threads"), scaling,
        float(tol), _memory(memory_limit)
    )
    return NtkTopResult(d)


def ntk_density(
    problem,
    net,
    probes: int = 16,
    steps: int = 80,
    bins: int = 64,
    seed: int = 0,
    device: str = "auto",
    precision: str = "fp64",
    threads: int = 0,
    scaling: str = "lemma",
    memory_limit: Optional[str] = None,
) -> NtkDensityResult:
    """The density of the NTK's whole spectrum on a log axis by stochastic Lanczos quadrature (``pinntk ntk --eigen
    density``): no J or K formed.

    Args:
        problem, net: as for :func:`ntk`.
        probes: Rademacher probe vectors (``--density-probes``, >= 1); a count c carries a statistical error of about
            sqrt(2 c / probes).
        steps: Lanczos steps per probe (``--density-steps``, >= 1; capped at min(N, P), which is exact up to the
            probe average).
        bins: bins in log10(lambda) over the 16 decades below lambda_max (``--density-bins``, >= 1).
        seed: the probes' seed, in [0, 2^64 - 1]; the CLI takes it from ``--seed`` (default 0, as here).
        device, precision, threads, scaling, memory_limit: as for :func:`ntk`.
    Returns:
        an :class:`NtkDensityResult`.
    Raises:
        UsageError: a setting below 1, bad settings, more memory than the limit; NumericalError: a product not
            finite, or a zero kernel (no log axis).
    """
    d = _core.ntk_density(
        problem, net, _int(probes, "probes"), _int(steps, "steps"), _int(bins, "bins"), _int(seed, "seed", _SEED),
        device, precision, _int(threads, "threads"), scaling, _memory(memory_limit),
    )  # fmt: skip
    return NtkDensityResult(d)


# ---- training --------------------------------------------------------------------------------------------------------


class Progress(NamedTuple):
    """What a progress callback of :func:`train` and :func:`train_ensemble` receives.

    phase: ``"adam"``, ``"lbfgs"`` or ``"lm"``; iteration and total: iterations done and planned (all phases);
    loss: the latest loss (in an ensemble's batch, the largest of the members'); row: the newest history row (a
    dict with the keys of ``TrainResult.history``) during LM, else None; member: None for :func:`train`, in an
    ensemble -1 while the batch trains and i while member i trains alone.
    """

    phase: str
    iteration: int
    total: int
    loss: float
    row: Optional[dict]
    member: Optional[int] = None


class TrainResult:
    """The result of :func:`train` (``pinntk train``'s summary.json and history.csv as attributes).

    Attributes:
        status: ``"complete"``, ``"diverged"`` (the loss or gradient stopped being finite; the network is the last
            one with a finite loss, ``diverged`` says where and why) or ``"interrupted"`` (only on the exception).
        history (dict of ndarray): a row every history_every iterations and after the last: ``iteration`` (int64),
            ``optimizer`` (list of "adam", "lbfgs", "lm"), ``lr`` (mu on LM rows, 0 on L-BFGS rows), ``loss``,
            ``loss_pde``, ``loss_boundary``, ``max_error`` (max norm on the test points), ``rel_l2_error``,
            ``time_s`` (seconds since the start).
        iterations, adam_iterations (int); final_loss, max_error, rel_l2_error, wall_time_s (float, seconds).
        lbfgs (dict): iterations, evaluations, loss, stop.
        lm (dict or None): with optimizer="lm": ``stages`` (eps, iterations, accepted, rejected, loss, mu, form, stop
            per stage) and ``history``: every LM iteration as arrays (stage, eps, iteration, loss, mu, rho,
            accepted, cond; cond is NaN where not computed).
        eps (float): the problem's eps at the end (the last LM stage's).
        ntk_history (dict of ndarray or None): with ntk_every, ``ntk_history.csv``'s columns, a row per recorded
            iteration: ``iteration``, ``frobenius_K``, ``frobenius_Kuu``, ``frobenius_Kbb``, ``lambda_max_K``,
            ``lambda_max_Kuu``, ``lambda_min_Kuu``, ``lambda_max_Kbb``, ``trace_Kuu``, ``trace_Kbb`` (NaN where the
            kernel was not finite), ``theta_max_abs``, ``w0_max_abs`` (the first layer's largest weight) and
            ``ntk_time_s``; None without it.
    """

    def __init__(self, d):
        d = dict(d)
        d.pop("error", None)
        self.__dict__.update(d)

    def __repr__(self):
        return (
            f"pinntk.TrainResult(status={self.status!r}, iterations={self.iterations}, "
            f"final_loss={self.final_loss:.6e}, max_error={self.max_error:.6e}, wall_time_s={self.wall_time_s:.2f})"
        )


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`: raised after the network was left in its last good state.

    Attributes:
        result: the partial :class:`TrainResult` (status ``"interrupted"``, the history up to that network); from
            :func:`train_ensemble`, the :class:`EnsembleResult` of the members finished.
        net: the network (the one passed to train, holding those parameters); None from :func:`train_ensemble`.
    """

    def __init__(self, result, net):
        if hasattr(result, "members"):  # train_ensemble's
            message = f"ensemble interrupted with {len(result.members)} members finished"
        else:
            message = (
                f"training interrupted at iteration {result.iterations}; the network holds the parameters of that "
                "iteration"
            )
        super().__init__(message)
        self.result = result
        self.net = net


def _schedule(schedule):
    if schedule is None:
        return []
    if isinstance(schedule, str):
        return list(_core.parse_schedule(schedule))
    out = []
    for ph in schedule:
        try:
            it, lr = ph
        except (TypeError, ValueError):
            raise ValueError(f"schedule: expected (iterations, learning rate) pairs or 'N@LR,...', got {ph!r}") from None
        out.append((_int(it, "schedule: iterations", _INT64), float(lr)))
    return out


def _tqdm_progress():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, None
    bar = {"bar": None, "phase": None}

    def cb(p: Progress):
        if bar["bar"] is None or bar["phase"] != p.phase:
            if bar["bar"] is not None:
                bar["bar"].close()
            bar["bar"] = tqdm(total=p.total, initial=0, desc=p.phase, file=sys.stderr, leave=False)
            bar["phase"] = p.phase
        b = bar["bar"]
        b.n = p.iteration
        b.set_postfix(loss=f"{p.loss:.3e}", refresh=False)
        b.refresh()

    def close():
        if bar["bar"] is not None:
            bar["bar"].close()

    return cb, close


def _progress_callback(progress, ensemble: bool):
    """The callback _core.train and _core.train_ensemble call, and the tqdm bar's closer, from train's progress."""
    close = None
    if progress is None:
        progress, close = _tqdm_progress()
    elif progress is False:
        progress = None
    elif not callable(progress):
        raise TypeError("progress: expected a callable, None or False")
    if progress is None:
        return None, close
    user = progress
    if ensemble:

        def cb(phase, it, total, loss, row, member):
            user(Progress(phase, it, total, loss, row, member))

    else:

        def cb(phase, it, total, loss, row):
            user(Progress(phase, it, total, loss, row))

    return cb, close


_TRAIN_SETTINGS = (
    "schedule", "optimizer", "lbfgs", "lbfgs_method", "lbfgs_history", "lbfgs_gtol", "lbfgs_ftol", "lbfgs_maxfun",
    "adam_beta1", "adam_beta2", "adam_eps", "lm_iters", "eps_continuation", "lm_mu0", "lm_tol", "lm_form",
    "lm_damping", "lm_cond_every", "history_every", "progress_every",
)  # fmt: skip


def _eps_list(value):
    """eps_continuation as a list of numbers: a list of numbers or texts, or the CLI's "1/8,1/16,1/32" (each text
    read as the CLI reads it, by its parse_real)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [_core.parse_real(e, "eps_continuation") if isinstance(e, str) else float(e) for e in items]


def _core_train_settings(s):
    """train's settings (a dict with the keys of _TRAIN_SETTINGS) as _core.train's arguments from schedule to
    progress_every."""
    iters = ([_int(s["lm_iters"], "lm_iters", _INT64)] if np.isscalar(s["lm_iters"])
             else [_int(k, "lm_iters", _INT64) for k in s["lm_iters"]])
    eps_list = [] if s["eps_continuation"] is None else _eps_list(s["eps_continuation"])
    return (
        _schedule(s["schedule"]), float(s["adam_beta1"]), float(s["adam_beta2"]), float(s["adam_eps"]),
        _int(s["lbfgs"], "lbfgs", _INT64), s["lbfgs_method"], _int(s["lbfgs_history"], "lbfgs_history"),
        float(s["lbfgs_gtol"]), float(s["lbfgs_ftol"]), _int(s["lbfgs_maxfun"], "lbfgs_maxfun", _INT64),
        s["optimizer"], iters, eps_list, float(s["lm_mu0"]), float(s["lm_tol"]), s["lm_form"], s["lm_damping"],
        _int(s["lm_cond_every"], "lm_cond_every", _INT64), _int(s["history_every"], "history_every", _INT64),
        _int(s["progress_every"] or s["history_every"], "progress_every", _INT64),
    )  # fmt: skip


def _result_or_raise(d, result, net):
    """result, unless the run was stopped: TrainingInterrupted on Ctrl-C, else the callback's own exception, each
    carrying the partial result."""
    if d["status"] != "interrupted":
        return result
    error = d.get("error")
    if isinstance(error, KeyboardInterrupt):
        raise TrainingInterrupted(result, net) from error
    error.pinntk_result = result
    raise error


def train(
    problem,
    net,
    schedule="1000@1e-3",
    optimizer: str = "adam",
    lbfgs: int = 0,
    *,
    lbfgs_method: str = "lbfgsb",
    lbfgs_history: int = 100,
    lbfgs_gtol: float = 1e-8,
    lbfgs_ftol: float = 0.0,
    lbfgs_maxfun: int = 0,
    adam_beta1: float = 0.9,
    adam_beta2: float = 0.999,
    adam_eps: float = 1e-8,
    lm_iters=500,
    eps_continuation=None,
    lm_mu0: float = 1e-6,
    lm_tol: float = 0.0,
    lm_form: str = "auto",
    lm_damping: str = "nielsen",
    lm_cond_every: int = 0,
    history_every: int = 100,
    progress_every: Optional[int] = None,
    ntk_every: int = 0,
    ntk_scaling: str = "lemma",
    device: str = "auto",
    precision: str = "fp64",
    threads: int = 0,
    progress=None,
) -> TrainResult:
    """Trains ``net`` in place on ``problem`` (``pinntk train``): the Adam phases, then L-BFGS or LM.

    Args:
        schedule: Adam's phases, ``"10000@1e-4,10000@1e-5"`` or ``[(10000, 1e-4), ...]`` (iterations, learning
            rate); ``""``/``[]``/None for none (with lbfgs or optimizer="lm").
        optimizer: ``"adam"`` (then ``lbfgs`` L-BFGS iterations when > 0) or ``"lm"`` (Levenberg-Marquardt after the
            Adam phases: ``lm_iters`` iterations, or one count per stage of ``eps_continuation``).
        lbfgs_*, adam_*, lm_*: as the CLI's ``--lbfgs-*``, ``--adam-*``, ``--lm-*`` flags.
        history_every: a history row every this many iterations (and one after the last).
        progress_every: the progress callback (and Ctrl-C) is checked at least every this many Adam or L-BFGS
            iterations (default: history_every); LM checks after every iteration.
        ntk_every: the NTK of the network at iterations 0, ntk_every, ... through Adam and L-BFGS (a multiple of
            history_every; not with LM) into ``result.ntk_history``, as ``pinntk train --ntk-every``; 0: none.
        ntk_scaling: its D, ``"lemma"`` (Lemma 3.1) or ``"none"`` (D = I), as :func:`ntk`'s ``scaling``.
        device, precision, threads: as for :func:`ntk`.
        progress: a callable receiving a :class:`Progress`; None: a tqdm bar when tqdm is installed; False: nothing.
    Returns:
        a :class:`TrainResult`; ``net`` holds the trained parameters (when diverged: the last finite network).
    Raises:
        TrainingInterrupted: on Ctrl-C (SIGINT), after the network was set to the newest good state the run reached
            (Adam: the parameters at the last progress step; L-BFGS: at the last history row; LM: the last accepted
            step); ``.result`` holds the history up to there. An exception raised by the progress callback stops the
            run the same way and is re-raised (with the partial result as its ``pinntk_result`` attribute).
        UsageError, NumericalError: bad settings; a first loss that is not finite.
    """
    settings = dict(locals())
    cb, close = _progress_callback(progress, ensemble=False)
    try:
        d = _core.train(problem, net, *_core_train_settings(settings), _int(ntk_every, "ntk_every", _INT64),
                        ntk_scaling, device, precision, _int(threads, "threads"), cb)
    finally:
        if close is not None:
            close()
    return _result_or_raise(d, TrainResult(d), net)


class EnsembleResult:
    """The result of :func:`train_ensemble`.

    Attributes:
        members (list): one entry per member, in order: ``(index, seed, net, result)`` named tuples (net an
            :class:`Mlp`, the trained network; result a :class:`TrainResult`).
        nets (list of Mlp), results (list of TrainResult), seeds (list of int): the same, by field.
        status (str): ``"complete"``, or ``"interrupted"`` (only on the exception's ``.result``).
    """

    def __init__(self, d):
        self.members = [
            EnsembleMember(m["index"], m["seed"], Mlp._wrap(m["net"]), TrainResult(m["result"])) for m in d["members"]
        ]
        self.status = d["status"]

    @property
    def nets(self):
        return [m.net for m in self.members]

    @property
    def results(self):
        return [m.result for m in self.members]

    @property
    def seeds(self):
        return [m.seed for m in self.members]

    def spread(self, key: str = "rel_l2_error") -> dict:
        """min, median, mean, max and standard deviation (divisor n) of a final number over the finite members
        (``"final_loss"``, ``"max_error"``, ``"rel_l2_error"``, ``"wall_time_s"``), and how many there were."""
        keys = ("final_loss", "max_error", "rel_l2_error", "wall_time_s")
        if key not in keys:
            raise _core.UsageError(f"spread: unknown key {key!r} (known: {', '.join(keys)})")
        v = np.array([getattr(r, key) for r in self.results], dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"count": 0}
        return {"count": int(v.size), "min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean()),
                "max": float(v.max()), "std": float(v.std())}  # fmt: skip

    def __repr__(self):
        return f"pinntk.EnsembleResult(members={len(self.members)}, status={self.status!r})"


class EnsembleMember(NamedTuple):
    index: int
    seed: int
    net: "Mlp"
    result: "TrainResult"


def train_ensemble(
    problem,
    layers,
    count: int,
    seed: int = 0,
    init: str = "glorot-normal",
    *,
    device: str = "auto",
    precision: str = "fp64",
    threads: int = 0,
    progress=None,
    **settings,
) -> EnsembleResult:
    """``count`` networks of ``layers`` initialized from ``seed``, ``seed + 1``, ... and trained on ``problem``
    (``pinntk train --ensemble count``).

    The members' Adam phases and L-BFGS run as one batch (on CUDA every launch serves all members; on the CPU the
    members take their steps side by side); with ``optimizer="lm"`` the LM stages follow member by member. Member i
    is the network :func:`train` gives ``Mlp(layers, init, seed + i)`` with the same settings, bit for bit on the CPU.

    Args:
        problem: a :class:`Problem`; layers, init, seed: as :class:`Mlp`'s; count: members, 1 to 1024.
        device, precision, threads: as for :func:`train`.
        progress: a callable receiving a :class:`Progress` whose ``member`` is -1 while the batch trains and i while
            member i trains alone; None: a tqdm bar when tqdm is installed; False: nothing.
        **settings: :func:`train`'s keywords (schedule, optimizer, lbfgs, lbfgs_*, adam_*, lm_*, eps_continuation,
            history_every, progress_every), with train's defaults.
    Returns:
        an :class:`EnsembleResult`.
    Raises:
        TrainingInterrupted: on Ctrl-C; its ``.result`` is the :class:`EnsembleResult` of the members finished
            before (none while the batch trains). An exception raised by the progress callback stops the ensemble
            the same way and is re-raised (with that result as its ``pinntk_result`` attribute).
        UsageError: bad settings; TypeError: a keyword train does not have.
    """
    unknown = sorted(set(settings) - set(_TRAIN_SETTINGS))
    if unknown:
        raise TypeError(f"train_ensemble: unknown keyword {unknown[0]!r} (train's keywords: {', '.join(_TRAIN_SETTINGS)})")
    defaults = {k: v.default for k, v in inspect.signature(train).parameters.items() if k in _TRAIN_SETTINGS}
    cb, close = _progress_callback(progress, ensemble=True)
    try:
        d = _core.train_ensemble(
            problem, [_int(w, "layers") for w in layers], str(init), _int(count, "count"), _int(seed, "seed", _SEED),
            *_core_train_settings({**defaults, **settings}), device, precision, _int(threads, "threads"), cb,
        )  # fmt: skip
    finally:
        if close is not None:
            close()
    return _result_or_raise(d, EnsembleResult(d), None)


# ---- reproduce -------------------------------------------------------------------------------------------------------


def reproduce(
    target: str,
    out,
    quick: bool = True,
    full: str = "",
    trials: int = 0,
    seeds: int = 0,
    device: str = "auto",
    precision: str = "fp64",
    threads: int = 0,
    init: str = "glorot-normal",
    lbfgs_method: str = "lbfgsb",
) -> dict:
    """The paper's figures as data (``pinntk reproduce TARGET --out OUT [--quick]``), without the plots.

    Args:
        target: ``fig1`` .. ``fig4``, ``all``, ``lm``, ``fig2-2d`` or ``poisson2d``.
        out: the output folder: ``figN/`` folders, ``summary.json`` and ``README.md``, as the CLI writes them
            (scripts/plot.py OUT draws the pictures).
        quick: the smoke-test sizes (seconds on a CPU) instead of the paper's settings.
        full: with quick, figures to run at the paper's settings all the same, e.g. ``"fig2,fig3"``.
        trials, seeds: fig4 trials and fig2 seeds (0: the figure's default).
        init: fig4's initializer, ``"glorot-normal"`` or ``"glorot-truncated"`` (DeepXDE's TensorFlow backend);
            for the targets fig4 and all only.
        lbfgs_method: every L-BFGS run's method (fig4, lm, poisson2d, all): ``"lbfgsb"`` (liblbfgsb, run by run
            on the host) or ``"two-loop"`` (fig4's trials at once; on the device with ``device="cuda"``).
    Returns:
        the summary of the figures run (summary.json's content, merged with earlier figures in ``out``).
    """
    import json

    text = _core.reproduce(
        target, os.fspath(out), bool(quick), full, _int(trials, "trials"), _int(seeds, "seeds"), device, precision,
        _int(threads, "threads"), init,
        lbfgs_method
    )
    return json.loads(text)


# The type of train's progress argument, for annotations in user code.
ProgressCallback = Callable[[Progress], None]
