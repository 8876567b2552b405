"""``netspec inspect ARTIFACT``: what an exported file carries, read from the file itself.

The netspec version, the spec's hash and file, the target and precision, the inputs and outputs with
their shapes and dtypes (from the artifact's own graph, not from the metadata), the deployment contract
and the gate's figures. ``--spec OUT.yaml`` writes the resolved spec stored in the file, after checking
it against the stored SHA-256. Every read is bounded (see :mod:`.stamps`): artifacts come from strangers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..contract import Contract, read_spec_stamp
from ..errors import ArtifactError, short
from ..source.kerasfile import display
from . import stamps

MAX_TENSORS = 1024  # inputs or outputs listed


@dataclass
class Inspection:
    """What :func:`inspect` found. ``to_dict`` is the ``--format json`` output."""

    file: str
    kind: str  # onnx, keras, litert, openvino
    metadata: dict[str, str]
    inputs: dict[str, dict] = field(default_factory=dict)  # name -> {"shape", "dtype"}
    outputs: dict[str, dict] = field(default_factory=dict)
    contract: Contract | None = None

    @property
    def target(self) -> dict | None:
        return _json_entry(self, "netspec.target", dict)

    @property
    def gate(self) -> dict | None:
        return _json_entry(self, "netspec.gate", dict)

    @property
    def precision(self) -> str:
        target = self.target or {}
        return str(target.get("precision", "fp32" if self.kind == "keras" else "unknown"))

    def to_dict(self) -> dict[str, Any]:
        meta = self.metadata
        return {"ok": True, "file": self.file, "format": self.kind, "netspec_version": meta.get("netspec.version"),
                "spec_sha256": meta.get("netspec.spec_sha256"), "source": meta.get("netspec.source"),
                "keras_sha256": meta.get("netspec.keras_sha256"), "target": self.target, "precision": self.precision,
                "inputs": self.inputs, "outputs": self.outputs,
                "contract": self.contract.to_dict() if self.contract is not None else None, "gate": self.gate,
                "has_spec": "netspec.spec" in meta}

    def text(self) -> str:
        meta = self.metadata
        line = _one_line  # every string read from the file: one bounded line, control characters escaped
        lines = [f"{self.file}: {self.kind} model"]
        if not meta:
            lines.append("  no netspec metadata (not written by netspec, or written before it stamped files)")
        else:
            lines.append(f"  netspec {line(meta.get('netspec.version', '?'))}, "
                         f"from {line(meta.get('netspec.source', '?'))}")
            if "netspec.spec_sha256" in meta:
                lines.append(f"  spec sha256: {line(meta['netspec.spec_sha256'])}")
            if "netspec.keras_sha256" in meta:
                lines.append(f"  .keras sha256: {line(meta['netspec.keras_sha256'])}")
        target = self.target
        if target is not None:
            lines.append(f"  target: {line(target.get('name'))} ({line(target.get('format'))}, {line(self.precision)}"
                         + (", preprocessing included" if target.get("include_preprocess") else "") + ")")
        for what, ports in (("inputs: ", self.inputs), ("outputs:", self.outputs)):
            lines.append(f"  {what} " + (", ".join(f"{line(k)} {_shape(v['shape'])} {line(v['dtype'])}"
                                                   for k, v in ports.items()) or "?"))
        lines += _contract_lines(self.contract)
        gate = self.gate
        if gate is not None:
            lines.append("  gate: passed: " + "; ".join(line(c) for c in _as(gate.get("checks"), list)))
            for name, o in _as(gate.get("outputs"), dict).items():
                if not isinstance(o, dict):
                    continue
                text = (f"    {line(name)}: max |error| {_num(o.get('max_abs_error'))} (bound {_num(o.get('bound'))}, "
                        f"output range {_num(o.get('span'))})")
                agreement = o.get("top1_agreement")
                if isinstance(agreement, (int, float)) and not isinstance(agreement, bool):
                    text += f", top-1 agreement {_num(100 * agreement)}%"
                lines.append(text)
            for name, acc in _as(gate.get("accuracy"), dict).items():
                if not isinstance(acc, dict):
                    continue
                lines.append(f"    held-out accuracy of {line(name)}: Keras {_num(acc.get('keras'))}, export "
                             f"{_num(acc.get('export'))} ({_count(acc.get('samples'))} samples)")
        return "\n".join(lines)


def inspect(path: str | os.PathLike) -> Inspection:
    """Read what ``path`` carries.

    Raises:
        ArtifactError: the file cannot be read, or its metadata is malformed or over a cap.
        ContractError: its stamped contract is malformed, or disagrees with the file's own inputs and outputs
            (the message names the file): what ``predict`` would refuse, ``inspect`` does not show as valid.
    """
    shown = display(path)
    kind = stamps.kind(path)
    proto = None
    if kind == "onnx":  # parsed once, for the metadata and the graph's inputs and outputs
        if not os.path.isfile(path):
            raise ArtifactError(f"no such file: {shown}")
        proto = stamps.load_onnx(path, shown)
        metadata = stamps.onnx_metadata(proto, shown)
    else:
        metadata = stamps.read_metadata(path)
    found = Inspection(shown, kind, metadata)
    found.contract = Contract.from_metadata(metadata, shown)
    for key, cls in (("netspec.target", dict), ("netspec.gate", dict)):
        _json_entry(found, key, cls, strict=True)
    found.inputs, found.outputs = _onnx_io(proto) if proto is not None else _io(path, shown, kind)
    if found.contract is not None and kind != "keras":  # a .keras file's tensors are not named as its ports
        found.contract.check_ports([_Port(name, tuple((v["shape"] or [None])[1:]), v["dtype"])
                                    for name, v in found.inputs.items()], list(found.outputs), shown)
    return found


@dataclass(frozen=True)
class _Port:
    """An input as :meth:`~netspec.contract.Contract.check_ports` reads it (the batch axis left out)."""

    name: str
    shape: tuple
    dtype: str


def write_spec(found: Inspection, out: str | os.PathLike) -> str:
    """Write the resolved spec stored in the artifact to ``out`` (YAML), after checking its SHA-256.

    Returns:
        The hash checked.

    Raises:
        ArtifactError: the artifact stores no spec, or the spec does not match the stored hash.
        OutputError: ``out`` cannot be written (:func:`netspec.build.saving.atomic_path`: missing directories
            are made, as for every file netspec writes; the file is written atomically).
    """
    import yaml

    from ..build.saving import atomic_path

    spec, params_of, stored = read_spec_stamp(found.metadata, found.file)
    params = json.dumps(params_of, sort_keys=True)
    head = (f"# written by netspec inspect from {json.dumps(found.file)}\n# spec sha256 {stored}\n"
            f"# params as resolved when it was exported: {params}\n")
    try:
        body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120)
    except (yaml.YAMLError, RecursionError) as e:
        raise ArtifactError(f"{found.file}: the stored spec cannot be written as YAML ({type(e).__name__})") from None
    with atomic_path(out) as tmp:
        tmp.write_text(head + body, encoding="utf-8")
    return stored


def _json_entry(found: Inspection, key: str, cls: type, strict: bool = False) -> Any:
    text = found.metadata.get(key)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, cls):
        if strict:
            raise ArtifactError(f"{found.file}: metadata {key} is not a JSON {cls.__name__}. Received: {short(text)}",
                                path=("metadata", key))
        return None
    return value


def _contract_lines(contract: Contract | None) -> list[str]:
    if contract is None:
        return ["  contract: none stamped"]
    lines = ["  contract:"]
    for name, i in contract.inputs.items():
        p = i.preprocess
        if p is None:
            lines.append(f"    input {name}: {i.dtype} {_shape(i.shape)}, no preprocessing declared")
            continue
        steps = [f"raw {p.dtype}"] + ([f"color {p.color}"] if p.color else []) + \
            ([f"resize ({p.interpolation})"] if p.resize else []) + [f"x * {p.scale:g} + {p.offset:g}"]
        if p.mean is not None or p.std is not None:
            steps.append(f"(x - {list(p.mean or [0])}) / {list(p.std or [1])}")
        where = "in the graph" if p.included else "before feeding"
        lines.append(f"    input {name}: {' -> '.join(steps)} ({'numeric steps ' + where})")
    for name, o in contract.outputs.items():
        if o.labels is None:
            lines.append(f"    output {name}: no labels")
        else:
            shown = ", ".join(o.labels[:10]) + (f", ... ({len(o.labels)} in all)" if len(o.labels) > 10 else "")
            lines.append(f"    output {name}: labels {shown}")
    return lines


def _io(path, shown: str, kind: str) -> tuple[dict, dict]:
    """Inputs and outputs with shapes and dtypes, as the artifact's own graph declares them."""
    if kind == "litert":
        from ..export.litertmeta import io_shapes

        found = io_shapes(path, shown)
        return found["inputs"], found["outputs"]
    if kind == "keras":
        return _keras_io(path, shown)
    return _openvino_io(path, shown)


