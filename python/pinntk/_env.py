"""The CPU libraries' run-time environment, set before the compiled module loads them.

The CLI re-executes itself once with these variables (host/blas_setup.cpp): OpenBLAS picks slow SSE3 kernels on CPU
models it does not know, and libgomp's idle threads spin long enough to take the cores from OpenBLAS's threads. A
Python process cannot re-execute itself, so the package sets the same variables when it is imported, before
``pinntk._core`` (and with it OpenBLAS and libgomp) is loaded; variables the user set are never changed, and
``PINNTK_NO_REEXEC=1`` opts out as it does for the CLI. Both libraries read them only when they load: a process that
loaded them earlier (another extension linking the system's OpenBLAS) keeps its own settings.
"""

import os


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def set_cpu_environment():
    """Sets OPENBLAS_CORETYPE and GOMP_SPINCOUNT as the CLI does, unless given or PINNTK_NO_REEXEC is set."""
    env = os.environ
    if "PINNTK_NO_REEXEC" in env:
        return
    if "OPENBLAS_CORETYPE" not in env:
        flags = _cpu_flags()
        # The CLI asks OpenBLAS first and overrides only its Prescott fallback; before loading OpenBLAS we cannot ask,
        # so we name the family the CPU's features allow (what the CLI would choose on such a fallback).
        if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags:
            env["OPENBLAS_CORETYPE"] = "SkylakeX"
        elif {"avx2", "fma"} <= flags:
            env["OPENBLAS_CORETYPE"] = "Haswell"
    if "GOMP_SPINCOUNT" not in env and "OMP_WAIT_POLICY" not in env:
        env["GOMP_SPINCOUNT"] = "10000"
