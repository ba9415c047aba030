"""The examples in quick mode (each a few seconds on a CPU), as CI runs them."""

import os
import subprocess
import sys


def run(repo, tmp_path, name, *extra):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("DISPLAY", None)
    p = subprocess.run(
        [sys.executable, str(repo / "examples" / name), "--quick", "--device", "cpu", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_fig2(repo, tmp_path):
    out = run(repo, tmp_path, "fig2_ntk_growth.py")
    slope = float(out.split("against eps:")[1].split()[0])
    assert -2.2 < slope < -1.8


def have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def test_torch_spectrum(repo, tmp_path):
    plot = have("matplotlib")  # --plot without matplotlib is an error (one line, exit status 1)
    out = run(repo, tmp_path, "torch_pinn_spectrum.py", *(["--plot", "s.png"] if plot else []))
    if not have("torch"):
        assert "not installed" in out
        return
    assert "||K_uu||_F" in out
    if plot:
        assert (tmp_path / "s.png").exists()


def test_jacobian_dlpack(repo, tmp_path):
    out = run(repo, tmp_path, "jacobian_dlpack.py")
    assert "without a copy: True" in out


def test_lm_live(repo, tmp_path):
    out = run(repo, tmp_path, "lm_darcy_live.py", "--out", "e.png")  # without matplotlib: no plot, the same run
    assert "max error" in out and "LM   20/20" in out
    assert (tmp_path / "e.png").exists() == have("matplotlib")


def test_problem_file_lm(repo, tmp_path):
    out = run(repo, tmp_path, "problem_file_lm.py")
    assert "incommensurate-1d" in out and "reference solution" in out
    assert "relative L2 error" in out
