"""Run one hostile case (tests/hostile/<case>.yaml) as `python -m netspec` would, in a subprocess, and judge it.

A case is a YAML file with ``# key: value`` comment headers at the top (the format of
/work/notes/helper-brief.md, kept in ``HEADERS``). ``run_case`` copies the case (and its ``files:``)
into a fresh directory /tmp/netspec_case_*/case, runs the command there with HOME and TMPDIR inside
that directory, RLIMIT_AS = 4 GiB and a 30 s timeout, and returns an ``Outcome``. ``failures`` lists
every reason the outcome breaks the case's promise; an empty list is a pass.

Witnesses that watch the child:
- a ``sitecustomize`` put first on its PYTHONPATH (after running the one legitimate command, the
  ``uname -p`` of platform.uname(), whose answer platform caches) replaces os.system, os.popen,
  os.exec*, os.spawn*, os.posix_spawn* and subprocess.Popen: a call creates
  /tmp/netspec_sentinel_<pid> (with the caller's file:line) and is refused; payloads aim at the same
  marker, so a payload that writes it directly is caught too;
- the same ``sitecustomize`` installs an audit hook that records every file the child opens for
  writing (or creates, renames, removes) outside its directory;
- the child gets its own /tmp where the machine allows a mount namespace (root here and in CI): a
  directory of its own bound over /tmp, with the case directory bound at its usual path inside, so
  anything it writes in /tmp, even below Python (TensorFlow's C++), is seen, and nothing other
  processes write there is blamed on it. Elsewhere (or with NETSPEC_HARNESS_SHARED_TMP=1) the real
  /tmp is listed before and after instead, which other processes writing to /tmp at the same time
  can disturb;
- ``git status --porcelain`` of the repository before and after.
The child reports the NetspecError's ``kind`` and netspec's own seconds (interpreter start-up and the
TensorFlow import of commands that build are not netspec's) in a JSON file beside the case directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import importlib.util
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import comment_headers

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HOSTILE_DIR = TESTS / "hostile"
SETUPS_DIR = TESTS / "hostile_setups"

HEADERS = ("expect", "command", "args", "setup", "exit", "kind", "files", "generate", "stage", "dos")
COMMANDS = ("validate", "check", "build", "train", "export", "import", "plot", "predict")
VALIDATE_SECONDS = 2.0  # netspec's own time for `validate` on one hostile case
TIMEOUT = 30.0  # wall time of every command, interpreter and TensorFlow start-up included
MEMORY_LIMIT = 4 << 30  # RLIMIT_AS of the child
MESSAGE_LIMIT = 4000  # characters of stderr for a refused case: untrusted text is not echoed unbounded
SENTINEL_GLOB = "netspec_sentinel_*"
REAL_TMP = Path("/tmp")
CASE_PREFIX = "netspec_case_"
# /tmp entries the harness does not own or judge: pytest's base temp dirs and the case dirs themselves.
IGNORED_TMP = re.compile(rf"(pytest-of-.*|{CASE_PREFIX}.*|netspec_sentinel_.*)\Z")


def marker(pid: int | None = None) -> Path:
    """The file a code-execution payload (or the child's sentinel) creates."""
    return REAL_TMP / f"netspec_sentinel_{pid or os.getpid()}"


# -- the case ----------------------------------------------------------------------------------


class CaseFormatError(ValueError):
    """A case file's headers break the format (a bug in the case, not in netspec)."""


@dataclass(frozen=True)
class Case:
    """One hostile case, as its headers describe it."""

    path: Path
    command: str = "validate"
    exit: int = 1
    expect: str | None = None
    kind: str | None = None
    args: str = ""
    setup: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    generate: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @classmethod
    def read(cls, path: Path) -> Case:
        """The case in ``path``; raises CaseFormatError on a malformed or misspelt header."""
        h = comment_headers(path, HEADERS)
        _no_misspelt_headers(path)
        command = h.get("command") or h.get("stage") or "validate"
        if command == "load":  # the old in-process stage: what `validate` does first
            command = "validate"
        if command not in COMMANDS:
            raise CaseFormatError(f"{path.name}: unknown command {command!r} (one of {', '.join(COMMANDS)})")
        if h.get("exit", "1") not in ("0", "1"):
            raise CaseFormatError(f"{path.name}: exit must be 0 or 1, not {h['exit']!r}")
        exit_code = int(h.get("exit", "1"))
        if exit_code == 1 and not h.get("expect"):
            raise CaseFormatError(f"{path.name}: a case that must fail needs an '# expect:' fragment")
        if h.get("dos", "true") != "true":
            raise CaseFormatError(f"{path.name}: dos takes only 'true' (every case runs in a subprocess)")
        files = tuple(h.get("files", "").split())
        for f in files:
            if "/" in f or not (HOSTILE_DIR / f).is_file():
                raise CaseFormatError(f"{path.name}: files: {f!r} is not a file in tests/hostile/")
        setup = tuple(shlex.split(h.get("setup", "")))
        if setup and not re.fullmatch(r"[a-z_][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*", setup[0]):
            raise CaseFormatError(f"{path.name}: setup must start with module.function, not {setup[0]!r}")
        if "generate" in h and h["generate"].split()[0] not in GENERATORS:
            raise CaseFormatError(f"{path.name}: unknown generate op {h['generate']!r}")
        return cls(path=path, command=command, exit=exit_code, expect=h.get("expect") or None,
                   kind=h.get("kind") or None, args=h.get("args", ""), setup=setup, files=files,
                   generate=h.get("generate"))


def _no_misspelt_headers(path: Path) -> None:
    # A misspelt key (`# excpect:`) would silently drop a check; free comments (`# why: ...`) stay allowed.
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        m = re.match(r"#\s*([a-z_]+):", line)
        if m and m.group(1) not in HEADERS:
            close = difflib.get_close_matches(m.group(1), HEADERS, n=1, cutoff=0.75)
            if close:
                raise CaseFormatError(f"{path.name}: unknown header {m.group(1)!r}; did you mean {close[0]!r}?")


def all_cases(directory: Path = HOSTILE_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


# -- materializing the case in its directory ----------------------------------------------------


def _pad_bytes(text: str, n: int) -> str:
    pad = "# " + "x" * 1000 + "\n"
    return text + pad * (max(0, n - len(text)) // len(pad) + 1)


def _append_nodes(text: str, n: int) -> str:
    return text + "  - {type: ReLU}\n" * n


GENERATORS = {"pad-bytes": _pad_bytes, "append-nodes": _append_nodes}  # the big file is written at test time


_SETUP_MODULES: dict[str, object] = {}


def setup_function(qualname: str):
    """``module.function`` of tests/hostile_setups/<module>.py, loaded by path (tests/ is no package)."""
    module_name, _, func = qualname.partition(".")
    if module_name not in _SETUP_MODULES:
        path = SETUPS_DIR / f"{module_name}.py"
        if not path.is_file():
            raise CaseFormatError(f"setup module {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"hostile_setups_{module_name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SETUP_MODULES[module_name] = module
    try:
        return getattr(_SETUP_MODULES[module_name], func)
    except AttributeError:
        raise CaseFormatError(f"tests/hostile_setups/{module_name}.py has no function {func!r}") from None


def materialize(case: Case, tmp: Path) -> Path:
    """Copy the case and its files into ``tmp``, generate and set up; returns the path to pass as <spec>."""
    spec = tmp / case.path.name
    text = case.path.read_text(encoding="utf-8", errors="surrogateescape")
    if case.generate:
        op, n = case.generate.split()
        spec.write_text(GENERATORS[op](text, int(n)), encoding="utf-8", errors="surrogateescape")
    else:
        shutil.copyfile(case.path, spec)
    for f in case.files:
        shutil.copyfile(case.path.parent / f, tmp / f)
    if case.setup:
        replaced = setup_function(case.setup[0])(tmp, spec, *case.setup[1:])
        if replaced is not None:
            spec = Path(replaced)
    return spec


# -- the child ----------------------------------------------------------------------------------

# Put first on the child's PYTHONPATH as sitecustomize.py: refuses and records process creation, and
# records writes outside the case directory (Python-level; the /tmp and git snapshots see the rest).
SITECUSTOMIZE = r'''
import os, platform, subprocess, sys

# TensorFlow's import asks platform.uname() for the processor, which runs `uname -p`: that one command
# runs here, before the sentinel, and stays cached in platform's own uname cache.
platform.uname().processor
_CASE = os.path.realpath(os.environ["NETSPEC_CASE_DIR"])
WRITES = []


def _fire(what):
    import traceback
    where = " <- ".join("%s:%d" % (os.path.basename(f.filename), f.lineno)
                        for f in reversed(traceback.extract_stack()[-6:-2]))
    try:
        with open("/tmp/netspec_sentinel_%d" % os.getpid(), "a") as f:
            f.write("%s from %s\n" % (what, where))
    except OSError:
        pass
    raise PermissionError(what + " is disabled by the netspec hostile-test sentinel")


def _refuse(name):
    def refuse(*args, **kwargs):
        _fire("os." + name)
    return refuse


for _name in ("system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
              "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
              "posix_spawn", "posix_spawnp"):
    if hasattr(os, _name):
        setattr(os, _name, _refuse(_name))


# Exact argument lists that libraries run on their own: matplotlib's font discovery when its cache
# (in the case's fresh HOME) is built. Fixed argv, no shell: nothing a payload could aim at a marker.
_ALLOWED = [["fc-list", "--help"], ["fc-list", "--format=%{file}\\n"]]
_popen_init_orig = subprocess.Popen.__init__


def _popen_init(self, *args, **kwargs):
    argv = args[0] if args else kwargs.get("args")
    if isinstance(argv, (list, tuple)) and list(argv) in _ALLOWED:
        return _popen_init_orig(self, *args, **kwargs)
    self._child_created = False  # so Popen.__del__ stays quiet
    _fire("subprocess.Popen %.100r" % (argv,))


subprocess.Popen.__init__ = _popen_init

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate",
                "os.chmod", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
_busy = False


def _outside(path):
    if isinstance(path, int):
        return None
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return repr(path)[:200]
    if p == _CASE or p.startswith(_CASE + os.sep) or p.startswith("/dev/") or os.path.basename(p).startswith(
            "netspec_sentinel_"):
        return None
    return p


def _audit(event, args):
    global _busy
    if _busy or not args:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if not writing:
            return
    elif event not in _PATH_EVENTS:
        return
    _busy = True
    try:
        for path in (args[:2] if event in ("os.rename", "os.symlink", "os.link", "shutil.copyfile", "shutil.move")
                     else args[:1]):
            where = _outside(path)
            if where and len(WRITES) < 20:
                WRITES.append("%s %s" % (event, where))
    finally:
        _busy = False


sys.addaudithook(_audit)
'''

# Run as `python -c RUNNER report.json <command> <spec> <args...>`: netspec.cli.app.main exactly as
# `python -m netspec` calls it, plus the error's kind and netspec's own seconds in the report.
RUNNER = r'''
import dataclasses, json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
import importlib
from netspec.cli.options import quiet_tensorflow
from netspec.errors import NetspecError

cli = importlib.import_module("netspec.cli.app")
if argv[0] != "validate":
    quiet_tensorflow()  # TensorFlow's import time is not netspec's (and keeps its chatter out)
seen = {}
table = cli.commands


def commands():
    def wrap(run):
        def run_and_record(args):
            try:
                return run(args)
            except NetspecError as e:
                seen["kind"] = e.kind
                raise
        return run_and_record
    return {name: dataclasses.replace(c, run=wrap(c.run)) for name, c in table().items()}


cli.commands = commands
start = time.perf_counter()
try:
    rc = cli.main(argv)
except SystemExit as e:  # argparse's usage errors
    rc = e.code if isinstance(e.code, int) else 2
seconds = time.perf_counter() - start
import sitecustomize
sitecustomize._busy = True  # the report is the harness's own write
with open(report, "w") as f:
    json.dump({"seconds": seconds, "kind": seen.get("kind"), "tensorflow": "tensorflow" in sys.modules,
               "writes": sitecustomize.WRITES}, f)
sys.stdout.flush()
sys.stderr.flush()
os._exit(rc)  # no interpreter teardown: TensorFlow's atexit work is not the case's time
'''


def _preexec(tmp_view: Path | None, binds: tuple[Path, ...] = ()):
    """What the child does between fork and exec: limits, its own process group, a private /tmp.

    With ``tmp_view``, the child's /tmp is that directory, with ``binds`` (directories under the real
    /tmp: the case's and the harness's) bound at their usual paths inside it, so whatever the child
    writes anywhere else in /tmp lands in ``tmp_view``, apart from other processes' noise.
    """
    libc = ctypes.CDLL(None, use_errno=True) if tmp_view else None
    mounts = [(bytes(d), bytes(tmp_view / d.relative_to(REAL_TMP)), _MS_BIND) for d in binds if tmp_view]
    if tmp_view is not None:
        mounts.append((bytes(tmp_view), b"/tmp", _MS_BIND | _MS_REC))

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        os.setsid()  # its own process group, so a timeout kills everything it started
        if tmp_view is not None:
            if libc.unshare(_CLONE_NEWNS) or libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None):
                os._exit(97)
            for source, target, flags in mounts:
                if libc.mount(source, target, None, flags, None):
                    os._exit(98)

    return preexec


_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 0x1000, 0x4000, 0x40000


def _probe_private_tmp() -> bool:
    """Whether this machine lets the child have its own mount namespace (root, or CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        return False
    root = Path(tempfile.mkdtemp(prefix=CASE_PREFIX + "probe_", dir=REAL_TMP))
    try:
        (root / "view" / root.name / "work").mkdir(parents=True)
        (root / "work").mkdir()
        probe = f"open('/tmp/probe', 'w').close(); open('{root}/work/seen', 'w').close()"
        r = subprocess.run([sys.executable, "-c", probe], cwd=root / "work", check=False, capture_output=True,
                           preexec_fn=_preexec(root / "view", (root / "work",)))
        return r.returncode == 0 and (root / "view" / "probe").exists() and (root / "work" / "seen").exists()
    except OSError:
        return False
    finally:
        shutil.rmtree(root, ignore_errors=True)


_PRIVATE_TMP: list[bool] = []  # probed once, on the first case


def private_tmp() -> bool:
    if not _PRIVATE_TMP:
        _PRIVATE_TMP.append(os.environ.get("NETSPEC_HARNESS_SHARED_TMP") != "1" and _probe_private_tmp())
    return _PRIVATE_TMP[0]


def child_env(tmp: Path, harness: Path) -> dict[str, str]:
    """The child's environment: HOME, TMPDIR and caches inside ``tmp``; netspec from this tree."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NETSPEC_", "PYTHON", "TF_CONFIG")) and k not in ("KERAS_HOME", "MPLCONFIGDIR")}
    env.update(
        HOME=str(tmp / "home"), TMPDIR=str(tmp / "tmp"), XDG_CACHE_HOME=str(tmp / "home" / ".cache"),
        PYTHONPATH=os.pathsep.join([str(harness), str(ROOT)]), PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", NETSPEC_CASE_DIR=str(tmp),
    )
    return env


# -- what the harness sees ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What one run of a case did."""

    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    wall: float  # seconds, interpreter start-up included
    seconds: float | None  # netspec's own, measured in the child
    kind: str | None  # the NetspecError's kind, if one was raised
    tensorflow: bool | None  # whether the child imported TensorFlow
    sentinel: list[str] = field(default_factory=list)  # markers that appeared, with their contents
    outside: list[str] = field(default_factory=list)  # files written outside the case directory

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _entries(tmp_dir: Path, skip: re.Pattern | None = None) -> set[str]:
    return {n for n in os.listdir(tmp_dir) if not (skip and skip.match(n))}


def _markers(tmp_dir: Path) -> dict[str, str]:
    out = {}
    for p in tmp_dir.glob(SENTINEL_GLOB):
        try:
            out[p.name] = p.read_text(errors="replace")[:300]
        except OSError:
            out[p.name] = ""
    return out


def _git_status() -> set[str]:
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                       text=True, check=False)
    return set(r.stdout.splitlines())


def _view_files(view: Path, mountpoints: tuple[Path, ...]) -> list[str]:
    """Everything the child left in its private /tmp, as /tmp paths (the mount points and their parents aside)."""
    skip = {view / d.relative_to(REAL_TMP) for d in mountpoints}
    skip |= {p for d in list(skip) for p in d.parents}
    out = []
    for dirpath, dirnames, filenames in os.walk(view):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p not in skip and not p.name.startswith("netspec_sentinel_"):
                out.append("/tmp/" + str(p.relative_to(view)))
    return sorted(out)[:20]


# Cases run concurrently only where each child has its own /tmp: with the shared /tmp listed before and
# after, concurrent cases would blame each other for what they write. (Git changes are failures of every
# case that saw them; no passing case writes any.) Two at a time halves the corpus's wall time on 2 cores.
WORKERS = max(1, int(os.environ.get("NETSPEC_HOSTILE_WORKERS", "2")))
_LOCK = threading.Lock()
_SLOTS = threading.BoundedSemaphore(WORKERS)


def concurrent_workers() -> int:
    """How many cases may run at once on this machine (1 without a private /tmp per child)."""
    return WORKERS if private_tmp() else 1


def run_case(case: Case, *, extra_args: tuple[str, ...] = (), keep: bool = False) -> Outcome:
    """Run ``case`` in a fresh directory under /tmp and return what it did (see the module docstring).

    Args:
        case: the case to run.
        extra_args: appended to the case's ``args`` (the harness's own controls use ``--trust-plugins``).
        keep: leave the case directory in place (for debugging).
    """
    with (_SLOTS if concurrent_workers() > 1 else _LOCK):
        root = Path(tempfile.mkdtemp(prefix=CASE_PREFIX + case.name[:40] + "_", dir=REAL_TMP)).resolve()
        try:
            return _run_in(case, root, extra_args)
        finally:
            if not keep:
                shutil.rmtree(root, ignore_errors=True)


def _run_in(case: Case, root: Path, extra_args: tuple[str, ...]) -> Outcome:
    tmp = root / "case"  # {tmp}: the case's directory, its cwd, HOME and TMPDIR
    harness = root / "harness"  # sitecustomize.py and the report, outside the case's reach by name
    view = root / "tmp" if private_tmp() else None  # the child's /tmp
    for d in (tmp, harness, tmp / "home", tmp / "tmp"):
        d.mkdir()
    if view is not None:
        for d in (tmp, harness):
            (view / d.relative_to(REAL_TMP)).mkdir(parents=True)
    (harness / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    report = harness / "report.json"
    spec = materialize(case, tmp)
    spec_arg = str(spec.relative_to(tmp)) if spec.is_relative_to(tmp) else str(spec)
    args = [a.replace("{tmp}", str(tmp)).replace("{spec}", spec_arg) for a in shlex.split(case.args)]
    argv = [sys.executable, "-c", RUNNER, str(report), case.command, spec_arg, *args, *extra_args]

    watched = view or REAL_TMP
    markers_before = _markers(REAL_TMP)
    tmp_before = set() if view else _entries(REAL_TMP, IGNORED_TMP)
    git_before = _git_status()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=tmp, env=child_env(tmp, harness), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_preexec(view, (tmp, harness)))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        returncode = None
    wall = time.perf_counter() - start

    # Markers: in the child's own /tmp; without one, any that appeared in the real /tmp while the case ran.
    if view:
        new_markers = _markers(view)
        new_markers.update({k: v for k, v in _markers(REAL_TMP).items() if k == marker(proc.pid).name})
    else:
        new_markers = {k: v for k, v in _markers(REAL_TMP).items() if k not in markers_before}
    for name in new_markers:
        (watched / name).unlink(missing_ok=True)
        (REAL_TMP / name).unlink(missing_ok=True)
    if view:
        outside = _view_files(view, (tmp, harness))
    else:
        outside = sorted(f"/tmp/{n}" for n in _entries(REAL_TMP, IGNORED_TMP) - tmp_before)
    outside += sorted(f"git: {line}" for line in _git_status() - git_before)
    try:
        rep = json.loads(report.read_text())
    except (OSError, ValueError):
        rep = {}
    outside += rep.get("writes", [])
    return Outcome(returncode=returncode, stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                   wall=wall, seconds=rep.get("seconds"), kind=rep.get("kind"), tensorflow=rep.get("tensorflow"),
                   sentinel=[f"{k}: {v.strip()}" for k, v in new_markers.items()], outside=outside)


def failures(case: Case, out: Outcome) -> list[str]:
    """Every way ``out`` breaks the promise of ``case``; empty when the case passes."""
    tail = out.output[-1500:]
    bad = []
    if out.returncode is None:
        bad.append(f"no answer within {TIMEOUT:.0f}s (killed)")
    elif out.returncode < 0:
        bad.append(f"killed by signal {signal.Signals(-out.returncode).name}")
    elif out.returncode != case.exit:
        bad.append(f"exit {out.returncode}, expected {case.exit}")
    if "Traceback" in out.output:
        bad.append("printed a traceback")
    if out.sentinel:
        bad.append(f"code execution: sentinel fired ({'; '.join(out.sentinel)})")
    if out.outside:
        bad.append(f"wrote outside its directory: {', '.join(out.outside[:10])}")
    if case.expect and case.expect not in out.output:
        bad.append(f"expected fragment not in the output: {case.expect!r}")
    if case.kind and out.returncode == 1 and out.kind != case.kind:
        bad.append(f"error kind {out.kind!r}, expected {case.kind!r}")
    if case.exit == 1 and len(out.stderr) > MESSAGE_LIMIT:
        bad.append(f"{len(out.stderr)} characters of error output: untrusted text echoed unbounded?")
    if case.command == "validate":
        if out.tensorflow:
            bad.append("validate imported TensorFlow")
        if out.seconds is not None and out.seconds >= VALIDATE_SECONDS:
            bad.append(f"validate took {out.seconds:.2f}s of netspec's time (limit {VALIDATE_SECONDS:.0f}s)")
    if bad:
        bad.append(f"output tail:\n{tail}")
    return bad


def summary(case: Case, out: Outcome) -> str:
    """One line for the test log."""
    own = f"{out.seconds:.3f}s" if out.seconds is not None else "?"
    first = (out.stderr.strip() or out.stdout.strip()).splitlines()[:1]
    return f"{case.name}: {case.command} exit {out.returncode} netspec {own} wall {out.wall:.1f}s [{out.kind}] " + (
        first[0][:120] if first else "")


class InProcessSentinel:
    """Records (and refuses) os.system, os.popen and subprocess.Popen calls made in this process while armed.

    For in-process tests (the payload control, the fuzz test); the subprocess runs use SITECUSTOMIZE.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    @contextlib.contextmanager
    def armed(self):
        calls = self.calls

        def fake_system(cmd):
            calls.append(("os.system", (cmd,)))
            return 0

        def fake_popen(cmd, *a, **k):
            calls.append(("os.popen", (cmd,)))
            raise OSError("os.popen is disabled by the netspec hostile-spec sentinel")

        def fake_init(self, *a, **k):
            self._child_created = False
            calls.append(("subprocess.Popen", a))
            raise OSError("subprocess.Popen is disabled by the netspec hostile-spec sentinel")

        saved = os.system, os.popen, subprocess.Popen.__init__
        os.system, os.popen, subprocess.Popen.__init__ = fake_system, fake_popen, fake_init
        try:
            yield self
        finally:
            os.system, os.popen, subprocess.Popen.__init__ = saved

    def assert_clean(self) -> None:
        calls, self.calls[:] = list(self.calls), []
        assert not calls, f"hostile input ran a command: {calls!r}"
        assert not marker().exists(), f"hostile input created {marker()}"
