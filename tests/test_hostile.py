"""The hostile-spec corpus (tests/hostile/*.yaml): every file must fail with a NetspecError, fast,
with its expected message (and kind), and without running any code.

A case starts with comment lines:
    # expect: fragment of the NetspecError message
    # stage: check                      (optional; default: load)
    # kind: syntax|schema|resolve|...   (optional; the error's ``kind``)
    # dos: true                         (optional; run through the CLI in a subprocess with limits)
    # generate: pad-bytes N | append-nodes N   (optional; the big file is written at test time)

Code-execution payloads target the marker file /tmp/netspec_sentinel_<pid>; a session fixture
patches os.system, os.popen and subprocess.Popen to record calls. After every case there must be
no recorded call and no marker.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import netspec

from conftest import comment_headers

HOSTILE_DIR = Path(__file__).resolve().parent / "hostile"
CASES = sorted(HOSTILE_DIR.glob("*.yaml"))
TIME_LIMIT = 2.0  # seconds for netspec's own work on one hostile spec
MEMORY_LIMIT = 4 << 30  # RLIMIT_AS of the DoS subprocesses

# Real bugs found by the corpus: kept, marked strict xfail (see the final report).
XFAIL: dict[str, str] = {}  # stem -> reason, for real bugs the corpus finds before they are fixed


def headers(path: Path) -> dict[str, str]:
    return comment_headers(path, ("expect", "stage", "kind", "dos", "generate", "command", "exit"))


def materialize(path: Path, tmp_path: Path) -> Path:
    """The file to load: the case itself, or its generated big version (not committed)."""
    gen = headers(path).get("generate")
    if not gen:
        return path
    op, n = gen.split()
    n = int(n)
    text = path.read_text(encoding="utf-8")
    if op == "pad-bytes":
        pad = "# " + "x" * 1000 + "\n"
        text += pad * (max(0, n - len(text)) // len(pad) + 1)
    elif op == "append-nodes":
        text += "  - {type: ReLU}\n" * n
    else:
        raise AssertionError(f"unknown generate op {op!r} in {path.name}")
    out = tmp_path / path.name
    out.write_text(text, encoding="utf-8")
    return out


def _params(dos: bool):
    out = []
    for p in CASES:
        if (headers(p).get("dos") == "true") != dos:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[p.stem])] if p.stem in XFAIL else []
        out.append(pytest.param(p, id=p.stem, marks=marks))
    return out


def marker(pid: int | None = None) -> Path:
    return Path(f"/tmp/netspec_sentinel_{pid or os.getpid()}")


class Sentinel:
    """Records calls to os.system, os.popen and subprocess.Popen made while it is armed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self._local = threading.local()

    def allowed(self) -> bool:
        return getattr(self._local, "allow", False)

    def allow(self):
        sentinel = self

        class _Allow:
            def __enter__(self):
                sentinel._local.allow = True

            def __exit__(self, *exc):
                sentinel._local.allow = False

        return _Allow()

    def assert_clean(self, *pids: int) -> None:
        calls, self.calls = self.calls, []
        assert not calls, f"hostile spec ran a command: {calls!r}"
        for pid in (os.getpid(), *pids):
            assert not marker(pid).exists(), f"hostile spec created {marker(pid)}"


@pytest.fixture(scope="module")
def sentinel(keras):  # keras imported first: its import time is not measured
    s = Sentinel()
    orig_system, orig_popen, orig_init = os.system, os.popen, subprocess.Popen.__init__

    def fake_system(cmd):
        s.calls.append(("os.system", (cmd,)))
        return 0

    def fake_popen(cmd, *a, **k):
        s.calls.append(("os.popen", (cmd,)))
        raise OSError("os.popen is disabled by the netspec hostile-spec sentinel")

    def fake_init(self, *a, **k):
        if not s.allowed():
            s.calls.append(("subprocess.Popen", a))
            raise OSError("subprocess.Popen is disabled by the netspec hostile-spec sentinel")
        return orig_init(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "system", fake_system)
        mp.setattr(os, "popen", fake_popen)
        mp.setattr(subprocess.Popen, "__init__", fake_init)
        yield s
    assert os.system is orig_system and os.popen is orig_popen


