"""Shared fixtures: one Keras import per session, paths, and the error helper."""

from __future__ import annotations

import getpass
import os
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _own_tmpdir() -> Path:
    """A temporary directory for this test process and every process it starts, inside pytest's own
    ``pytest-of-<user>``, which the hostile harness does not judge: ``make test`` runs two workers, and one
    worker's temporary files in /tmp would otherwise look, to a case the other runs, like files that case
    wrote outside its directory (where the harness cannot give a case a private /tmp)."""
    try:
        user = getpass.getuser()
    except Exception:  # no name for this uid (a container): as pytest names its own directory
        user = "unknown"
    base = Path(tempfile.gettempdir()) / f"pytest-of-{user}"
    path = base / f"netspec-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = None  # read TMPDIR again
    return path


OWN_TMPDIR = _own_tmpdir()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(OWN_TMPDIR, ignore_errors=True)

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "specs"


@pytest.fixture(autouse=True)
def _same_random_draws():
    """Every test starts from the same random state, whatever ran before it in its worker: with two workers
    the order differs from run to run, and a test whose model is random (an int8 gate, a bf16 gate) would pass
    or fail by what ran before. Keras is seeded once a test has imported it (never imported here for it)."""
    random.seed(0)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(0)  # Python, NumPy and the backend's generators
    elif "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(0)


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
