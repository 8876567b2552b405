"""``netspec predict``: raw inputs -> the artifact's contract -> its runtime -> labelled answers.

Which file feeds which input: for a model with one input, every INPUT is a file for it. For a model
with several, each INPUT is ``NAME=FILE`` (``NAME`` an input of the artifact) and the k-th file of
every input are paired (their sample counts must agree), or one ``.npz`` file holds an array per input
name. A file gives one sample (an image, a ``.npy`` of the input's shape) or several (a ``.npy``/``.npz``
batch, CSV rows): each is predicted and reported as ``FILE`` or ``FILE[i]``.

Each sample goes through the contract (:mod:`netspec.contract`): images are converted and resized,
then :meth:`~netspec.contract.Preprocess.feed` applies the numeric steps, unless the artifact's stamped
contract marks them ``included`` (an export with ``include_preprocess``): it then takes the raw values.
Arrays are raw samples as well (what an image file would hold), so the same steps apply to them. An output with one score per class along its last axis is reported as its
top-k classes (the contract's ``labels``, else indices); ``raw`` reports every output as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ContractError, DataError
from ..source.kerasfile import display as shown
from ..train.datafiles import data_budget
from .inputs import read_samples, to_model
from .runtimes import Artifact

MAX_TOP_K = 1000


@dataclass(frozen=True)
class Assignment:
    """The files for each input: ``files[name][k]`` is the k-th file of input ``name``."""

    files: dict[str, list[str]]

    @property
    def groups(self) -> int:
        return len(next(iter(self.files.values())))


@dataclass
class Row:
    """One sample's answer: where it came from and each output's values for it."""

    file: str  # as given
    index: int | None  # the sample's index in the file (None: the file holds one sample)
    outputs: dict[str, np.ndarray]

    @property
    def source(self) -> str:
        """The file (bounded for a terminal), with ``[i]`` for a sample of a batch."""
        return shown(self.file) + (f"[{self.index}]" if self.index is not None else "")


def assign(artifact: Artifact, items: list[str]) -> Assignment:
    """Which file feeds which input (see the module docstring).

    Raises:
        DataError: a multi-input model got a file without ``NAME=``, or inputs with different file counts.
    """
    names = [p.name for p in artifact.inputs]
    files: dict[str, list[str]] = {n: [] for n in names}
    for item in items:
        name, sep, rest = item.partition("=")
        if sep and name in files:
            files[name].append(rest)
        elif len(names) == 1:
            files[names[0]].append(item)
        elif item.lower().endswith(".npz"):
            for n in names:
                files[n].append(item)
        else:
            raise DataError(f"{shown(artifact.path)} has {len(names)} inputs ({', '.join(names)}): give each file as "
                            f"NAME=FILE, or one .npz with an array per input. Received: {shown(item)}")
    counts = {n: len(f) for n, f in files.items()}
    if len(set(counts.values())) != 1 or not next(iter(counts.values())):
        raise DataError("every input needs the same number of files (the k-th files are paired). Received: "
                        + ", ".join(f"{n}: {c}" for n, c in counts.items()))
    return Assignment(files)


def predict(artifact: Artifact, items: list[str]) -> list[Row]:
    """Read ``items``, apply the contract, run the artifact; one :class:`Row` per sample.

    Raises:
        DataError, ContractError: an input does not fit (named with its file), or the runtime fails.
    """
    plan = assign(artifact, items)
    budget = data_budget()
    feeds: dict[str, list[np.ndarray]] = {p.name: [] for p in artifact.inputs}
    sources: list[tuple[str, int | None]] = []
    for k in range(plan.groups):
        counts = {}
        for port in artifact.inputs:
            path = plan.files[port.name][k]
            pre = artifact.preprocess(port.name)
            raw = read_samples(path, port, pre, budget=budget)
            budget -= raw.nbytes
            feeds[port.name].append(to_model(raw, port, pre, f"the samples of {shown(path)}"))
            counts[path] = len(raw)
        if len(set(counts.values())) != 1:
            raise DataError("paired files give different numbers of samples: "
                            + ", ".join(f"{shown(f)}: {n}" for f, n in counts.items()))
        first = plan.files[artifact.inputs[0].name][k]
        n = next(iter(counts.values()))
        sources += [(first, None)] if n == 1 else [(first, i) for i in range(n)]
    x = {name: np.concatenate(parts) for name, parts in feeds.items()}
    y = artifact.run(x)
    for name in artifact.outputs:  # NaN scores would print as an answer and sort as the best class
        values = np.asarray(y[name])
        if values.dtype.kind == "f" and not bool(np.isfinite(values).all()):
            i = int(np.argwhere(~np.isfinite(values))[0][0])
            f, j = sources[i]
            raise DataError(f"{shown(artifact.path)} gives output {name!r} values that are not finite (NaN or "
                            f"infinite) for {Row(f, j, {}).source}: the model's arithmetic overflowed on this input "
                            "(values far outside what it was trained on, or a model that was changed)")
    return [Row(f, j, {name: y[name][i] for name in artifact.outputs}) for i, (f, j) in enumerate(sources)]


def labels_of(artifact: Artifact, output: str, classes: int) -> tuple[str, ...] | None:
    """The contract's labels of an output, checked against its number of classes."""
    entry = artifact.contract.outputs.get(output)
    labels = entry.labels if entry is not None else None
    if labels is not None and len(labels) != classes:
        raise ContractError(f"the contract of {shown(artifact.path)} names {len(labels)} labels for output "
                            f"{output!r}, which has {classes} classes")
    return labels


def is_scores(values: np.ndarray) -> bool:
    """One score per class: a 1-D output of more than one value."""
    return values.ndim == 1 and values.size > 1


def top_k(values: np.ndarray, k: int, labels: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The ``k`` highest classes, best first: ``{"label", "index", "score"}``."""
    order = np.argsort(-values.astype(np.float64), kind="stable")[:k]
    return [{"label": labels[i] if labels else str(int(i)), "index": int(i), "score": float(values[i])}
            for i in order]


def report(artifact: Artifact, rows: list[Row], k: int, raw: bool) -> tuple[str, dict]:
    """(text, JSON data) of the predictions: top-k labels with scores, or the raw outputs."""
    lines: list[str] = []
    entries: list[dict] = []
    multi = len(artifact.outputs) > 1
    for row in rows:
        parts, data = [], {}
        for name, values in row.outputs.items():
            values = np.asarray(values)
            if raw or not is_scores(values):
                data[name] = {"values": values.tolist(), "shape": list(values.shape)}
                text = np.array2string(values, precision=4, threshold=64, separator=", ").replace("\n", "")
            else:
                best = top_k(values, k, labels_of(artifact, name, values.size))
                data[name] = {"top": best}
                text = "  ".join(f"{b['label']} ({b['score']:.3f})" for b in best)
            parts.append(f"{name}: {text}" if multi else text)
        lines.append(f"{row.source}  " + ("; ".join(parts)))
        entries.append({"input": row.file, "index": row.index, "outputs": data})
    head = f"{shown(artifact.path)} ({artifact.runtime}" + (", preprocessing folded in" if artifact.folded else "") + ")"
    return head + "\n" + "\n".join(lines), {
        "ok": True, "artifact": artifact.path, "kind": artifact.kind, "runtime": artifact.runtime,
        "folded": artifact.folded, "predictions": entries}
