"""The deployment contract: how to feed each input of a model and what its outputs mean.

A spec declares it (``preprocess:`` on an input, ``labels:`` on an output); export stamps it into
every artifact (ONNX ``metadata_props``, the ``.keras`` metadata, LiteRT and OpenVINO beside or inside
the file) under :data:`METADATA_KEY` as the JSON of :meth:`Contract.to_json`; ``predict``, ``evaluate``
and ``inspect`` read it back with :meth:`Contract.from_json`. Artifacts come from strangers, so reading
checks every field's type and size and raises :class:`~netspec.errors.ContractError`, never anything else.

The numeric steps run in this order, on a float32 copy of the raw array::

    x = x * scale + offset          # rescale (``Rescaling`` semantics)
    x = (x - mean) / std            # per channel (last axis), when given

Image-only steps happen before, when an image file is decoded (``netspec.deploy``): convert to the
``color`` the model takes (``rgb``, ``bgr`` or ``grayscale``), then resize to the declared height and
width. Arrays (``.npy``, ``.npz``, CSV rows) are taken to be in the model's layout already; only the
numeric steps apply to them.

The package's modules: :mod:`.rules` (the fields' domains, shared with the spec), :mod:`.metadata` (the
metadata mapping every artifact carries); both are re-exported here. It imports only the standard library
at import time (``validate`` reads it); numpy is
imported by :meth:`Preprocess.apply`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ContractError, hint_for, short
from .metadata import (MAX_METADATA_BYTES, MAX_METADATA_ENTRIES, MAX_METADATA_KEY, DuplicateKey,  # noqa: F401
                       check_metadata, metadata_json, read_metadata_json, read_spec_stamp, spec_stamp, unique_keys)
from .rules import CHANNELS_OF, FOLDABLE_DTYPES, MAX_STD, MIN_STD, color_problem, fold_problem, number_problem  # noqa: F401

if TYPE_CHECKING:
    import numpy as np

METADATA_KEY = "netspec.contract"  # the key in ONNX metadata_props and every other artifact's metadata
VERSION = 1
COLORS = ("rgb", "bgr", "grayscale")
RAW_DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "float16", "float32", "float64")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
MAX_CONTRACT_BYTES = 4 << 20  # the JSON of a contract: labels of ImageNet-21k are ~300 KiB
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 200
MAX_CHANNELS = 4096  # mean/std entries
MAX_NAMES = 1024  # inputs or outputs
CONTRACT_KEYS = ("version", "inputs", "outputs")
INPUT_KEYS = ("shape", "dtype", "preprocess")
PREPROCESS_KEYS = ("dtype", "color", "resize", "interpolation", "scale", "offset", "mean", "std", "included")
OUTPUT_KEYS = ("labels",)


@dataclass(frozen=True)
class Preprocess:
    """How a raw input becomes what the model takes.

    Args:
        dtype: the raw input's dtype (what a deployed model with the preprocessing folded in takes).
        color: the channel layout the model takes; image files are converted to it. None: as decoded.
        resize: whether image files are resized to the input's declared height and width.
        interpolation: the resize filter.
        scale, offset: ``x * scale + offset``.
        mean, std: per-channel (last axis) normalisation after the rescale; None: none.
        included: the artifact's graph applies the numeric steps (an export with ``include_preprocess``):
            it takes raw values of ``dtype``; only the image steps (color, resize) remain outside.
    """

    dtype: str = "float32"
    color: str | None = None
    resize: bool = False
    interpolation: str = "bilinear"
    scale: float = 1.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    included: bool = False

    def feed(self, x: np.ndarray) -> np.ndarray:
        """What the artifact takes for a raw array: the raw values in :attr:`dtype` when its graph applies
        the numeric steps itself (:attr:`included`), else :meth:`apply`'s float32 array."""
        import numpy as np

        return np.asarray(x).astype(self.dtype, copy=False) if self.included else self.apply(x)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The numeric steps on a raw array (channels last): a new float32 array."""
        import numpy as np

        # Overflow gives inf, which the caller refuses (netspec.deploy.inputs.to_model names the input):
        # numpy's own RuntimeWarning would print netspec's source line to the user instead.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out: Any = np.asarray(x, dtype=np.float32) * np.float32(self.scale) + np.float32(self.offset)
            if self.mean is not None:
                out = out - np.asarray(self.mean, dtype=np.float32)
            if self.std is not None:
                out = out / np.asarray(self.std, dtype=np.float32)
        return out.astype(np.float32, copy=False)

    @property
    def is_identity(self) -> bool:
        """Whether the numeric steps change nothing (image steps may still apply)."""
        return self.scale == 1.0 and self.offset == 0.0 and self.mean is None and self.std is None


@dataclass(frozen=True)
class InputContract:
    """One model input: its declared shape (no batch axis; None for unknown), dtype and preprocessing."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    preprocess: Preprocess | None = None


