"""The hostile-spec corpus (tests/hostile/*.yaml): every case runs as `python -m netspec <command>` in a
subprocess and must exit as its headers say (1: a located NetspecError with the expected fragment; 0: a
clean success), fast, without a traceback, without running any code and without writing outside its
temporary directory.

A case starts with comment lines (the format of /work/notes/helper-brief.md; tests/hostile_runner.py
reads and runs them):
    # expect: fragment of the output (required when exit is 1)
    # command: validate | check | build | train | export | import | plot   (default validate;
    #          the older `# stage: check` means the same)
    # args: extra CLI arguments, shlex-split; {tmp} = the case's directory, {spec} = the spec path
    # setup: module.function arg...    (tests/hostile_setups/<module>.py, called before the run)
    # exit: 1 (default) or 0
    # kind: syntax|schema|resolve|expression|plugin|...   (optional; the NetspecError's kind)
    # files: sibling files of tests/hostile/ copied beside the case (space separated)
    # generate: pad-bytes N | append-nodes N   (the big file is written at test time)
    # dos: true                          (accepted, no longer needed: every case is a subprocess)

The child runs under RLIMIT_AS = 4 GiB with a 30 s timeout; `validate` must spend under 2 s of
netspec's own time. The harness's own controls (test_harness_*) prove each witness fires.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import netspec

import hostile_runner as hr

CASES = hr.all_cases()
TIMES: dict[str, float] = {}  # case -> wall seconds, for the slowest-cases line of the log

# Real bugs found by the corpus: kept, marked strict xfail (see the final report).
XFAIL: dict[str, str] = {}  # stem -> reason, for real bugs the corpus finds before they are fixed


def _params():
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[p.stem])]
                         if p.stem in XFAIL else []) for p in CASES]


def test_corpus_is_big_enough():
    assert len(CASES) >= 45
    stems = {p.stem for p in CASES}
    for prefix in ("tag_", "interp_", "expr_", "type_", "objarg_", "plugin_", "dos_", "misconf_"):
        assert any(s.startswith(prefix) for s in stems), prefix


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_headers_are_well_formed(path: Path):
    hr.Case.read(path)  # raises CaseFormatError naming the header


# Outcomes of the selected cases, run ahead in a pool of hr.concurrent_workers() (2 where each child has its
# own /tmp) in collection order; each test waits for its own. Serial where the machine allows only one.
_AHEAD: dict[str, Future] = {}
_STARTED: list[bool] = []


def _outcome(request: pytest.FixtureRequest, case: hr.Case) -> hr.Outcome:
    workers = hr.concurrent_workers()
    if workers > 1 and not _STARTED:
        _STARTED.append(True)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="hostile")
        for item in request.session.items:
            if getattr(item, "originalname", None) == "test_hostile" and item.module is sys.modules[__name__]:
                path = item.callspec.params["path"]
                _AHEAD[path.stem] = pool.submit(hr.run_case, hr.Case.read(path))
        pool.shutdown(wait=False)
    ahead = _AHEAD.pop(case.name, None)
    return ahead.result() if ahead is not None else hr.run_case(case)


@pytest.mark.parametrize("path", _params())
def test_hostile(request: pytest.FixtureRequest, path: Path):
    case = hr.Case.read(path)
    out = _outcome(request, case)
    TIMES[case.name] = out.wall
    print(hr.summary(case, out))
    bad = hr.failures(case, out)
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


def test_report_slowest_cases():
    """Not a check: the slowest cases of this run, for the log (-rA or -s)."""
    slow = sorted(TIMES.items(), key=lambda kv: -kv[1])[:8]
    print("slowest hostile cases (wall s): " + ", ".join(f"{k} {v:.1f}" for k, v in slow))
    print(f"{len(TIMES)} cases, {sum(TIMES.values()):.1f}s of subprocess wall time")


# -- the in-process sentinel (kept as a positive control of the payload itself) --------------------


@pytest.fixture
def sentinel(keras):  # keras imported first: its import time is not measured
    with hr.InProcessSentinel().armed() as s:
        yield s


def test_sentinel_detects_code_execution(sentinel):
    """Positive control: the plugin payload, when trusted, trips both halves of the sentinel."""
    try:
        netspec.load(hr.HOSTILE_DIR / "plugin_py_file_untrusted.yaml", trust_plugins=True)
        assert hr.marker().exists()
        assert sentinel.calls and sentinel.calls[0][0] == "os.system"
    finally:
        hr.marker().unlink(missing_ok=True)
        sentinel.calls.clear()
        for name in [m for m in sys.modules if m.startswith("netspec_plugin_sentinel_plugin")]:
            del sys.modules[name]


# -- the harness's own controls: each witness must fire on a trusted plugin that misbehaves -------

CONTROL_SPEC = """\
# expect: never printed: the plugin misbehaves first
netspec: 1
name: control
plugins: [control_plugin.py]
inputs:
  x: [4]
nodes:
  - {type: Dense, units: 2}
