"""``netspec evaluate``: the spec's metrics for several artifacts of one model, side by side, on held-out data.

The spec (its ``train:`` data and metrics) comes from ``--spec``, else from the first artifact that
is a spec or carries the resolved spec its export stamped (``netspec.spec``, checked against
``netspec.spec_sha256``). The data is the spec's validation data (``validation_split`` or
``validation``), or ``--data``: a data source written as in ``train.data`` (a YAML flow mapping such as
``{source: npz, path: d.npz, x: images, y: labels}``, or a bare ``.npz``/``.csv`` path with the default
keys), all of whose samples are used unless it has its own ``validation_split``/``validation``.

That data is in the model's domain (what the Keras model takes), so it is fed to every artifact as it
is; an artifact with the preprocessing folded in takes raw inputs instead, and is refused unless
``raw=True`` says the data is raw (then the contract's numeric steps are applied for the others).

Where a stamped spec's data paths lead: into the artifact's directory tree (confined there as a spec's
paths are to the spec's tree), or into ``--data-root DIR``; never into the directory the unhashed
``netspec.source`` entry names.
Metrics are built from the ``train.metrics`` entries as training builds them (string identifiers
resolved as ``model.compile`` resolves them) and updated batch by batch on each artifact's outputs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from ..errors import ContractError, DataError, NetspecError, short
from ..source.kerasfile import display as shown
from .inputs import to_model
from .runtimes import Artifact

PROGRESS_AFTER_S = 2.0


@dataclass
class Column:
    """One artifact's results: metric name -> value, and its time."""

    artifact: Artifact
    metrics: dict[str, float]
    seconds: float

    def to_dict(self, first: Column | None) -> dict[str, Any]:
        change = {k: v - first.metrics[k] for k, v in self.metrics.items()} if first is not None else None
        a = self.artifact
        return {"artifact": a.path, "kind": a.kind, "runtime": a.runtime, "folded": a.folded,
                "metrics": self.metrics, "change": change, "seconds": round(self.seconds, 3)}


