"""User layers from installed packages: the ``netspec.layers`` entry-point group, trusted by being
installed, so a spec names their classes without ``plugins:`` or ``--trust-plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT

PLUGIN = textwrap.dedent("""\
    import keras
    import netspec

    @netspec.register_layer
    class DoubleIt(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}
    """)

SPEC = textwrap.dedent("""\
    netspec: 1
    name: uses_installed_plugin
    inputs: {x: [3]}
    nodes:
      - {name: twice, type: DoubleIt, factor: 3.0}
    """)


def install(site: Path, module: str, source: str, entry: str) -> None:
    """A minimal installed distribution: the module and a dist-info with the entry point."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[netspec.layers]\n{entry} = {module}\n")


def run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=site, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_installed_plugin_is_used_without_trust_flag(site):
    install(site, "netspec_demo_plugin", PLUGIN, "demo")
    proc = run(site, "check", "spec.yaml", "--format", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads(proc.stdout)["nodes"]}
    assert rows["twice"]["type"] == "DoubleIt" and rows["twice"]["output_shape"] == [None, 3]


def test_installed_plugin_arguments_are_checked(site):
    install(site, "netspec_demo_plugin", PLUGIN, "demo")
    (site / "spec.yaml").write_text(SPEC.replace("factor: 3.0", "factr: 3.0"))
    proc = run(site, "validate", "spec.yaml")
    assert proc.returncode == 1
    assert "unknown argument 'factr' for DoubleIt" in proc.stderr and "did you mean 'factor'?" in proc.stderr


def test_broken_installed_plugin_is_named(site):
    install(site, "netspec_broken_plugin", "raise RuntimeError('boom')\n", "broken")
    proc = run(site, "validate", "spec.yaml")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "installed plugin 'broken' (netspec_broken_plugin) failed to load" in proc.stderr
    assert "Traceback" not in proc.stderr
