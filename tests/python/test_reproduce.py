"""pinntk.reproduce: a quick figure into a folder, as `pinntk reproduce --quick`."""

import json

import pytest

import pinntk


def test_fig2_quick(tmp_path):
    s = pinntk.reproduce("fig2", tmp_path / "rep", quick=True, seeds=1, device="cpu")
    assert "fig2" in s
    assert (tmp_path / "rep" / "fig2" / "sweep.csv").exists()
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["fig2"] == s["fig2"]
    assert (tmp_path / "rep" / "README.md").exists()


def test_fig3_keeps_fig2(tmp_path):
    pinntk.reproduce("fig2", tmp_path, quick=True, seeds=1, device="cpu")
    s = pinntk.reproduce("fig3", tmp_path, quick=True, device="cpu")
    assert "fig2" in s and "fig3" in s  # merged with the earlier figure, as the CLI does
    assert (tmp_path / "fig2" / "sweep.csv").exists()


def test_bad_target(tmp_path):
    with pytest.raises(ValueError):
        pinntk.reproduce("fig9", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_fig4_quick_with_deepxde_init_and_two_loop(tmp_path):
    s = pinntk.reproduce(
        "fig4", tmp_path, quick=True, trials=2, device="cpu", init="glorot-truncated", lbfgs_method="two-loop"
    )
    settings = json.dumps(s["fig4"])
    assert "glorot-truncated" in settings and "two-loop" in settings
    assert (tmp_path / "fig4").is_dir()


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lbfgs_method"):
        pinntk.reproduce("fig4", tmp_path / "a", lbfgs_method="newton", device="cpu")
    with pytest.raises(ValueError, match="lbfgs_method"):
        pinntk.reproduce("fig2", tmp_path / "b", lbfgs_method="two-loop", device="cpu")
    with pytest.raises(ValueError):
        pinntk.reproduce("fig2", tmp_path / "c", init="glorot-truncated", device="cpu")
    assert not any((tmp_path / n).exists() for n in "abc")
