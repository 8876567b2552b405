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

This module imports only the standard library at import time (``validate`` reads it); numpy is
imported by :meth:`Preprocess.apply`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ArtifactError, ContractError, NetspecError, short

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
# The netspec metadata of one artifact (version, resolved spec, its hash, target, contract, gate): the spec
# loader caps a spec at 1 MiB, so its resolved form and the contract fit with room to spare.
MAX_METADATA_BYTES = 16 << 20
MAX_METADATA_ENTRIES = 256
MAX_METADATA_KEY = 200


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
        top = r.mapping(data, "contract")
        version = top.get("version")
        if version != VERSION:
            raise ContractError(f"the contract in {where} has version {version!r}; this netspec reads version {VERSION}")
        inputs = {name: _read_input(r, value, f"inputs.{name}")
                  for name, value in r.names(top.get("inputs", {}), "inputs").items()}
        outputs = {name: OutputContract(labels=r.labels(r.mapping(value, f"outputs.{name}").get("labels"),
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
            if pre is None:
                continue
            channels = shape[-1] if shape else None
            for key in ("mean", "std"):
                values = getattr(pre, key)
                if values is not None and channels is not None and len(values) != channels:
                    raise ContractError(f"{where}: its contract gives input {short(name)} {len(values)} {key} "
                                        f"value{'s' * (len(values) != 1)} but the model's input has {channels} "
                                        "channel" + "s" * (channels != 1), path=at)
            if pre.included and str(port.dtype) != pre.dtype:
                raise ContractError(f"{where}: its contract says input {short(name)} takes raw {pre.dtype} values "
                                    f"(preprocessing included in the graph) but the model's input is "
                                    f"{port.dtype}", path=at)

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
    data = r.mapping(value, where)
    shape = r.items(data.get("shape"), f"{where}.shape", 32)
    dims = tuple(None if d is None else r.integer(d, f"{where}.shape") for d in shape)
    dtype = r.choice(data.get("dtype", "float32"), RAW_DTYPES, f"{where}.dtype")
    pre = data.get("preprocess")
    if pre is None:
        return InputContract(dims, dtype, None)
    p = r.mapping(pre, f"{where}.preprocess")
    at = f"{where}.preprocess"
    color = p.get("color")
    return InputContract(dims, dtype, Preprocess(
        dtype=r.choice(p.get("dtype", "float32"), RAW_DTYPES, f"{at}.dtype"),
        color=None if color is None else r.choice(color, COLORS, f"{at}.color"),
        resize=r.flag(p.get("resize", False), f"{at}.resize"),
        interpolation=r.choice(p.get("interpolation", "bilinear"), INTERPOLATIONS, f"{at}.interpolation"),
        scale=r.number(p.get("scale", 1.0), f"{at}.scale"),
        offset=r.number(p.get("offset", 0.0), f"{at}.offset"),
        mean=r.floats(p.get("mean"), f"{at}.mean"),
        std=r.floats(p.get("std"), f"{at}.std", nonzero=True),
        included=r.flag(p.get("included", False), f"{at}.included"),
    ))


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

    def number(self, value: Any, at: str, nonzero: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (nonzero and value == 0):
            raise self.fail(at, "a finite non-zero number" if nonzero else "a finite number", value)
        return float(value)

    def floats(self, value: Any, at: str, nonzero: bool = False) -> tuple[float, ...] | None:
        if value is None:
            return None
        return tuple(self.number(v, at, nonzero) for v in self.items(value, at, MAX_CHANNELS))

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
        return tuple(items)


def printable(text: Any) -> bool:
    """A string without control characters (C0, DEL, C1, and Unicode's other non-printables such as
    bidirectional overrides): what may reach a terminal as it is. The spec's ``labels:`` are held to
    the same rule (``str.isprintable``), so a contract netspec stamps always passes."""
    return isinstance(text, str) and text.isprintable()


class DuplicateKey(ValueError):
    """A JSON object with a key twice (``json`` keeps the last one silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``json.loads``'s ``object_pairs_hook`` for untrusted JSON: a key given twice raises :class:`DuplicateKey`."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


# -- the metadata mapping every artifact carries ------------------------------------------------------


def spec_stamp(data: Any, params: Mapping[str, Any], source: str | None) -> dict[str, str]:
    """netspec's version, the resolved spec (as written, plus its params after overrides), its SHA-256 and
    its file: the entries every artifact made from a spec carries (export adds its target and gate)."""
    from .version import __version__

    resolved = json.dumps({"spec": data, "params": dict(params)}, sort_keys=True, default=str, separators=(",", ":"))
    return {"netspec.version": __version__, "netspec.spec": resolved,
            "netspec.spec_sha256": hashlib.sha256(resolved.encode()).hexdigest(), "netspec.source": source or "<text>"}



def read_spec_stamp(metadata: Mapping[str, str], where: str) -> tuple[dict, dict, str]:
    """The inverse of :func:`spec_stamp`: ``(spec as written, params, sha256)`` from an artifact's metadata,
    its hash checked (artifacts come from strangers: an entry may be missing, edited or not JSON).

    Raises:
        ArtifactError: no stored spec or hash, a spec that does not match its hash, or not netspec's JSON.
    """
    at = ("metadata", "netspec.spec")
    text, stored = metadata.get("netspec.spec"), metadata.get("netspec.spec_sha256")
    if text is None or stored is None:
        raise ArtifactError(f"{where} stores no resolved spec and hash (it was exported from a .keras file, or not "
                            "by netspec)", path=at)
    actual = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if actual != stored:
        raise ArtifactError(f"{where}: the stored spec does not match the stored hash: sha256 {actual[:16]}... does "
                            f"not match its netspec.spec_sha256 {short(stored, 70)}; the file was changed after "
                            "netspec wrote it", path=at)
    try:
        resolved = json.loads(text)
    except (ValueError, RecursionError):
        resolved = None
    if not isinstance(resolved, dict) or not isinstance(resolved.get("spec"), dict) \
            or not isinstance(resolved.get("params", {}), dict):
        raise ArtifactError(f"{where}: the stored spec is not netspec's JSON (a spec mapping and its params)", path=at)
    return resolved["spec"], resolved.get("params") or {}, stored


def metadata_json(metadata: Mapping[str, str]) -> bytes:
    """The form ``.keras`` (member ``netspec.json``) and LiteRT (metadata ``netspec.json``) store it in."""
    return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_metadata_json(raw: bytes, where: str, error: type[NetspecError] = ArtifactError) -> dict[str, str]:
    """The inverse of :func:`metadata_json` for untrusted bytes: a JSON object of strings, under the caps.

    Raises:
        NetspecError: ``error`` (an :class:`~netspec.errors.ArtifactError` unless told), naming ``where``.
    """
    if len(raw) > MAX_METADATA_BYTES:
        raise error(f"{where}: the netspec metadata is {len(raw):,} bytes, over the {MAX_METADATA_BYTES:,}-byte cap")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKey as e:
        raise error(f"{where}: the netspec metadata holds {short(e.key)} twice (which one is meant?)") from None
    except RecursionError:
        raise error(f"{where}: the netspec metadata is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise error(f"{where}: the netspec metadata is not valid JSON: {short(str(e), 120)}") from None
    return check_metadata(data, where, error)


def check_metadata(data: Any, where: str, error: type[NetspecError] = ArtifactError) -> dict[str, str]:
    """``data`` as a ``{str: str}`` mapping of at most :data:`MAX_METADATA_ENTRIES` entries and
    :data:`MAX_METADATA_BYTES` characters (ONNX ``metadata_props`` and the JSON forms alike)."""
    if not isinstance(data, dict):
        raise error(f"{where}: the netspec metadata must be a JSON object of strings. Received: {short(data)}")
    if len(data) > MAX_METADATA_ENTRIES:
        raise error(f"{where}: the netspec metadata has {len(data):,} entries, over the cap of {MAX_METADATA_ENTRIES}")
    total = 0
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > MAX_METADATA_KEY or not isinstance(value, str):
            raise error(f"{where}: netspec metadata entry {short(key)} must map a name to a string. "
                        f"Received: {short(value)}")
        total += len(key) + len(value)
        if total > MAX_METADATA_BYTES:
            raise error(f"{where}: the netspec metadata is over the {MAX_METADATA_BYTES:,}-character cap")
    return dict(data)
