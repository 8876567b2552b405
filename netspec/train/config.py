"""Check a spec's ``train:`` section beyond the schema and turn it into a plain ``TrainConfig`` (no Keras).

The schema has already typed every value and every argument of every whitelisted class; here the
names are checked against the whitelists (``netspec.train.names``), the keys of per-output mappings
against the model's outputs, monitors against the names Keras will log, and the data section
against the files it names. Every error is located at its YAML line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import names as N
from .datacheck import DataConfig, data_config
from ..errors import TrainError, format_bytes, hint_for, short

if TYPE_CHECKING:
    from ..graph import Graph
    from ..schema.catalog import Catalog
    from ..source.loader import Document

DEFAULT_BATCH_SIZE = 32
DEFAULT_OPTIMIZER = "adam"


class SpecView(Protocol):
    """What the train stage reads of a :class:`netspec.Spec` (a protocol, because the facade
    ``netspec.spec`` sits above this stage and is not imported here)."""

    document: Document
    graph: Graph
    catalog: Catalog

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str | None: ...

    def section(self, key: str) -> Any: ...

    def build(self, budget: Any = None) -> Any: ...


@dataclass(frozen=True)
class Obj:
    """A whitelisted Keras object as the spec wrote it: a string identifier, or a class with arguments."""

    kind: str  # optimizer | lrSchedule | loss | metric | callback
    name: str  # the identifier or class name, as written
    args: dict
    path: tuple  # where it was written
    is_class: bool

    def log_name(self, catalog) -> str:
        """The key Keras logs a metric under (its ``name`` argument, the class default, or the string)."""
        if not self.is_class:
            return self.name
        if "name" in self.args:
            return self.args["name"]
        return catalog.schema["$defs"][f"metric.{self.name}"]["properties"]["name"]["default"]


@dataclass(frozen=True)
class TrainConfig:
    """The train section, checked, with defaults filled in."""

    data: DataConfig
    validation: DataConfig | None
    validation_split: float | None
    batch_size: int
    epochs: int
    steps_per_epoch: int | None
    optimizer: Obj
    losses: dict  # output name -> Obj (outputs without a loss are absent)
    loss_weights: dict | None  # output name -> float
    metrics: dict  # output name -> [Obj]
    callbacks: list
    monitor: str
    monitor_mode: str  # "min" | "max"
    seed: int | None
    mixed_precision: str | None  # a dtype policy name
    distribute: str  # none | mirrored | multi_worker
    outputs: tuple  # output names, in order
    log_names: frozenset = field(default_factory=frozenset)


# ---------------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, spec) -> None:
        self.spec = spec
        self.source = spec.document.source
        self.outputs = tuple(name for name, _ in spec.graph.outputs)
        self.inputs = tuple(d.name for d in spec.graph.inputs)

    def error(self, message: str, path: tuple, *, hint: str | None = None, at_key: bool = False) -> TrainError:
        location = self.source.key(path) if at_key else self.source.value(path)
        return TrainError(message, path=path, location=location, hint=hint)

    # -- named objects ---------------------------------------------------------------------

    def obj(self, kind: str, value: Any, path: tuple) -> Obj:
        classes, strings = _WHITELISTS[kind]
        if isinstance(value, str):
            if value in strings or value in classes and kind != "metric":
                return Obj(kind, value, {}, path, is_class=value in classes)
            raise self._unknown(kind, value, path, list(strings) + list(classes))
        name = value["type"]
        if name not in classes:
            raise self._unknown(kind, name, path + ("type",), list(classes))
        args = _integers(self.spec.catalog.schema["$defs"][f"{kind}.{name}"],
                         {k: v for k, v in value.items() if k != "type"})
        if kind == "optimizer" and isinstance(args.get("learning_rate"), dict):
            schedule = self.obj("lrSchedule", args["learning_rate"], path + ("learning_rate",))
            args["learning_rate"] = {"type": schedule.name, **schedule.args}
        if kind == "metric":
            self.metric_state(name, args, path)
        return Obj(kind, name, args, path, is_class=True)

    def metric_state(self, name: str, args: dict, path: tuple) -> None:
        """A metric's variables are paid for before Keras allocates them (``trainnames.metric_state``)."""
        found = N.metric_state(name, args)
        if found is None or found[0] <= N.MAX_METRIC_STATE_BYTES:
            return
        size, arg, what = found
        key = next((k for k in ("num_classes", "num_thresholds", "thresholds") if k in args), None)
        raise self.error(f"{name} with {arg} keeps {what} ({format_bytes(size)} of state); netspec allows "
                         f"{format_bytes(N.MAX_METRIC_STATE_BYTES)} per metric", path + ((key,) if key else ()))

    def _unknown(self, kind: str, name: str, path: tuple, known: list[str]) -> TrainError:
        label = {"lrSchedule": "learning-rate schedule"}.get(kind, kind)
        if kind == "callback" and name in N.REFUSED_CALLBACKS:
            return self.error(f"{name} cannot be used in a spec: {N.REFUSED_CALLBACKS[name]}", path)
        if kind == "metric" and name in N.METRICS:
            return self.error(f"a metric class is written as a mapping: {{type: {name}}}. Received: {name!r}", path)
        offered = sorted(set(known), key=str.lower)
        listing = ", ".join(offered) if len(offered) <= 16 else "see the whitelists in docs/training.md"
        return self.error(f"unknown {label} {short(name)}; netspec offers: {listing}", path, hint=hint_for(name, known))

    # -- per-output mappings ---------------------------------------------------------------

    def output_key(self, key: str, path: tuple) -> None:
        if key not in self.outputs:
            raise self.error(f"{short(key)} is not an output of the model; its outputs are: {', '.join(self.outputs)}",
                             path, hint=hint_for(key, self.outputs), at_key=True)

    def losses(self, value: Any) -> dict:
        if value is None:
            raise self.error("train needs a loss, e.g. loss: sparse_categorical_crossentropy", ("train",))
        if isinstance(value, dict) and "type" not in value:
            out = {}
            for key, item in value.items():
                self.output_key(key, ("train", "loss", key))
                out[key] = self.obj("loss", item, ("train", "loss", key))
            return out
        # One loss for every output, as Keras applies it.
        one = self.obj("loss", value, ("train", "loss"))
        return {name: one for name in self.outputs}

    def loss_weights(self, value: Any, losses: dict) -> dict | None:
        if value is None:
            return None
        path = ("train", "loss_weights")
        if isinstance(value, list):
            if len(value) != len(self.outputs):
                raise self.error(f"loss_weights has {len(value)} entries for {len(self.outputs)} outputs "
                                 f"({', '.join(self.outputs)}); give one per output or a mapping by output name", path)
            return dict(zip(self.outputs, (float(v) for v in value)))
        for key in value:
            self.output_key(key, path + (key,))
            if key not in losses:
                raise self.error(f"output {key!r} has a loss weight but no loss", path + (key,), at_key=True)
        return {k: float(v) for k, v in value.items()}

    def metrics(self, value: Any) -> dict:
        out: dict[str, list[Obj]] = {name: [] for name in self.outputs}
        if value is None:
            return out
        if isinstance(value, list):  # the same metrics for every output
            items = [self.obj("metric", m, ("train", "metrics", i)) for i, m in enumerate(value)]
            return {name: list(items) for name in self.outputs}
        for key, item in value.items():
            path = ("train", "metrics", key)
            self.output_key(key, path)
            if isinstance(item, list):
                out[key] = [self.obj("metric", m, path + (i,)) for i, m in enumerate(item)]
            else:
                out[key] = [self.obj("metric", item, path)]
        return out

    # -- what Keras will log ---------------------------------------------------------------

    def log_names(self, losses: dict, metrics: dict, has_validation: bool) -> frozenset:
        names = {"loss"}
        multi = len(self.outputs) > 1
        if multi and len(losses) > 1:
            names |= {f"{out}_loss" for out in losses}
        for out, items in metrics.items():
            seen: dict[str, tuple] = {}
            for m in items:
                name = m.log_name(self.spec.catalog)
                if name in seen:
                    raise self.error(f"two metrics of output {out!r} are logged as {name!r}; give one a "
                                     "different name: {type: ..., name: ...}", m.path)
                seen[name] = m.path
                names.add(f"{out}_{name}" if multi else name)
        if has_validation:
            names |= {"val_" + n for n in names}
        return frozenset(names)

    def monitor(self, value: Any, path: tuple, names: frozenset, has_validation: bool) -> str:
        if value in names:
            return value
        if isinstance(value, str) and value.startswith("val_") and value[4:] in names:
            raise self.error(f"monitor {value!r} needs validation data; add data.validation_split or "
                             "data.validation", path)
        raise self.error(f"monitor {short(value)} is not a quantity this training logs; it logs: "
                         f"{', '.join(sorted(names))}", path, hint=hint_for(value, names))