@dataclass
class Evaluation:
    """The table: what was evaluated on which data."""

    spec: str
    data: str
    samples: int
    columns: list[Column] = field(default_factory=list)

    def text(self) -> str:
        names = list(self.columns[0].metrics) if self.columns else []
        head = ["artifact", "runtime", *names, "time"]
        rows = []
        first = self.columns[0] if self.columns else None
        for col in self.columns:
            cells = [shown(col.artifact.path), col.artifact.runtime]
            for name in names:
                value = col.metrics[name]
                delta = "" if col is first or first is None else f" ({value - first.metrics[name]:+.4f})"
                cells.append(f"{value:.4f}{delta}")
            cells.append(f"{col.seconds:.2f} s")
            rows.append(cells)
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = [f"evaluate on {self.samples:,} samples of {self.data} (spec {self.spec}); change against the first"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        first = self.columns[0] if self.columns else None
        return {"ok": True, "spec": self.spec, "data": self.data, "samples": self.samples,
                "artifacts": [c.to_dict(first if c is not first else None) for c in self.columns]}


# -- the spec and its data ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpecSource:
    """The spec evaluation reads: as written (plain data), its params, and where its data paths start."""

    data: dict
    params: dict
    directory: str | None
    loaded: Any = None  # the Spec itself, when it was loaded from its file
    plugins: tuple[str, ...] = ()  # the stored spec's plugins:, left out: they never run


def evaluation_spec(artifacts: list[Artifact], spec_path: str | None, trust_plugins: bool = False) -> SpecSource:
    """The spec whose train: section names the data and metrics (see the module docstring).

    ``trust_plugins`` runs the ``plugins:`` of ``spec_path``, a file the user named; a stamped spec's never run.

    Raises:
        DataError: no spec was given and no artifact carries one.
        ArtifactError: a stamped spec without its hash, not matching it, or not netspec's JSON.
    """
    from ..spec import load

    if spec_path:
        return _of(load(spec_path, trust_plugins=trust_plugins))
    for a in artifacts:
        if a.spec is not None:
            return _of(a.spec)
        if "netspec.spec" in a.metadata:
            return stamped_spec(a)
    raise DataError("none of the artifacts carries its spec (netspec.spec metadata), so there is no train: "
                    "section to take the data and metrics from",
                    hint="name the spec with --spec FILE (and the data with --data if it has no validation data)")


def _of(spec: Any) -> SpecSource:
    return SpecSource(spec.data, dict(spec.graph.params),
                      os.path.dirname(os.path.abspath(spec.path)) if spec.path else None, spec)


def stamped_spec(artifact: Artifact) -> SpecSource:
    """The resolved spec an export stamped into ``artifact``, its hash checked; its data paths start in
    the artifact's own directory (``--data-root DIR`` instead, when given).

    Never in the directory of ``netspec.source``: that entry is outside the hashed spec, so anyone can
    edit it, and a stranger's file naming ``/`` or ``/home/you`` as its source would make its data paths
    (which the hash does cover, but which the stranger wrote) read the user's files there.
    """
    from ..contract import read_spec_stamp

    data, params, _ = read_spec_stamp(artifact.metadata, artifact.shown)
    plugins = data.pop("plugins", None) or []  # a stranger's file names them: their classes come from --plugins
    return SpecSource(data, params, os.path.dirname(os.path.abspath(artifact.path)),
                      plugins=tuple(str(p) for p in plugins) if isinstance(plugins, list) else (str(plugins),))


def evaluation_data(source: SpecSource, data: str | None, data_root: str | None) -> tuple[Any, Any, str]:
    """(the spec, arrays with ``.x`` and ``.y``, a description): the spec's validation data, or ``--data``.

    Raises:
        DataError: the data is missing, unreadable, does not fit the model, or has no labels.
    """
    from ..spec import load
    from ..train.data import load_arrays

    try:
        if data is None:
            spec = source.loaded if source.loaded is not None and data_root is None else load(
                json.dumps(_document(source)), params=source.params, data_root=data_root or source.directory)
            arrays = load_arrays(spec, "validation")
            what = "the spec's validation data"
        else:
            spec, part = _with_data(source, data, data_root)
            arrays = load_arrays(spec, part)
            what = shown(data)
    except NetspecError as e:
        if source.plugins and e.path[:1] in (("nodes",), ("blocks",)):
            named = ", ".join(short(p) for p in source.plugins[:3]) + (", ..." if len(source.plugins) > 3 else "")
            e.hint = (f"the spec stored in the artifact names plugins ({named}), which a stored spec never runs: "
                      "load its layer classes with --plugins FILE_OR_MODULE, from code you trust")
        elif data is None and source.loaded is None and e.path[:2] == ("train", "data") and e.hint is None:
            base = "--data-root" if data_root else "the artifact's directory"
            e.hint = (f"the data paths of a spec stored in an artifact start in {base} "
                      f"({shown(data_root or source.directory or '.')}); name the spec file itself with "
                      "--spec FILE, or the data's directory with --data-root DIR")
        raise
    if arrays.y is None:
        raise DataError(f"{what} has no labels (y) to score the artifacts against")
    return spec, arrays, what


def _document(source: SpecSource) -> dict:
    """The spec's data to load again, without ``plugins:``: a loaded spec's ran when it was trusted, and a
    stored spec's never run (the classes come from ``--plugins``)."""
    return {k: v for k, v in source.data.items() if k != "plugins"}


def _with_data(source: SpecSource, data: str, data_root: str | None) -> tuple[Any, Literal["train", "validation"]]:
    """The spec with ``train.data`` replaced by the ``--data`` source (paths relative to the working directory)."""
    from ..source.loader import load_yaml
    from ..spec import load

    lower = data.lower()
    if lower.endswith((".npz", ".csv")) and not data.lstrip().startswith("{"):
        # a file named on the command line is the user's choice: its directory is a data root
        data_root = os.path.dirname(os.path.abspath(data))
        new: Any = {"source": lower[-3:], "path": os.path.basename(data)}
    else:
        new = load_yaml(data, "--data").data
        if not isinstance(new, dict):
            raise DataError(f"--data takes a .npz or .csv file or a data source mapping as in train.data. "
                            f"Received: {shown(data)}")
    document = json.loads(json.dumps(_document(source), default=str))
    # only what scoring reads: callbacks and checkpoint may monitor validation data the new source lacks
    train = document.get("train") or {}
    document["train"] = {**{k: train[k] for k in ("loss", "metrics", "batch_size") if k in train}, "data": new}
    part: Literal["train", "validation"] = "validation" if "validation_split" in new or "validation" in new else "train"
    return load(json.dumps(document), params=source.params, data_root=data_root or os.getcwd()), part


# -- metrics --------------------------------------------------------------------------------------


def metrics_for(spec: Any, arrays: Any) -> dict[str, list[tuple[str, Any]]]:
    """Output name -> [(column name, the checked ``train.metrics`` entry)] for the outputs the data labels."""
    from ..train.config import train_config

    config = train_config(spec)
    multi = len(config.outputs) > 1
    out = {output: [(f"{output}/{o.log_name(spec.catalog)}" if multi else o.log_name(spec.catalog), o) for o in objs]
           for output, objs in config.metrics.items() if arrays.y and output in arrays.y and objs}
    if not out:
        raise DataError("the spec's train: section names no metrics for outputs the data labels",
                        hint="add train.metrics (for example [accuracy])")
    return out


def build_metric(obj: Any, y_true: np.ndarray, y_pred: np.ndarray) -> Any:
    """A fresh keras metric, built as ``model.compile`` builds it from the train: entry ``obj``."""
    import keras

    from ..train.session import build_object

    built = build_object(obj)
    if not isinstance(built, str):
        return built
    if built.lower() in ("accuracy", "acc"):
        # keras.src.trainers.compile_utils.get_metric's rule, on the label and output shapes
        if y_pred.shape[-1] == 1:
            return keras.metrics.BinaryAccuracy(name=built)
        if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1 and y_pred.shape[-1] > 1:
            return keras.metrics.SparseCategoricalAccuracy(name=built)
        return keras.metrics.CategoricalAccuracy(name=built)
    metric = keras.metrics.get(built)
    if not isinstance(metric, keras.metrics.Metric):
        metric = keras.metrics.MeanMetricWrapper(metric, name=built)
    return metric


# -- the run --------------------------------------------------------------------------------------


def feed_for(artifact: Artifact, x: dict[str, np.ndarray], raw: bool) -> dict[str, np.ndarray]:
    """The data as ``artifact`` takes it (see the module docstring).

    Raises:
        ContractError: the artifact folds the preprocessing in and the data is in the model's domain.
        DataError: an input is missing from the data.
    """
    if artifact.folded and not raw:
        raise ContractError(f"{artifact.shown} has the preprocessing folded in (include_preprocess): it takes raw "
                            "inputs, and the spec's data is in the model's domain (already preprocessed)",
                            hint="evaluate it on raw data: --data with raw samples and --raw-data")
    out = {}
    for port in artifact.inputs:
        if port.name not in x:
            raise DataError(f"the data has no samples for input {port.name!r} of {artifact.shown}; it has "
                            + ", ".join(map(repr, x)))
        pre = artifact.preprocess(port.name) if raw else None
        out[port.name] = to_model(np.asarray(x[port.name]), port, pre, f"the data of input {port.name!r}")
    return out


def evaluate(artifacts: list[Artifact], spec: Any, arrays: Any, what: str, *, raw: bool = False,
             batch_size: int = 64, progress: Callable[[str], Callable[[int, int], None]] | None = None) -> Evaluation:
    """The spec's metrics for each artifact on ``arrays`` (see the module docstring)."""
    builders = metrics_for(spec, arrays)
    result = Evaluation(spec=shown(spec.path or spec.name), data=what, samples=len(arrays))
    for artifact in artifacts:
        missing = [o for o in builders if o not in artifact.outputs]
        if missing:
            raise DataError(f"{artifact.shown} has no output {missing[0]!r} (it has {', '.join(artifact.outputs)}); "
                            "the artifacts must be exports of the spec's model")
        x = feed_for(artifact, arrays.x, raw)
        start = time.perf_counter()
        y = artifact.run(x, batch_size, progress(artifact.shown) if progress else None)
        seconds = time.perf_counter() - start
        values: dict[str, float] = {}
        for output, entries in builders.items():
            pred = y[output]
            truth = np.asarray(arrays.y[output])
            for name, obj in entries:
                metric = build_metric(obj, truth, pred)
                for s in range(0, len(pred), batch_size):  # in batches, as Keras's evaluate updates them
                    metric.update_state(truth[s:s + batch_size], pred[s:s + batch_size])
                values[name] = float(np.asarray(metric.result()))
        result.columns.append(Column(artifact, values, seconds))
    return result


class Progress:
    """A one-line progress bar on stderr: drawn only on a terminal, and only once a run passes 2 seconds."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def __call__(self, label: str) -> Callable[[int, int], None]:
        start = time.perf_counter()

        def tick(done: int, total: int) -> None:
            if not self.on or time.perf_counter() - start < PROGRESS_AFTER_S and not self.drawn:
                return
            self.drawn = True
            filled = int(30 * done / max(total, 1))
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{label[:40]} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}{end}")
            self.stream.flush()
            if end:
                self.drawn = False

        return tick
