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