def _integers(schema: dict, args: dict) -> dict:
    """``args`` with integral floats made ints where the schema types an argument as an integer: JSON
    Schema counts 4.0 (``${n / 2}``, or ``4.0`` written) as an integer, and Keras does not."""
    props = schema.get("properties", {})
    return {k: int(v) if isinstance(v, float) and _integer_only(props.get(k)) else v for k, v in args.items()}


def _integer_only(prop) -> bool:
    types = {b.get("type") for b in (prop or {}).get("anyOf", [prop or {}]) if isinstance(b, dict)} - {None}
    return "integer" in types and "number" not in types


def _int(value):
    """An integral float (JSON Schema's integer 4.0) as an int; anything else as it is."""
    return int(value) if isinstance(value, float) else value


def _mode(mode: str, monitor: str) -> str:
    if mode in ("min", "max"):
        return mode
    return "max" if N.better_is_higher(monitor) else "min"


_WHITELISTS = {
    "optimizer": (N.OPTIMIZERS, N.OPTIMIZER_STRINGS),
    "lrSchedule": (N.LR_SCHEDULES, ()),
    "loss": (N.LOSSES, N.LOSS_STRINGS),
    "metric": (N.METRICS, N.METRIC_STRINGS),
    "callback": (N.CALLBACKS, ("TerminateOnNaN",)),
}


