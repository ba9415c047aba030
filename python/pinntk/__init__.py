"""pinntk from Python: physics-informed neural networks on oscillatory elliptic problems and their neural tangent
kernel, computed by the same C++/CUDA library as the ``pinntk`` command line.

The API mirrors the CLI (README.md, "Commands"):

- :class:`Problem` -- ``Problem.preset("darcy-ntk", eps=1/80, nc=256)`` or ``Problem.from_file("problems/x.json")``
  (``--problem``, ``--problem-file`` and their overrides);
- :class:`Mlp` -- a tanh network; ``Mlp([1, 50, 1], init="normal", seed=0)``, ``.theta`` a writable numpy view of
  its parameters, ``Mlp.load`` / ``.save`` (checkpoint format ``pinntk-mlp-v1``), ``Mlp.from_torch`` / ``.to_torch``;
- :func:`jacobian`, :func:`kernel` -- the residuals and J, or the kernel K = J J^T D, on CUDA left in device memory and
  handed over by DLPack without a copy;
- :func:`ntk` -- ``pinntk ntk``: the kernel ``K = J J^T D`` (Lemma 3.1), its Frobenius norms and spectra, and with
  ``save_matrices=True`` the matrices J and K, as numpy arrays;
- :func:`ntk_top`, :func:`ntk_density` -- ``pinntk ntk --eigen top:K`` and ``--eigen density``: the top eigenpairs
  and the spectral density by Lanczos on matrix-free products;
- :func:`train` -- ``pinntk train``: Adam phases, then L-BFGS or Levenberg-Marquardt, the history as numpy arrays;
- :func:`train_ensemble` -- ``pinntk train --ensemble B``: B seeds of one network trained as one batch;
- :func:`reproduce` -- ``pinntk reproduce``: the paper's figures as data in a folder.

Errors: bad input raises :class:`UsageError` (a ``ValueError``), a quantity that must be finite and is not raises
:class:`NumericalError` (an ``ArithmeticError``). All arrays are numpy arrays on the host (float64), except the CUDA
Jacobian of :func:`jacobian`, which stays on the device.
"""

import os as _os

from . import _env

_env.set_cpu_environment()

from . import _core  # noqa: E402  (after the environment: OpenBLAS and libgomp read it when they load)
from ._core import NumericalError, Problem, UsageError  # noqa: E402
from . import _names  # noqa: E402

_names.speak_python(UsageError)  # messages name Python's keywords (nc), not the CLI's flags (--nc)
from . import _api  # noqa: E402
from ._api import (  # noqa: E402
    JacobianResult,
    KernelResult,
    Mlp,
    NtkDensityResult,
    NtkResult,
    NtkTopResult,
    Progress,
    TrainingInterrupted,
    TrainResult,
    EnsembleResult,
    jacobian,
    kernel,
    ntk,
    ntk_density,
    ntk_top,
    reproduce,
    train,
    train_ensemble,
)

UsageError.__module__ = NumericalError.__module__ = Problem.__module__ = "pinntk"
__version__ = _core.__version__
built_with_cuda = _core.built_with_cuda


def cuda_device_count():
    """Number of CUDA devices that answer (0 in a build without CUDA)."""
    return _core.cuda_device_count()


def problem_names():
    """The presets ``Problem.preset`` accepts (1-D, then n-D)."""
    return list(_core.problem_names())


def init_names():
    """The initializations ``Mlp(init=...)`` accepts."""
    return list(_core.init_names())


__all__ = ["Problem", *_api.__all__] + [
    "UsageError",
    "NumericalError",
    "problem_names",
    "init_names",
    "cuda_device_count",
    "built_with_cuda",
    "__version__",
]

del _os
