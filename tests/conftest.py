"""Shared fixtures: one Keras import per session, paths, and the error helper."""

from __future__ import annotations

import os
import re
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
    """The NetspecError a spec raises at ``stage`` (load, validate, check or build); fails if none."""
    import netspec

    try:
        spec = netspec.load(text_or_path, params=params, trust_plugins=trust_plugins)
        if stage == "validate":  # what `netspec validate` checks beyond load
            spec.validate()
        elif stage == "check":
            spec.check()
        elif stage == "build":
            spec.build()
    except netspec.NetspecError as e:
        return e
    raise AssertionError(f"expected a NetspecError at stage {stage!r}")


def comment_headers(path: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a corpus file, for the given keys."""
    pattern = re.compile(rf"#\s*({'|'.join(keys)}):\s*(.*)")
    out = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        m = pattern.match(line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out
