"""Export formats as one table: what each is called, writes, runs on and accepts, and its pipeline steps.

A format is data (file suffix, names, precisions, whether it has an opset, which export rewrites
and expression caveats apply) and three steps that :func:`netspec.export.pipeline.export` calls in
order: ``convert`` the Keras model (while the rewrites are in place), ``finish`` the artifact
(precision conversion, embedded metadata) and ``load`` it for the gate (the bytes to write, a
runner, its size and output shapes). Adding a format is one entry in :data:`FORMATS` plus its
measured refusals in ``compat.LAYERS``; targets, compat, the report, ``--list-targets``, the
schema's ``format``/``precision`` enums and the layer docs read the rest from here.

The steps import TensorFlow, tf2onnx or onnxruntime only when called: this module is data to
``netspec validate --target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from .signature import IONames
    from .targets import Target
    from .verify import GateResult

FormatName = Literal["onnx", "litert", "openvino"]
Precision = Literal["fp32", "fp16", "int8"]
Arrays = Mapping[str, "np.ndarray"]
Runner = Callable[[Arrays], dict]
# int8 calibration methods, by their ``calibration:`` name: onnxruntime's CalibrationMethod members.
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@dataclass
class Loaded:
    """An artifact ready for the gate.

    Args:
        data: the bytes written to the output file if the gate passes.
        run: the format's runtime as ``inputs by name -> outputs by name``.
        nodes: the size of its graph, in the format's :attr:`Format.unit`.
        outputs: ``{name: {"shape": [...]}}`` as the artifact declares them (None: unknown).
        write: for an artifact of more than one file (OpenVINO's .xml and .bin), writes them all
            atomically at the output path and returns the bytes written; None: ``data`` is the file.
    """

    data: bytes
    run: Runner
    nodes: int
    outputs: dict[str, dict]
    write: Callable[[Path, bytes], int] | None = None


@dataclass(frozen=True)
class Format:
    """One export format: its facts and its steps.

    Args:
        name: the ``format:`` value of a target.
        label: its name in messages and docs (``ONNX``).
        suffix: the output file's suffix.
        unit: what the report counts in its graph (``nodes``, ``ops``).
        runtime: the runtime the gate and the latency measurement run it on.
        precisions: the precisions a target of this format may ask for.
        has_opset: whether targets choose an opset (``opset:``, ``--opset``).
        rewrites: what ``rewrite.export_rewrites`` changes for it (see ``compat.REWRITES``).
        expression_caveats: whether the expression checker's export caveats (measured with
            tf2onnx) apply to it.
        embeds_metadata: whether the artifact carries the resolved spec and its hash.
        any_name: whether :func:`~netspec.export.pipeline.export` accepts an output file without
            :attr:`suffix` (LiteRT always has, if the name is not another format's; the CLI requires it).
        convert: ``(model, names, target, calibration arrays or None) -> artifact``.
        finish: ``(artifact, target, calibration arrays or None, metadata) -> artifact``.
        load: ``(artifact, gate, model, names, target) -> Loaded``; adds its checks to the gate.
        divergence: ``(model, artifact, inputs) -> {"node", "max_abs_error", "bound"} or None``: the
            first Keras layer an fp32 artifact does not reproduce; None when the format cannot tell.
        int8_fixed: empty when int8 targets choose the calibration method, per-channel weights and
            nodes kept in float (``calibration.method``, ``per_channel``, ``keep_float``); else what
            the converter does instead, for messages.
        localize: ``(float artifact, finished artifact, input batches, precision) -> {"worst",
            "appears", "grows"}`` (see :func:`netspec.export.localize.summarize`): where an fp16/int8
            artifact's activations depart from the float ones; None when the format cannot tell.
        stamp: ``(bytes to write, metadata) -> bytes``: the file with its netspec metadata replaced
            by ``metadata`` (the pipeline adds the gate's figures once the gate has passed); None: the
            format keeps its metadata elsewhere.
    """

    name: FormatName
    label: str
    suffix: str
    unit: str
    runtime: str
    precisions: tuple[Precision, ...]
    has_opset: bool
    rewrites: frozenset[str]
    expression_caveats: bool
    embeds_metadata: bool
    any_name: bool
    convert: Callable[[Any, IONames, Target, Arrays | None], Any]
    finish: Callable[[Any, Target, Arrays | None, Mapping[str, str]], Any]
    load: Callable[[Any, GateResult, Any, IONames, Target], Loaded]
    divergence: Callable[[Any, Any, Arrays], dict | None] | None = None
    int8_fixed: str = ""
    localize: Callable[[Any, Any, list, Precision], dict] | None = None
    stamp: Callable[[bytes, Mapping[str, str]], bytes] | None = None
    # The artifact again from the bytes ``load`` returned: when set, an fp32 export's artifact is dropped while
    # the gate runs (one copy of the weights fewer at the gate's peak) and reloaded only to locate a failure.
    reload: Callable[[bytes], Any] | None = None

    @property
    def int8_options(self) -> bool:
        """Whether int8 targets of this format take ``calibration.method``, ``per_channel`` and ``keep_float``."""
        return not self.int8_fixed

    def describe(self, target: Target) -> str:
        """The format as the report names it: ``ONNX opset 17``, ``LiteRT``."""
        return f"{self.label} opset {target.opset}" if self.has_opset else self.label


def named_for(path: object) -> Format | None:
    """The format whose suffix the file name ``path`` has, or None."""
    return next((f for f in FORMATS.values() if str(path).endswith(f.suffix)), None)


def int8_option_formats() -> str:
    """The formats whose int8 targets take the calibration options, for messages: ``ONNX``."""
    return " and ".join(f.label for f in FORMATS.values() if f.int8_options)


def labels_with_opset() -> str:
    """The formats whose targets choose an opset, for messages: ``ONNX``."""
    return " and ".join(f.label for f in FORMATS.values() if f.has_opset)


# -- ONNX: tf2onnx, onnxruntime -------------------------------------------------------------------


def _onnx_convert(model, names: IONames, target: Target, calib: Arrays | None):
    from .convert import to_onnx

    return to_onnx(model, names, target)


def _onnx_finish(proto, target: Target, calib: Arrays | None, metadata: Mapping[str, str]):
    from . import quantize
    from .convert import set_metadata, to_fp16

    if target.precision == "fp16":
        import onnx

        proto = to_fp16(onnx.ModelProto.FromString(proto.SerializeToString()))  # the float model stays whole
    elif target.precision == "int8":
        assert calib is not None  # the pipeline makes calibration arrays for every int8 target
        proto = quantize.quantize_onnx(proto, calib, target.batch_size,
                                       method=CALIBRATION_METHODS[target.calibration.method],
                                       per_channel=target.per_channel, keep_float=target.keep_float)
    set_metadata(proto, metadata)
    return proto


def _onnx_load(proto, gate: GateResult, model, names: IONames, target: Target) -> Loaded:
    from . import verify

    data = proto.SerializeToString()
    verify.check_onnx(data, gate)  # the bytes the session loads: the checker takes them as they are, not another copy
    session = verify.ort_session(data, gate)
    outputs = {o.name: {"shape": [d.dim_value or None for d in o.type.tensor_type.shape.dim]}
               for o in proto.graph.output}
    return Loaded(data, verify.ort_runner(session), len(proto.graph.node), outputs)


def _onnx_stamp(data: bytes, metadata: Mapping[str, str]) -> bytes:
    from .convert import stamp_onnx

    return stamp_onnx(data, metadata)


def _onnx_reload(data: bytes):
    import onnx

    return onnx.ModelProto.FromString(data)


def _onnx_divergence(model, proto, x: Arrays) -> dict | None:
    from .verify import first_divergence

    return first_divergence(model, proto, x)


def _onnx_localize(float_proto, proto, batches: list, precision: Precision) -> dict:
    from . import localize

    return localize.summarize(localize.activation_errors(float_proto, proto, batches, precision))


# -- LiteRT: the TF Lite converter and interpreter ----------------------------------------------------


def _litert_convert(model, names: IONames, target: Target, calib: Arrays | None) -> bytes:
    from . import quantize
    from .convert import to_litert

    rep = quantize.representative_dataset(calib, names.inputs, target.batch_size) if calib else None
    return to_litert(model, names, target, rep)


def _litert_finish(data: bytes, target: Target, calib: Arrays | None, metadata: Mapping[str, str]) -> bytes:
    from .litertmeta import stamp

    return stamp(data, metadata) if metadata else data  # int8 happened in the converter


def _litert_stamp(data: bytes, metadata: Mapping[str, str]) -> bytes:
    from .litertmeta import stamp

    return stamp(data, metadata)


def _litert_load(data: bytes, gate: GateResult, model, names: IONames, target: Target) -> Loaded:
    from . import verify
    from .signature import flat_outputs

    run = verify.litert_runner(data, gate)
    outputs = {n: {"shape": [target.batch_size, *tuple(out.shape)[1:]]}
               for n, out in zip(names.outputs, flat_outputs(model))}
    return Loaded(data, run, verify.litert_op_count(data), outputs)


# -- OpenVINO: the TensorFlow frontend of openvino.convert_model, NNCF, the CPU plugin ---------------------
# (why this converter and not Keras's model.export or the ONNX file: netspec/export/openvino.py)


@dataclass(frozen=True)
class OVArtifact:
    """An OpenVINO model between the pipeline's steps, with the Keras model it was converted from: a failed
    gate is located by comparing the two layer by layer (:mod:`netspec.export.ovlocalize`), and the int8
    locating step is given only the artifacts."""

    model: Any  # openvino.Model
    keras: Any


def _openvino_convert(model, names: IONames, target: Target, calib: Arrays | None) -> OVArtifact:
    from .openvino import to_openvino

    return OVArtifact(to_openvino(model, names, target), model)


def _openvino_finish(artifact: OVArtifact, target: Target, calib: Arrays | None,
                     metadata: Mapping[str, str]) -> OVArtifact:
    from . import openvino

    ov_model = artifact.model
    if target.precision == "int8":
        assert calib is not None  # the pipeline makes calibration arrays for every int8 target
        ov_model = openvino.quantize_int8(ov_model, calib, target.batch_size)
    openvino.stamp(ov_model, metadata)
    return OVArtifact(ov_model, artifact.keras)


def _openvino_stamp(xml: bytes, metadata: Mapping[str, str]) -> bytes:
    from . import openvino

    return openvino.stamp_xml(xml, metadata)


def _openvino_load(artifact: OVArtifact, gate: GateResult, model, names: IONames, target: Target) -> Loaded:
    from . import openvino

    xml, weights = openvino.serialize(artifact.model)
    opened = openvino.compile_ir(xml, weights, gate)
    return Loaded(xml, opened.run, opened.ops, {n: {"shape": p["shape"]} for n, p in opened.outputs.items()},
                  write=lambda path, data: openvino.write_pair(path, data, weights))


def _openvino_divergence(model, artifact: OVArtifact, x: Arrays) -> dict | None:
    from .ovlocalize import first_divergence

    return first_divergence(model, artifact.model, x)


def _openvino_localize(float_artifact: OVArtifact, artifact: OVArtifact, batches: list, precision: Precision) -> dict:
    from . import localize, ovlocalize

    errors = ovlocalize.activation_errors(float_artifact.keras, float_artifact.model, artifact.model, batches)
    if not errors:
        return {"note": "no layer's output was found among the OpenVINO model's tensors"}
    return localize.summarize(errors)


# -- the table --------------------------------------------------------------------------------------

ONNX = Format(
    name="onnx", label="ONNX", suffix=".onnx", unit="nodes", runtime="onnxruntime",
    precisions=("fp32", "fp16", "int8"), has_opset=True, rewrites=frozenset({"gelu", "celu", "augmentation", "normalization"}),
    expression_caveats=True, embeds_metadata=True, any_name=False,
    convert=_onnx_convert, finish=_onnx_finish, load=_onnx_load, divergence=_onnx_divergence,
    localize=_onnx_localize, stamp=_onnx_stamp, reload=_onnx_reload,
)
LITERT = Format(
    name="litert", label="LiteRT", suffix=".tflite", unit="ops", runtime="LiteRT",
    precisions=("fp32", "int8"), has_opset=False, rewrites=frozenset({"augmentation", "normalization"}),
    expression_caveats=False, embeds_metadata=True, any_name=True,
    convert=_litert_convert, finish=_litert_finish, load=_litert_load, stamp=_litert_stamp,
    int8_fixed="calibrates on min/max, quantizes weights per channel and every op to int8 (full-integer)",
)
OPENVINO = Format(
    name="openvino", label="OpenVINO", suffix=".xml", unit="ops", runtime="OpenVINO",
    precisions=("fp32", "int8"), has_opset=False, rewrites=frozenset({"augmentation"}),
    expression_caveats=False, embeds_metadata=True, any_name=False,
    convert=_openvino_convert, finish=_openvino_finish, load=_openvino_load, stamp=_openvino_stamp,
    divergence=_openvino_divergence, localize=_openvino_localize,
    int8_fixed="(NNCF post-training quantization) takes min/max ranges, per-channel weights and fast bias "
               "correction, its defaults",
)
FORMATS: dict[str, Format] = {f.name: f for f in (ONNX, LITERT, OPENVINO)}
