"""Shared fixtures of the pinntk Python tests (run: pytest tests/python after `pip install .`)."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def cli():
    """The pinntk CLI of this checkout, for cross-checks: $PINNTK_CLI, else build/pinntk; skipped when absent."""
    path = os.environ.get("PINNTK_CLI") or str(REPO / "build" / "pinntk")
    if not os.access(path, os.X_OK):
        pytest.skip("no pinntk CLI (set PINNTK_CLI or build build/pinntk)")
    return path