"""
REPO_FILE = hr.ROOT / f"netspec_harness_control_{os.getpid()}.txt"
TMP_FILE = hr.REAL_TMP / f"netspec_harness_control_{os.getpid()}"

# (id, plugin source, fragment of the failure the harness must report)
CONTROLS = [
    ("popen", "import subprocess\nsubprocess.run(['true'])\n", "sentinel fired (netspec_sentinel_"),
    ("os_system", "import os\nos.system('true')\n", "os.system"),
    ("execv", "import os\nos.execv('/bin/true', ['true'])\n", "os.execv"),
    ("marker_written", "import os\nopen(f'/tmp/netspec_sentinel_{os.getpid()}', 'w').write('ran')\n",
     "sentinel fired"),
    ("write_repo", f"open({str(REPO_FILE)!r}, 'w').write('x')\n", f"git: ?? {REPO_FILE.name}"),
    ("write_tmp", f"open({str(TMP_FILE)!r}, 'w').write('x')\n", f"/tmp/{TMP_FILE.name}"),
    ("write_tmp_below_python",  # a write the audit hook cannot see: only the /tmp snapshot does
     f"import ctypes\nctypes.CDLL(None).fopen({str(TMP_FILE).encode()!r}, b'w')\n", f"/tmp/{TMP_FILE.name}"),
    ("signal", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "killed by signal SIGSEGV"),
    ("memory",  # RLIMIT_AS: the allocation fails in the child (exit 7), the machine is not asked for 5 GiB;
     # os._exit, which nothing catches (netspec reports a plugin's SystemExit as a PluginError, exit 1)
     "import os\ntry:\n    x = bytearray(5 << 30)\nexcept MemoryError:\n    os._exit(7)\n", "exit 7, expected 1"),
    ("traceback", "import sys\nsys.stderr.write('Traceback (most recent call last):\\n')\n", "printed a traceback"),
]


@pytest.mark.parametrize("source,fragment", [pytest.param(s, f, id=i) for i, s, f in CONTROLS])
def test_harness_detects(tmp_path, source, fragment):
    """The witnesses fire: a trusted plugin that runs a command, writes outside, crashes or allocates."""
    (tmp_path / "harness_control.yaml").write_text(CONTROL_SPEC)
    (tmp_path / "control_plugin.py").write_text(source)
    case = hr.Case(path=tmp_path / "harness_control.yaml", files=("control_plugin.py",),
                   expect="never printed")
    try:
        out = hr.run_case(case, extra_args=("--trust-plugins",))
    finally:
        REPO_FILE.unlink(missing_ok=True)
        TMP_FILE.unlink(missing_ok=True)
    bad = hr.failures(case, out)
    assert any(fragment in b for b in bad), "\n".join(bad) or "the harness saw nothing wrong"


def test_harness_detects_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(hr, "TIMEOUT", 2.0)
    (tmp_path / "harness_control.yaml").write_text(CONTROL_SPEC)
    (tmp_path / "control_plugin.py").write_text("import time\ntime.sleep(60)\n")
    case = hr.Case(path=tmp_path / "harness_control.yaml", files=("control_plugin.py",), expect="x")
    start = time.perf_counter()
    out = hr.run_case(case, extra_args=("--trust-plugins",))
    assert time.perf_counter() - start < 15
    assert any("no answer within 2s" in b for b in hr.failures(case, out))


def test_harness_detects_slow_validate(tmp_path, monkeypatch):
    monkeypatch.setattr(hr, "VALIDATE_SECONDS", 0.0)
    case = hr.Case.read(hr.HOSTILE_DIR / "harness_legal_spec.yaml")
    assert any("validate took" in b for b in hr.failures(case, hr.run_case(case)))


def test_harness_detects_wrong_exit_kind_and_fragment(tmp_path):
    case = hr.Case.read(hr.HOSTILE_DIR / "harness_legal_spec.yaml")
    out = hr.run_case(case)
    assert hr.failures(case, out) == []
    wrong = hr.Case(path=case.path, exit=1, expect="no such text", kind="schema")
    bad = "\n".join(hr.failures(wrong, out))
    assert "exit 0, expected 1" in bad and "no such text" in bad


def test_harness_reads_the_child_kind():
    case = hr.Case.read(hr.HOSTILE_DIR / "plugin_py_file_untrusted.yaml")
    out = hr.run_case(case)
    assert out.kind == "plugin" and hr.failures(case, out) == []
    wrong = hr.Case(path=case.path, expect=case.expect, kind="schema")
    assert any("error kind 'plugin', expected 'schema'" in b for b in hr.failures(wrong, out))


def test_harness_rejects_misspelt_headers(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("# excpect: something\nnetspec: 1\n")
    with pytest.raises(hr.CaseFormatError, match="did you mean 'expect'"):
        hr.Case.read(p)
    p.write_text("# expect: x\n# exit: 3\nnetspec: 1\n")
    with pytest.raises(hr.CaseFormatError, match="exit must be 0 or 1"):
        hr.Case.read(p)
