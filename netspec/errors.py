"""The error model: one base class, stage subclasses, source locations and JSON paths."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence



@dataclass(frozen=True)
class Location:
    """A 1-based position in a spec file."""

    file: str | None
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file or '<spec>'}:{self.line}:{self.column}"


def json_path(path: Iterable[str | int]) -> str:
    """Render a key/index path as a JSON path: ``("nodes", 3, "units")`` -> ``$.nodes[3].units``."""
    out = ["$"]
    for elem in path:
        if isinstance(elem, int):
            out.append(f"[{elem}]")
        elif elem.isidentifier():
            out.append(f".{elem}")
        else:
            out.append(f"[{elem!r}]")
    return "".join(out)


def short(value: object, limit: int = 60) -> str:
    """A bounded repr for untrusted values quoted in messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def format_bytes(n: float) -> str:
    """A byte count for messages: ``1.5 GiB``, ``588.0 KiB``, ``12 bytes``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n)} bytes"


def did_you_mean(name: object, candidates: Iterable[str], n: int = 1) -> str | None:
    """The closest candidate to ``name``, for "did you mean" hints; None when nothing is close."""
    if not isinstance(name, str) or len(name) > 200:
        return None
    cands = list(candidates)
    lowered = {c.lower(): c for c in cands}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return lowered[name.lower()]
    matches = difflib.get_close_matches(name, cands, n=n, cutoff=0.6)
    if not matches:
        matches = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
    return matches[0] if matches else None


class NetspecError(Exception):
    """Base of every user-facing error: a message, a JSON path and a source location.

    Args:
        message: what is wrong, ending in what was received where useful.
        path: keys and indices from the document root to the offending value.
        location: where in the YAML file the offending value starts.
        hint: a fix suggestion ("did you mean 'Dense'?").
        more: how many further errors were found but not shown.
        more_at_least: ``more`` is a lower bound: the search stopped there (schema issues are bounded).
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        path: Sequence[str | int] = (),
        location: Location | None = None,
        hint: str | None = None,
        more: int = 0,
        more_at_least: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.location = location
        self.hint = hint
        self.more = more
        self.more_at_least = more_at_least

    @property
    def json_path(self) -> str:
        return json_path(self.path)

    @property
    def file(self) -> str | None:
        return self.location.file if self.location else None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None

    @property
    def column(self) -> int | None:
        return self.location.column if self.location else None

    def __str__(self) -> str:
        head = f"{self.location}: " if self.location else ""
        where = f"{self.json_path}: " if self.path else ""
        text = f"{head}{where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.more and self.more_at_least:
            text += f"\n  (more than {self.more} other errors not shown)"
        elif self.more:
            text += f"\n  ({self.more} more error{'s' if self.more > 1 else ''} not shown)"
        return text

    def to_dict(self) -> dict:
        """The error as plain data for ``--format json``."""
        return {
            "kind": self.kind,
            "message": self.message,
            "path": self.json_path,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
            "more": self.more,
            "more_at_least": self.more_at_least,
        }


class SpecSyntaxError(NetspecError):
    """The file is not acceptable YAML (or breaks a loader rule)."""

    kind = "syntax"


class SchemaError(NetspecError):
    """The document does not match the JSON Schema."""

    kind = "schema"


class ResolveError(NetspecError):
    """Params, blocks, repeat, refs or names cannot be resolved."""

    kind = "resolve"


