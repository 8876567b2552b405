"""Shared fixtures: one Keras import per session, paths, and the error helper."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "specs"


@pytest.fixture(scope="session")
def keras():
    import keras

    return keras


def error_for(text_or_path, *, stage: str = "load", params=None, trust_plugins: bool = False):
    """The NetspecError a spec raises at ``stage`` (load, check or build); fails if none."""
    import netspec

    try:
        spec = netspec.load(text_or_path, params=params, trust_plugins=trust_plugins)
        if stage == "check":
            spec.check()
        elif stage == "build":
            spec.build()
    except netspec.NetspecError as e:
        return e
    raise AssertionError(f"expected a NetspecError at stage {stage!r}")