@dataclass(frozen=True)
class OutputContract:
    """One model output: the names of its classes along the last axis, when it has some."""

    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """Every input's and output's contract, by name, in the model's order."""

    inputs: dict[str, InputContract] = field(default_factory=dict)
    outputs: dict[str, OutputContract] = field(default_factory=dict)

    @property
    def declared(self) -> bool:
        """Whether the spec said anything beyond shapes (a preprocess or labels)."""
        return any(i.preprocess for i in self.inputs.values()) or any(o.labels for o in self.outputs.values())

    def to_dict(self) -> dict:
        """Plain data (the JSON form, and ``inspect --format json``)."""
        return {
            "version": VERSION,
            "inputs": {name: _input_dict(i) for name, i in self.inputs.items()},
            "outputs": {name: {"labels": list(o.labels) if o.labels is not None else None}
                        for name, o in self.outputs.items()},
        }

    def to_json(self) -> str:
        """Compact, key-sorted JSON: equal contracts stamp equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "the artifact") -> Contract:
        """Read a stamped contract, checking every field; ``where`` names its source in messages."""
        if len(text) > MAX_CONTRACT_BYTES:
            raise ContractError(f"the contract in {where} is {len(text):,} bytes; at most {MAX_CONTRACT_BYTES:,} are read")
        try:
            data = json.loads(text, object_pairs_hook=unique_keys)
        except DuplicateKey as e:
            raise ContractError(f"the contract in {where} holds key {short(e.key)} twice in one object (which one is "
                                "meant?)", path=("metadata", METADATA_KEY)) from None
        except (ValueError, RecursionError) as e:
            raise ContractError(f"the contract in {where} is not JSON: {e}", path=("metadata", METADATA_KEY)) from None
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "the artifact") -> Contract:
        """The inverse of :meth:`to_dict`, for untrusted data."""
        r = _Reader(where)
        top = r.keys(r.mapping(data, "contract"), CONTRACT_KEYS, "its top level")
        version = top.get("version")
        if type(version) is not int or version != VERSION:  # not True, not 1.0: what netspec writes is the int
            raise ContractError(f"the contract in {where} has version {short(version)}; this netspec reads version "
                                f"{VERSION} (an integer)", path=("metadata", METADATA_KEY))
        inputs = {name: _read_input(r, value, f"inputs.{name}")
                  for name, value in r.names(top.get("inputs", {}), "inputs").items()}
        outputs = {name: OutputContract(labels=r.labels(
            r.keys(r.mapping(value, f"outputs.{name}"), OUTPUT_KEYS, f"outputs.{name}").get("labels"),
            f"outputs.{name}.labels"))
                   for name, value in r.names(top.get("outputs", {}), "outputs").items()}
        return cls(inputs=inputs, outputs=outputs)

    @classmethod
    def of_graph(cls, graph: Any) -> Contract:
        """The contract a resolved :class:`netspec.graph.Graph` declares: every input's shape, dtype and
        ``preprocess:``, every output's ``labels:``."""
        labels = graph.labels
        return cls(
            inputs={d.name: InputContract(tuple(d.shape), d.dtype, d.preprocess) for d in graph.inputs},
            outputs={name: OutputContract(labels[name].labels if name in labels else None) for name, _ in graph.outputs})

    def folded(self) -> Contract:
        """This contract for an artifact whose graph applies the numeric preprocessing (``include_preprocess``):
        inputs with a ``preprocess`` take its raw dtype, marked ``included``."""
        from dataclasses import replace

        inputs = {name: (i if i.preprocess is None else
                         replace(i, dtype=i.preprocess.dtype, preprocess=replace(i.preprocess, included=True)))
                  for name, i in self.inputs.items()}
        return Contract(inputs=inputs, outputs=dict(self.outputs))

    def check_ports(self, ports: Any, outputs: Any, where: str) -> None:
        """Refuse a stamped contract that disagrees with the artifact's own graph.

        A contract is metadata beside the graph, and either can be edited without the other: an input
        renamed in the contract would silently skip its preprocessing, a wrong shape or channel count
        would feed values the model was not trained on, and ``included`` on a graph that takes floats
        would feed raw pixels to a model that expects them preprocessed.

        Args:
            ports: the runtime's inputs, each with ``name``, ``shape`` (no batch axis, None: unknown), ``dtype``.
            outputs: the runtime's output names.
            where: the artifact, as messages show it.

        Raises:
            ContractError: names, shapes, per-channel lengths or the folded dtype disagree (both values named).
        """
        at = ("metadata", METADATA_KEY)
        by_name = {p.name: p for p in ports}
        for what, declared, actual in (("inputs", list(self.inputs), list(by_name)),
                                       ("outputs", list(self.outputs), list(outputs))):
            if set(declared) != set(actual):
                extra = [n for n in declared if n not in actual]
                missing = [n for n in actual if n not in declared]
                name = extra[0] if extra else missing[0]
                raise ContractError(
                    f"{where}: its contract names {what} {_names(declared)} but the model's {what} are "
                    f"{_names(actual)}; {what[:-1]} {short(name)} is " +
                    ("not in the model" if extra else "not in the contract") +
                    " (the contract or the graph was changed after export)", path=at)
        for name, entry in self.inputs.items():
            port = by_name[name]
            shape = tuple(port.shape)
            if len(entry.shape) != len(shape) or any(a is not None and b is not None and a != b
                                                       for a, b in zip(entry.shape, shape)):
                raise ContractError(f"{where}: its contract gives input {short(name)} shape {_dims(entry.shape)} but "
                                    f"the model takes {_dims(shape)}", path=at)
            pre = entry.preprocess
            port_dtype = str(port.dtype)
            if pre is not None and pre.included and port_dtype != pre.dtype:
                raise ContractError(f"{where}: its contract says input {short(name)} takes raw {pre.dtype} values "
                                    f"(preprocessing included in the graph) but the model's input is "
                                    f"{port.dtype}", path=at)
            if port_dtype in RAW_DTYPES and entry.dtype != port_dtype:  # a runtime's own names: int64 is not one
                raise ContractError(f"{where}: its contract says input {short(name)} is {entry.dtype} but the model's "
                                    f"input is {port_dtype}", path=at)
            if pre is None:
                continue
            problem = color_problem(pre.color, shape)
            if problem is not None:  # predict would refuse every image; inspect must not show it as valid
                raise ContractError(f"{where}: its contract converts images for input {short(name)} of shape "
                                    f"{_dims(shape)}: {problem}", path=at)
            channels = shape[-1] if shape else None
            for key in ("mean", "std"):
                values = getattr(pre, key)
                if values is not None and channels is not None and len(values) != channels:
                    raise ContractError(f"{where}: its contract gives input {short(name)} {len(values)} {key} "
                                        f"value{'s' * (len(values) != 1)} but the model's input has {channels} "
                                        "channel" + "s" * (channels != 1), path=at)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], where: str = "the artifact") -> Contract | None:
        """The contract stamped in an artifact's metadata; None when it carries none."""
        text = metadata.get(METADATA_KEY)
        return None if text is None else cls.from_json(text, where)