class ExpressionError(NetspecError):
    """A ``${...}`` or ``expr:`` expression is not allowed or cannot be evaluated.

    Args:
        offset: the character offset of the problem in the expression's text (or its YAML string);
            None while not yet known (``offset`` reads 0 and ``located`` False until it is set).
        **kwargs: as for :class:`NetspecError`.
    """

    kind = "expression"
    offset: int  # character offset in the expression (or YAML string) text
    located: bool  # whether ``offset`` was given, or is still the default 0

    def __init__(self, message: str, *, offset: int | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.offset = 0 if offset is None else offset
        self.located = offset is not None


class ShapeError(NetspecError):
    """Keras could not build a node on the shapes it receives."""

    kind = "shape"


class PluginError(NetspecError):
    """A user layer class or plugin cannot be registered or loaded."""

    kind = "plugin"


def hint_for(name: object, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint for ``name`` among ``candidates``, or None."""
    match = did_you_mean(name, candidates)
    return f"did you mean {match!r}?" if match else None


# -- core errors (expressions, source) -------------------------------------------------------------


class CostError(ExpressionError):
    """An expression value or intermediate is over one of the size limits."""


class ModelFileError(NetspecError):
    """A ``.keras`` file that netspec refuses to hand to Keras (or that Keras could not load)."""

    kind = "model"


# -- train and data errors -------------------------------------------------------------------------


class TrainError(NetspecError):
    """The train section cannot be used as written."""

    kind = "train"


class DataError(NetspecError):
    """The data does not exist or does not fit the model."""

    kind = "data"


# -- export errors ---------------------------------------------------------------------------------


class ExportError(NetspecError):
    """A target cannot be resolved, a model cannot be converted, or an export fails its gate."""

    kind = "export"


class GateError(ExportError):
    """The export did not pass the verification gate; nothing was written. ``report`` has the figures.

    Args:
        message: why the gate failed (the first failing check, and where the export diverges).
        report: the export's :class:`netspec.export.report.ExportReport` (typed ``Any``: errors sit
            below export), with the gate's figures; ``--format json`` prints it.
    """

    kind = "gate"
    report: Any

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


# -- import and plot errors -------------------------------------------------------------------------


class ModelImportError(NetspecError):
    """A Keras model (or one of its layers) cannot be written as a spec."""

    kind = "import"


class ImportVerifyError(ModelImportError):
    """An imported spec that does not compile back to the source architecture (a bug to report)."""


class PlotError(NetspecError):
    """A picture netspec will not draw: too big for plot or for PNG, or PNG without matplotlib."""

    kind = "plot"


# -- deployment errors ------------------------------------------------------------------------------


class ContractError(NetspecError):
    """A deployment contract (preprocessing, labels) that is malformed, or that an input does not meet."""

    kind = "contract"


class ArtifactError(NetspecError):
    """An exported file (``.onnx``, ``.tflite``, ``.keras``, OpenVINO ``.xml``) that cannot be read, or
    whose netspec metadata is malformed, over a cap, or disagrees with itself (``inspect --spec``)."""

    kind = "artifact"


# -- deploy errors ---


class OutputError(NetspecError):
    """A file a command was told to write cannot be written there (a directory, a file in the way, no permission)."""

    kind = "output"


# Patterns of native runtimes' messages (compiled on first use: this module imports nothing heavy, not even re).
_NATIVE_NOISE = (r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:|While validating node .*"
                 r"|Exception encountered when calling [\w.]+\(\)\.)$")
_ANSI = r"\x1b\[[0-9;]*m"  # Keras bolds its messages for a terminal
_CALL_NOISE = r"Exception encountered when calling [\w.]+\(\)\.\s*"
_NO_NAME = r" with name 'None'"  # InputSpec errors name the input tensor, which has none here
_ORT_CODE = r"\[ONNXRuntimeError\] : \d+ : \w+ : "
_SOURCE_LINE = r"\S+\.(?:cc|cpp|cxx|c|h|hpp):\d+:?\s*"
_SIGNATURE = (r"^(?:virtual\s+)?[\w:<>*&\s,]*?\w+::~?\w+\([^)]*\)(?:\s*const)?\s*|^[A-Z][A-Za-z0-9_]+ (?=[A-Z])")


def native_message(error: BaseException | str, limit: int = 200) -> str:
    """The first meaningful line of a native runtime's message (onnxruntime, OpenVINO, LiteRT), for a user.

    Their messages carry the C++ source file and line they were raised at, the function's signature
    and a chain of ``Exception from ...`` frames: none of it says what is wrong with the file. This keeps
    the sentence that does (``Unsupported model IR version: 14, max supported IR version: 13``), with
    the node it names, replaces temporary paths, and bounds the length.
    """
    import re
    import tempfile

    text = re.sub(_ANSI, "", str(error))
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    meaningful = [s for s in lines if not re.match(_NATIVE_NOISE, s)]
    text = (meaningful or lines or [type(error).__name__ if isinstance(error, BaseException) else ""])[0]
    text = re.sub(_ORT_CODE, "", text)
    marks = list(re.finditer(_SOURCE_LINE, text))
    if marks:
        head, tail = text[:marks[0].start()], text[marks[-1].end():]
        text = head + re.sub(_SIGNATURE, "", tail, count=1)
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/\S*", "<temporary file>", text)
    text = " ".join(text.split()) or "no message"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def keras_message(e: BaseException, limit: int = 400) -> str:
    """Keras's message without terminal colours, call-site boilerplate or argument dumps."""
    import re

    text = re.sub(_ANSI, "", str(e)).split("Arguments received by")[0]
    text = " ".join(re.sub(_NO_NAME, "", re.sub(_CALL_NOISE, "", text)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
