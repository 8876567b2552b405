"""What netspec reads at run time ships inside the package; the copies outside it are identical.

The schema netspec reads is package data (``netspec/schema/netspec.schema.json``); the copy at the
repository root (``schemas/``) is what editors point at, so the two must never drift. The shipped
digits live in ``netspec/datasets/``; ``data/digits.npz`` at the root is a link to them. The end-to-end
check (a built wheel in a fresh virtual environment) is tests/test_wheel.py.
"""

from __future__ import annotations

import tomllib

import pytest

from conftest import ROOT

PACKAGE = ROOT / "netspec"

# (the copy outside the package, the package data netspec reads)
COPIES = [
    ("schemas/netspec.schema.json", "netspec/schema/netspec.schema.json"),
    ("data/digits.npz", "netspec/datasets/digits.npz"),
]


@pytest.mark.parametrize("outside, packaged", COPIES, ids=[o for o, _ in COPIES])
def test_root_copy_equals_the_package_data(outside, packaged):
    assert (ROOT / packaged).is_file(), f"{packaged} is missing: netspec reads it at run time"
    assert (ROOT / outside).read_bytes() == (ROOT / packaged).read_bytes(), (
        f"{outside} differs from {packaged}; regenerate both with `make schema`")


def test_package_data_declared_in_pyproject_covers_the_run_time_files():
    """Every run-time file matches a [tool.setuptools.package-data] pattern, so a wheel carries it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["netspec"]
    for _, packaged in COPIES:
        relative = (ROOT / packaged).relative_to(PACKAGE)
        assert any(relative.match(pattern) for pattern in patterns), (
            f"{packaged} matches no package-data pattern ({patterns}); a wheel would not ship it")
