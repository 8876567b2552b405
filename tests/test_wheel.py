"""A wheel built from the repository works anywhere: installed in a fresh venv, run from a strange directory.

Before issue 12 a non-editable install had no schema and no dataset, and every command failed with
FileNotFoundError; an editable install or a run from the checkout hides that, so this test builds the
wheel, installs it (and only it) into a new virtual environment under tmp_path, and runs the installed
``netspec`` console script from a directory outside the repository with no PYTHONPATH.

Nothing is downloaded: the wheel is built with this venv's setuptools (``--no-build-isolation``, the
``test`` extra requires setuptools>=77) and installed with ``--no-deps --no-index``. The dependencies
(TensorFlow, Keras, ONNX: ~1 GB) are borrowed from this venv through a ``.pth`` file in the new venv's
site-packages that names this venv's site-packages. Those directories are appended *after* the new
venv's own site-packages and the ``.pth`` files inside them are not processed, so the development
venv's editable netspec finder stays inactive and ``import netspec`` finds the installed wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

from conftest import ROOT

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_wheel")]

# Not part of the source tree a wheel is built from: at the root, environments, build output and run
# results (only there: netspec/build/ is a package); anywhere, caches.
NOT_SOURCE_AT_ROOT = {".git", ".venv", "node_modules", "build", "dist", "runs", "out", ".pytest_cache", ".hypothesis"}
CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
# The only files under netspec/ that are not Python: what netspec reads at run time.
PACKAGE_DATA = {"netspec/schema/netspec.schema.json", "netspec/datasets/digits.npz"}
MIN_SETUPTOOLS = 77  # pyproject.toml's license = "<SPDX expression>" (PEP 639) needs it
TIMEOUT = 300


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    """``cmd``, its output captured as text; fails the test with that output when it exits non-zero."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def not_source(directory: str, names: list[str]) -> set[str]:
    """The names in ``directory`` that the copy of the repository leaves out (shutil.copytree's ignore)."""
    root = NOT_SOURCE_AT_ROOT.intersection(names) if Path(directory) == ROOT else set()
    return root | set(CACHES(directory, names))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the repository (a build in place would leave build/ behind,
    and stale files there would end up in later wheels)."""
    if int(installed_version("setuptools").split(".")[0]) < MIN_SETUPTOOLS:
        pytest.fail(f"building the wheel offline needs setuptools>={MIN_SETUPTOOLS} in this venv (found "
                    f"{installed_version('setuptools')}); the test extra declares it: pip install -e '.[test]'")
    source = tmp_path_factory.mktemp("source") / "netspec"
    shutil.copytree(ROOT, source, symlinks=True, ignore=not_source)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
         "--quiet", "-w", dist, source])
    wheels = list(dist.glob("netspec-*.whl"))
    assert len(wheels) == 1, f"expected one netspec wheel in {dist}: {os.listdir(dist)}"
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the repository with only the wheel installed, dependencies borrowed by a .pth."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = bin_dir(venv) / "python"
    # This venv's pip installs into the new one (pip --python): no pip bootstrap, nothing downloaded.
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--no-cache-dir",
         "--quiet", wheel])
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    borrowed = dict.fromkeys(sysconfig.get_path(key) for key in ("purelib", "platlib"))
    (site / "zz_borrowed_dependencies.pth").write_text("".join(f"{path}\n" for path in borrowed))
    return venv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory outside the repository holding specs/digits.yaml, its data switched to the shipped digits."""
    work = tmp_path_factory.mktemp("work")
    text = (ROOT / "specs" / "digits.yaml").read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^(\s+data:) \{source: npz, path: [^,]+, x: images, y: labels,",
                      r"\1 {source: dataset, name: digits,", text)
    assert n == 1, "specs/digits.yaml no longer has the train.data line this test rewrites"
    (work / "digits.yaml").write_text(text, encoding="utf-8")
    return work


def netspec_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_wheel_holds_the_package_and_its_data_and_nothing_else(wheel):
    import netspec.version

    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"netspec-{netspec.version.__version__}.dist-info"
    assert wheel.name == f"netspec-{netspec.version.__version__}-py3-none-any.whl"
    assert {name.split("/")[0] for name in names} == {"netspec", dist_info}  # no tests/, specs/, data/, schemas/
    assert {n for n in names if n.startswith("netspec/") and not n.endswith(".py")} == PACKAGE_DATA
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("netspec/schema/netspec.schema.json") == (ROOT / "schemas/netspec.schema.json").read_bytes()
        assert "netspec = netspec.cli:run" in archive.read(f"{dist_info}/entry_points.txt").decode()


def test_installed_netspec_is_the_wheel_not_the_repository(venv, workdir):
    out = run([bin_dir(venv) / "python", "-c", "import netspec; print(netspec.__file__)"],
              cwd=workdir, env=netspec_env()).stdout.strip()
    location = Path(out).resolve()
    assert location.is_relative_to(venv.resolve()), f"netspec imported from {location}, not from the new venv"
    assert not location.is_relative_to(ROOT), location


# (command line after `netspec`, text its output contains, files it writes in the working directory)
COMMANDS = [
    (["validate", "digits.yaml"], ["digits.yaml: ok (digits: 1 input, 9 layers, 1 output)"], []),
    (["check", "digits.yaml"], ["total params: 13,706"], []),
    (["build", "digits.yaml", "-o", "m.keras"], ["wrote m.keras (13,706 params)"], ["m.keras"]),
    (["export", "digits.yaml", "--target", "onnx-cpu", "-o", "m.onnx"], ["wrote m.onnx", "gate: passed"], ["m.onnx"]),
    (["train", "digits.yaml", "--epochs", "1", "--run-dir", "run"],
     ["1,438 training samples, 359 validation", "netspec train: 1 epochs; best val_accuracy"],
     ["run/best.keras", "run/history.csv"]),
]


@pytest.mark.parametrize("args, says, writes", COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_installed_command_runs_outside_the_repository(venv, workdir, args, says, writes):
    proc = run([bin_dir(venv) / "netspec", *args], cwd=workdir, env=netspec_env())
    for text in says:
        assert text in proc.stdout, f"netspec {' '.join(args)}: {text!r} not in\n{proc.stdout}\n{proc.stderr}"
    for name in writes:
        assert (workdir / name).is_file(), f"netspec {' '.join(args)} did not write {name}"
