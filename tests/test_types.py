"""The package type-checks: mypy over netspec/ (configured in pyproject.toml's [tool.mypy])."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extra")

ROOT = Path(__file__).resolve().parent.parent


def test_netspec_type_checks():
    # The cache goes to a temporary place: a clean clone starts cold (about 15 s on 2 cores), and a
    # stale cache from another checkout must not hide an error.
    cache = Path(os.environ.get("TMPDIR", "/tmp")) / f"netspec-mypy-{os.getuid()}"
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache),
                                     str(ROOT / "netspec")])
    assert status == 0, out + err