def _names(names: list[str]) -> str:
    shown = ", ".join(short(n, 40) for n in names[:8])
    return "(" + shown + (f", ... {len(names)} in all" if len(names) > 8 else "") + ")"


def _dims(shape: tuple) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _input_dict(i: InputContract) -> dict:
    p = i.preprocess
    pre = None if p is None else {
        "dtype": p.dtype, "color": p.color, "resize": p.resize, "interpolation": p.interpolation,
        "scale": p.scale, "offset": p.offset,
        "mean": list(p.mean) if p.mean is not None else None,
        "std": list(p.std) if p.std is not None else None,
        "included": p.included,
    }
    return {"shape": list(i.shape), "dtype": i.dtype, "preprocess": pre}


def _read_input(r: _Reader, value: Any, where: str) -> InputContract:
    data = r.keys(r.mapping(value, where), INPUT_KEYS, where)
    shape = r.items(data.get("shape"), f"{where}.shape", 32)
    dims = tuple(None if d is None else r.integer(d, f"{where}.shape") for d in shape)
    dtype = r.choice(data.get("dtype", "float32"), RAW_DTYPES, f"{where}.dtype")
    pre = data.get("preprocess")
    if pre is None:
        return InputContract(dims, dtype, None)
    at = f"{where}.preprocess"
    p = r.keys(r.mapping(pre, at), PREPROCESS_KEYS, at)
    color = p.get("color")
    result = Preprocess(
        dtype=r.choice(p.get("dtype", "float32"), RAW_DTYPES, f"{at}.dtype"),
        color=None if color is None else r.choice(color, COLORS, f"{at}.color"),
        resize=r.flag(p.get("resize", False), f"{at}.resize"),
        interpolation=r.choice(p.get("interpolation", "bilinear"), INTERPOLATIONS, f"{at}.interpolation"),
        scale=r.number(p.get("scale", 1.0), f"{at}.scale", "scale"),
        offset=r.number(p.get("offset", 0.0), f"{at}.offset", "offset"),
        mean=r.floats(p.get("mean"), f"{at}.mean", "mean"),
        std=r.floats(p.get("std"), f"{at}.std", "std"),
        included=r.flag(p.get("included", False), f"{at}.included"),
    )
    if result.included:  # what Contract.folded writes: the input takes the raw dtype, an integer one
        problem = fold_problem(result)
        if problem is not None:
            raise r.fail(f"{at}.included", f"false: {problem}", True)
        if dtype != result.dtype:
            raise r.fail(f"{where}.dtype", f"{result.dtype}, the raw dtype of its included preprocessing", dtype)
    return InputContract(dims, dtype, result)