def test_corpus_is_big_enough():
    assert len(CASES) >= 45
    stems = {p.stem for p in CASES}
    for prefix in ("tag_", "interp_", "expr_", "type_", "objarg_", "plugin_", "dos_", "misconf_"):
        assert any(s.startswith(prefix) for s in stems), prefix
    for p in CASES:
        assert "expect" in headers(p), p.name


def test_sentinel_detects_code_execution(sentinel, tmp_path):
    """Positive control: the plugin payload, when trusted, trips both halves of the sentinel."""
    try:
        netspec.load(HOSTILE_DIR / "plugin_py_file_untrusted.yaml", trust_plugins=True)
        assert marker().exists()
        assert sentinel.calls and sentinel.calls[0][0] == "os.system"
    finally:
        marker().unlink(missing_ok=True)
        sentinel.calls.clear()
        for name in [m for m in sys.modules if m.startswith("netspec_plugin_sentinel_plugin")]:
            del sys.modules[name]


@pytest.mark.parametrize("path", _params(dos=False))
def test_hostile(path: Path, sentinel, tmp_path):
    exp = headers(path)
    stage = exp.get("stage", "load")
    if exp.get("command", "validate") not in ("validate", "check") or exp.get("exit") == "0":
        pytest.skip("a CLI case (command/exit headers): run by the subprocess harness")
    target = materialize(path, tmp_path)
    sentinel.assert_clean()
    start = time.perf_counter()
    err = None
    try:
        spec = netspec.load(target)
        spec.validate()  # what `netspec validate` adds: the train: and export: sections
        if stage == "check":
            spec.check()
    except netspec.NetspecError as e:
        err = e
    except BaseException as e:  # noqa: BLE001 - anything else escaping is the bug we look for
        pytest.fail(f"{type(e).__name__} escaped instead of a NetspecError: {e!s:.300}")
    finally:
        elapsed = time.perf_counter() - start
        sentinel.assert_clean()
    assert err is not None, f"{path.name} was accepted at stage {stage!r}"
    print(f"{path.stem}: {elapsed:.3f}s [{err.kind}] {err.message[:100]}")
    assert exp["expect"] in err.message, str(err)
    if "kind" in exp:
        assert err.kind == exp["kind"], str(err)
    assert len(str(err)) < 2000, "untrusted text echoed unbounded into the message"
    assert elapsed < TIME_LIMIT, f"{path.name} took {elapsed:.2f}s"


_RUNNER = r"""
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
stage, path = sys.argv[1], sys.argv[2]
if stage == "check":
    import keras  # noqa: F401 - TensorFlow's import time is not netspec's
import netspec.cli
start = time.perf_counter()
rc = netspec.cli.main(["check" if stage == "check" else "validate", path])
sys.stderr.write("\nNETSPEC_SECONDS=%.3f\n" % (time.perf_counter() - start))
sys.exit(rc)
"""


def _limits():  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("path", _params(dos=True))
def test_hostile_dos(path: Path, sentinel, tmp_path):
    exp = headers(path)
    stage = exp.get("stage", "load")
    target = materialize(path, tmp_path)
    timeout = 90 if stage == "check" else 30
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "tensorflow"))
    start = time.perf_counter()
    with sentinel.allow():
        proc = subprocess.Popen([sys.executable, "-c", _RUNNER, stage, str(target)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_limits, env=env,
                                cwd=str(Path(__file__).resolve().parent.parent))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{path.name}: no answer within {timeout}s (hang)")
    wall = time.perf_counter() - start
    sentinel.assert_clean(proc.pid)
    m = re.search(r"NETSPEC_SECONDS=([0-9.]+)", err)
    seconds = float(m.group(1)) if m else float("nan")
    print(f"{path.stem}: netspec {seconds:.3f}s, subprocess {wall:.1f}s, exit {proc.returncode}")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 1, f"exit {proc.returncode}: {err[-2000:]}"
    assert exp["expect"] in err, err[-2000:]
    assert seconds < TIME_LIMIT, f"{path.name}: netspec took {seconds:.2f}s"