def train_config(spec: SpecView) -> TrainConfig:
    """Check the spec's train section and return it as a :class:`TrainConfig` (no Keras import).

    Args:
        spec: a loaded :class:`netspec.Spec`.

    Returns:
        The checked configuration, with defaults filled in and data paths resolved against the
        spec's directory (``spec.data_root`` for a spec given as text) and confined to it
        (:mod:`netspec.source.paths`).

    Raises:
        TrainError: the section is missing or names something netspec does not offer.
        DataError: the data section names a missing file, key or column.
    """
    section = spec.section("train")
    c = _Checker(spec)
    if section is None:
        raise TrainError("the spec has no train: section; add one (see docs/training.md)",
                         location=spec.document.source.value(()))
    if "data" not in section:
        raise c.error("train needs data: {source: npz | csv | image_dir | dataset, ...}", ("train",))
    data, validation, split = data_config(spec, section["data"])
    optimizer = c.obj("optimizer", section.get("optimizer", DEFAULT_OPTIMIZER), ("train", "optimizer"))
    losses = c.losses(section.get("loss"))
    weights = c.loss_weights(section.get("loss_weights"), losses)
    metrics = c.metrics(section.get("metrics"))
    has_val = validation is not None or split is not None
    names = c.log_names(losses, metrics, has_val)
    callbacks = []
    for i, item in enumerate(section.get("callbacks") or []):
        cb = c.obj("callback", item, ("train", "callbacks", i))
        if "monitor" in cb.args:
            c.monitor(cb.args["monitor"], cb.path + ("monitor",), names, has_val)
        elif cb.name in ("EarlyStopping", "ReduceLROnPlateau") and not has_val:
            raise c.error(f"{cb.name} monitors val_loss by default, and this training has no validation data; "
                          "set monitor: loss, or add data.validation_split", cb.path)
        callbacks.append(cb)
    checkpoint = section.get("checkpoint") or {}
    monitor = checkpoint.get("monitor", "val_loss" if has_val else "loss")
    c.monitor(monitor, ("train", "checkpoint", "monitor"), names, has_val)
    mixed = section.get("mixed_precision", False)
    return TrainConfig(
        data=data,
        validation=validation,
        validation_split=split,
        batch_size=_int(section.get("batch_size", DEFAULT_BATCH_SIZE)),
        epochs=_int(section.get("epochs", 1)),
        steps_per_epoch=_int(section.get("steps_per_epoch")),
        optimizer=optimizer,
        losses=losses,
        loss_weights=weights,
        metrics=metrics,
        callbacks=callbacks,
        monitor=monitor,
        monitor_mode=_mode(checkpoint.get("mode", "auto"), monitor),
        seed=_int(section.get("seed")),
        mixed_precision="mixed_float16" if mixed is True else (mixed or None),
        distribute=section.get("distribute", "none"),
        outputs=c.outputs,
        log_names=names,
    )

