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
    """The pinntk CLI built from the same sources, for bitwise cross-checks: $PINNTK_CLI (e.g. build/pinntk);
    skipped when unset, since a CLI built from other sources may differ in the last digits."""
    path = os.environ.get("PINNTK_CLI", "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("set PINNTK_CLI to a pinntk CLI built from these sources for the cross-checks")
    return path