class _Reader:
    """Type- and size-checked reads of untrusted contract data; every failure is a ContractError."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, what: str, value: Any) -> ContractError:
        return ContractError(f"the contract in {self.where}: {at} must be {what}. Received: {short(value)}",
                             path=("metadata", METADATA_KEY))

    def mapping(self, value: Any, at: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(at, "a mapping", value)
        return value

    def names(self, value: Any, at: str) -> dict:
        data = self.mapping(value, at)
        if len(data) > MAX_NAMES:
            raise self.fail(at, f"at most {MAX_NAMES} names", f"{len(data)} names")
        for name in data:
            if not printable(name) or len(name) > MAX_LABEL_CHARS:
                raise self.fail(at, f"names of printable characters (at most {MAX_LABEL_CHARS})", name)
        return data

    def items(self, value: Any, at: str, limit: int) -> list:
        if not isinstance(value, list) or len(value) > limit:
            raise self.fail(at, f"a list of at most {limit} items", value)
        return value

    def integer(self, value: Any, at: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 31:
            raise self.fail(at, "positive integers or null", value)
        return value

    def keys(self, data: dict, allowed: tuple[str, ...], at: str) -> dict:
        """``data`` when it has only ``allowed`` keys: an unknown one is a typo or another netspec's field,
        and either way would be silently ignored."""
        for key in data:
            if key not in allowed:
                hint = hint_for(key, allowed)
                raise ContractError(f"the contract in {self.where}: {at} has unknown key {short(key)}; its keys are "
                                    f"{', '.join(allowed)}", path=("metadata", METADATA_KEY), hint=hint)
        return data

    def number(self, value: Any, at: str, key: str | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(at, "a finite number", value)
        problem = number_problem(key, float(value)) if key is not None else None
        if problem is not None:
            raise ContractError(f"the contract in {self.where}: {at}: {problem}. Received: {short(value)}",
                                path=("metadata", METADATA_KEY))
        return float(value)

    def floats(self, value: Any, at: str, key: str) -> tuple[float, ...] | None:
        if value is None:
            return None
        return tuple(self.number(v, f"{at}[{k}]", key) for k, v in enumerate(self.items(value, at, MAX_CHANNELS)))

    def flag(self, value: Any, at: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(at, "true or false", value)
        return value

    def choice(self, value: Any, choices: tuple[str, ...], at: str) -> str:
        if value not in choices:
            raise self.fail(at, " | ".join(choices), value)
        return value

    def labels(self, value: Any, at: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = self.items(value, at, MAX_LABELS)
        if not all(isinstance(s, str) and len(s) <= MAX_LABEL_CHARS for s in items):
            raise self.fail(at, f"a list of strings of at most {MAX_LABEL_CHARS} characters", value)
        for k, label in enumerate(items):  # predict and inspect print labels: no terminal escapes, no new lines
            if not printable(label):
                raise ContractError(f"the contract in {self.where}: {at}[{k}] (label {k + 1}) holds a control "
                                    f"character; labels are printable text. Received: {short(label)}",
                                    path=("metadata", METADATA_KEY))
            if not label.strip():  # predict would print a score with no name
                raise ContractError(f"the contract in {self.where}: {at}[{k}] (label {k + 1}) is empty; every class "
                                    f"needs a name. Received: {short(label)}", path=("metadata", METADATA_KEY))
        if not items:
            raise self.fail(at, "a list of at least one label, or null", value)
        first: dict[str, int] = {}
        for k, label in enumerate(items):  # two classes of one name: predict's answer would be ambiguous
            if label in first:
                raise ContractError(f"the contract in {self.where}: {at}[{k}] (label {k + 1}) repeats {short(label)}, "
                                    f"label {first[label] + 1}; labels name distinct classes",
                                    path=("metadata", METADATA_KEY))
            first[label] = k
        return tuple(items)


def printable(text: Any) -> bool:
    """A string without control characters (C0, DEL, C1, and Unicode's other non-printables such as
    bidirectional overrides): what may reach a terminal as it is. The spec's ``labels:`` are held to
    the same rule (``str.isprintable``), so a contract netspec stamps always passes."""
    return isinstance(text, str) and text.isprintable()