def _onnx_io(proto) -> tuple[dict, dict]:
    import onnx

    def describe(values) -> dict:
        out = {}
        for v in list(values)[:MAX_TENSORS]:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            try:
                dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            except (KeyError, ValueError, TypeError):
                dtype = f"onnx type {t.elem_type}"
            out[v.name[:200]] = {"shape": dims, "dtype": dtype}
        return out

    weights = {i.name for i in proto.graph.initializer}
    return describe(v for v in proto.graph.input if v.name not in weights), describe(proto.graph.output)


def _keras_io(path, shown: str) -> tuple[dict, dict]:
    """Loaded through the checked ``.keras`` gate (safe_mode, costed first), then read off the model."""
    from ..build.saving import load_model
    from ..errors import ModelFileError

    try:
        model = load_model(path)
    except ModelFileError as e:
        raise ArtifactError(e.message, hint=e.hint) from None
    from ..export.signature import flat_outputs, output_names

    outputs, names = flat_outputs(model), output_names(model)

    def describe(t) -> dict:
        return {"shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype)}

    return ({t.name: describe(t) for t in model.inputs}, {n: describe(t) for n, t in zip(names, outputs)})


def _openvino_io(path, shown: str) -> tuple[dict, dict]:
    """Read (not compiled) through the IR's one reader, which checks its .bin and rt_info first."""
    from ..errors import ExportError
    from ..export import openvino as ir

    try:
        return ir.ir_ports(ir.read_ir(path))
    except ExportError as e:
        raise ArtifactError(e.message, location=e.location) from None


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "?"


def _as(value: Any, cls: type) -> Any:
    """``value`` when it is a ``cls`` (a gate entry written by a stranger may be anything), else an empty one."""
    return value if isinstance(value, cls) else cls()


def _one_line(value: Any) -> str:
    """A value read from an artifact as one bounded line (newlines and escapes shown, not obeyed)."""
    return display(value if isinstance(value, str) else str(value))


def _shape(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"

