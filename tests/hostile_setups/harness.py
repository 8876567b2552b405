"""Setups for the harness's own control cases (tests/hostile/harness_*.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_spec(tmp: Path, spec: Path, target: str, *companions: str) -> Path:
    """Move ``spec`` to ``tmp/target`` (subdirectories created) with ``companions`` beside it; returns the new path.

    Args:
        tmp: the case's directory.
        spec: the case file as copied into ``tmp``.
        target: the new path of the spec, relative to ``tmp``.
        companions: files already in ``tmp`` (from ``files:``) to move beside the spec.
    """
    new = tmp / target
    new.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(spec, new)
    for name in companions:
        shutil.move(tmp / name, new.parent / name)
    return new
