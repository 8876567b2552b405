"""OpenVINO IR: convert (TensorFlow frontend), quantize (NNCF), stamp rt_info, write the .xml/.bin pair, run on CPU.

How the model is converted. ``openvino.convert_model`` is given the same serving ``tf.function``
the ONNX and LiteRT paths use (explicit signature, outputs as a dict by the spec's output names).
That is what Keras's own ``model.export(format="openvino")`` does on the TensorFlow backend, minus
what makes the Keras call unusable here: it names every output ``Identity:0``, writes the files
itself (no atomic write, no metadata before writing) and cannot take a fixed batch or input shape.
Measured on keras 3.15.1 / TF 2.21 / OpenVINO 2026.4.1: both give the same graph and errors
(LeNet-5 3e-8, MobileNetV2 0, an MLP-Mixer with exact gelu 1.2e-7). Converting the verified ONNX file
instead fails on anything tf2onnx has no op for and OpenVINO's ONNX frontend lacks (exact gelu's
``Erfc``), while the TensorFlow frontend takes TensorFlow's ops directly, so it is the path chosen.

Precision at run time. OpenVINO's CPU plugin computes in bfloat16 by default on CPUs with AMX or
AVX512-BF16 (``INFERENCE_PRECISION_HINT`` is ``bf16`` on the machine this was measured on): LeNet-5's
softmax was then 2.9e-4 off Keras, over the fp32 gate. Every model here is compiled with
``INFERENCE_PRECISION_HINT: f32`` (:data:`COMPILE_CONFIG`), and the IR says so in its rt_info, so
the runtime that ran the gate is the runtime a user gets from :func:`open_model`.

The files. ``-o m.xml`` writes ``m.xml`` and ``m.bin`` (the IR reader finds the weights by the xml's
stem). Both are written to temporary files beside them first; the ``.bin`` is renamed into place,
then the ``.xml``, which is the file that names the model: a failure before the renames leaves
both as they were, and nothing is ever written when the gate fails.

Metadata. The mapping the pipeline passes to ``finish`` (spec hash, resolved spec, target, the
deployment contract...) goes into the model's ``rt_info`` under :data:`RT_SECTION`, key by key,
as strings; :func:`read_metadata` reads it back.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..build.saving import atomic_path
from ..errors import ExportError

if TYPE_CHECKING:
    from .signature import IONames
    from .targets import Target
    from .verify import GateResult

RT_SECTION = "netspec"  # rt_info/netspec/<key> = value
PRECISION_KEY = "netspec.openvino.inference_precision"
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
# Graph bookkeeping, not computation: left out of the op count in the report.
_NOT_OPS = frozenset({"Parameter", "Result", "Constant"})


# -- convert, quantize, stamp ---------------------------------------------------------------------


def to_openvino(model, names: IONames, target: Target):
    """Convert the serving function of ``model`` with ``openvino.convert_model`` (TensorFlow frontend).

    Returns:
        The fp32 ``openvino.Model``, inputs and outputs named and ordered as the spec has them.

    Raises:
        ExportError: the converter refuses the graph (an op it has no rule for).
    """
    import openvino as ov
    import tensorflow as tf

    from .signature import serving_function

    serve, _ = serving_function(model, names, target.batch_size, target.input_shape)
    function = serve.get_concrete_function()
    try:
        with _quiet():
            converted = ov.convert_model(function)
    except Exception as e:
        raise ExportError(f"the OpenVINO converter refused the model: {_reason(e)}") from None
    # The function's flat outputs are a dict's values in sorted key order, its tensors named Identity, Identity_1...
    flat = tf.nest.flatten({k: k for k in function.structured_outputs})
    by_tensor = {t.name: key for t, key in zip(function.outputs, flat)}
    return _named(converted, by_tensor, names)


def _named(converted, by_tensor: dict[str, str], names: IONames):
    """Each output named exactly by the spec (and nothing else), in the spec's order.

    Which result is which output: its friendly name is the output's dict key, or, when the converter
    could not name it so (an input passed straight through), the function's tensor (``Identity_12:0``).
    Not their order: the converter orders results by those tensor names as strings (``Identity_10``
    before ``Identity_2``). An output often carries a TensorFlow tensor name too (a runner would have
    to guess which name is the output's), and an output that is an input passed through (Dropout at
    inference) or another output shares that tensor and its names: such an output gets a no-op
    Convert of its own, so every tensor name is unique.
    """
    import openvino as ov
    import openvino.opset13 as ops

    keys = set(by_tensor.values())
    named: dict[str, Any] = {}
    for result in converted.get_results():
        label = result.get_friendly_name()
        key = label if label in keys else by_tensor.get(label)
        if key is None or key in named:
            raise ExportError(f"the OpenVINO converter made an output netspec cannot name ({label}); "
                              f"outputs: {', '.join(sorted(keys))}")
        named[key] = result
    if set(named) != keys:
        raise ExportError(f"the OpenVINO converter lost outputs: {', '.join(sorted(keys - set(named)))}")
    taken: set[tuple[str, int]] = set()
    for key, result in named.items():
        source = result.input_value(0)
        producer = (source.get_node().get_friendly_name(), source.get_index())
        if producer in taken or source.get_node().get_type_name() == "Parameter":
            source = ops.convert(source, source.get_element_type()).output(0)
            result.input(0).replace_source_output(source)
        taken.add(producer)
        source.get_tensor().set_names({key})
    order = {n: i for i, n in enumerate(names.outputs)}
    results = [named[k] for k in sorted(named, key=lambda k: order.get(k, len(order)))]
    model = ov.Model(results, list(converted.get_parameters()), converted.get_friendly_name())
    model.validate_nodes_and_infer_types()
    return model


def quantize_int8(ov_model, calib: Mapping[str, np.ndarray], batch_size: int | None):
    """NNCF post-training quantization (its default: min/max ranges, per-channel weights, fast bias correction).

    Args:
        calib: calibration arrays by input name, samples along axis 0.
        batch_size: the target's fixed batch (calibration items are batches of it), None: one sample each.

    Returns:
        A new, quantized ``openvino.Model`` (``ov_model``, the float model, is left as it was).

    Raises:
        ExportError: NNCF fails on the model.
    """
    import nncf

    n = len(next(iter(calib.values())))
    step = batch_size or 1
    if n < step:
        raise ExportError(f"int8 calibration needs at least one batch of {step} samples. Received: {n} samples")
    items = [{k: v[i:i + step] for k, v in calib.items()} for i in range(0, n - step + 1, step)]
    logging.getLogger("nncf").setLevel(logging.ERROR)
    try:
        with _quiet():
            return nncf.quantize(ov_model, nncf.Dataset(items), subset_size=len(items))
    except Exception as e:
        raise ExportError(f"NNCF could not quantize the model: {_reason(e)}") from None


def stamp(ov_model, metadata: Mapping[str, str]) -> None:
    """Write ``metadata`` (and the inference precision the gate used) into the model's rt_info."""
    for key, value in {**metadata, PRECISION_KEY: COMPILE_CONFIG["INFERENCE_PRECISION_HINT"]}.items():
        ov_model.set_rt_info(str(value), [RT_SECTION, key])


def stamp_xml(xml: bytes, metadata: Mapping[str, str]) -> bytes:
    """The IR's ``.xml`` with ``metadata`` set in its rt_info (after the gate: its figures), weights untouched.

    The XML holds only the topology (the weights are in the ``.bin``), so it is edited as XML rather than
    re-read and re-serialized with its weights.
    """
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    rt = next((e for e in root if e.tag == "rt_info"), None)
    if rt is None:
        rt = ET.SubElement(root, "rt_info")
    section = next((e for e in rt if e.tag == RT_SECTION), None)
    if section is None:
        section = ET.SubElement(rt, RT_SECTION)
    for key, value in metadata.items():
        entry = next((e for e in section if e.tag == key), None)  # by tag: ElementPath reads "." in a key
        if entry is None:
            entry = ET.SubElement(section, key)
        entry.set("value", str(value))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def serialize(ov_model) -> tuple[bytes, bytes]:
    """The IR as (xml bytes, bin bytes), weights kept in fp32 (``save_model`` would halve them by default)."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(ov_model, xml, compress_to_fp16=False)
        return xml.read_bytes(), xml.with_suffix(".bin").read_bytes()


def op_count(ov_model) -> int:
    """Operations that compute (parameters, results and constants left out)."""
    return sum(op.get_type_name() not in _NOT_OPS for op in ov_model.get_ops())


# -- the files -------------------------------------------------------------------------------------


def bin_path(xml_path: str | os.PathLike) -> Path:
    """The weights file the IR reader looks for beside ``xml_path``: same stem, ``.bin``."""
    return Path(xml_path).with_suffix(".bin")


def write_pair(xml_path: str | os.PathLike, xml: bytes, weights: bytes) -> int:
    """Write ``xml_path`` and its ``.bin`` atomically (see the module docstring); returns the bytes written."""
    with atomic_path(xml_path) as xml_tmp:
        with atomic_path(bin_path(xml_path)) as bin_tmp:  # the inner one is renamed first: .bin, then .xml
            bin_tmp.write_bytes(weights)
            xml_tmp.write_bytes(xml)
    return len(xml) + len(weights)


# -- the runtime -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IRModel:
    """An OpenVINO IR opened for inference.

    Args:
        run: ``inputs by name -> outputs by name`` (numpy arrays) on the CPU, at the precision the gate checked.
        inputs: ``{name: {"shape", "dtype"}}`` in the model's input order (None for a dynamic dimension).
        outputs: the same for its outputs.
        metadata: what :func:`read_metadata` returns.
        ops: how many operations compute (parameters, results and constants left out).
    """

    run: Callable[[Mapping[str, np.ndarray]], dict]
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    metadata: dict[str, str]
    ops: int


def compile_ir(xml: bytes, weights: bytes, gate: GateResult | None = None) -> IRModel:
    """The serialized IR read back and compiled for CPU in fp32 (what is written is what is checked).

    Raises:
        ExportError: OpenVINO cannot read or compile it.
    """
    import openvino as ov

    try:
        ov_model = ov.Core().read_model(xml, weights)
    except Exception as e:
        raise ExportError(f"OpenVINO cannot read the exported model: {_reason(e)}") from None
    opened = _compiled(ov_model, "the exported model")
    if gate is not None:
        gate.checks.append(f"OpenVINO {ov.__version__.split('-')[0]} CPU (f32 inference precision)")
    return opened


def open_model(xml_path: str | os.PathLike, threads: int | None = None) -> IRModel:
    """Open an ``.xml`` (and the ``.bin`` beside it) for inference on CPU with f32 inference precision.

    Args:
        threads: CPU threads for inference (``INFERENCE_NUM_THREADS``); None: the plugin's default (every core).

    Raises:
        ExportError: the file is missing, unreadable, or cannot be compiled.
    """
    from ..source.kerasfile import display

    return _compiled(read_ir(xml_path), display(xml_path), threads)


def _compiled(ov_model, what: str, threads: int | None = None) -> IRModel:
    import openvino as ov

    config: dict[str, Any] = dict(COMPILE_CONFIG)
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    try:
        compiled = ov.Core().compile_model(ov_model, "CPU", config)
    except Exception as e:
        raise ExportError(f"{what}: OpenVINO cannot compile it for CPU: {_reason(e)}") from None
    inputs, outputs = ir_ports(ov_model)
    return IRModel(runner(compiled, list(outputs)), inputs, outputs, _metadata(ov_model), op_count(ov_model))


def runner(compiled, names: list[str]) -> Callable[[Mapping[str, np.ndarray]], dict]:
    """A compiled model as ``inputs by name -> outputs by name``, outputs named as the model (not the compiled
    model, whose ports gather the names of the nodes the CPU plugin fused into them) names them, in order."""
    request = compiled.create_infer_request()
    outputs = list(zip(compiled.outputs, names))

    def run(x: Mapping[str, np.ndarray]) -> dict:
        result = request.infer({k: np.ascontiguousarray(v) for k, v in x.items()})
        return {name: np.array(result[port]) for port, name in outputs}  # copies: the request reuses its buffers

    return run


def ir_ports(ov_model) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The inputs and outputs of an ``openvino.Model`` (compiled or not) as :func:`ports` describes them: the one
    reading of an IR's ports, for the runtime (:func:`open_model`) and ``netspec inspect`` (which does not compile)."""
    return ports(ov_model.inputs), ports(ov_model.outputs)


def ports(model_ports) -> dict[str, dict[str, Any]]:
    """``{name: {"shape": [dims, None where dynamic], "dtype": numpy dtype name}}`` of a model's inputs or outputs.

    A port with several tensor names (IR from elsewhere) is named by the first in sorted order.
    """
    out = {}
    for port in model_ports:
        shape = port.get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else None
        out[min(port.get_names(), default=port.get_any_name())] = {
            "shape": dims, "dtype": np.dtype(port.get_element_type().to_dtype()).name}
    return out


MAX_IR_BYTES = 2 << 30  # each of the .xml and the .bin of an IR read from a file


def read_ir(xml_path: str | os.PathLike):
    """The ``openvino.Model`` of an IR file, not compiled: the one reader of an ``.xml`` from disk, for
    :func:`open_model`, :func:`read_metadata` and ``netspec inspect`` alike.

    The files come from strangers, so before OpenVINO sees them: both are regular files under
    :data:`MAX_IR_BYTES`; the ``.bin`` may be a symlink only within the ``.xml``'s own directory tree
    (the rule of :mod:`netspec.source.paths`: a model's files stay where the model is, so a stranger's
    IR cannot read ``/dev/zero`` or a file elsewhere as its weights); the netspec section of its rt_info
    names each key once (:func:`check_rt_info`). OpenVINO's frontends print to the process's stderr
    when a file is not an IR (TensorFlow's text parser tries it too): that is captured, and the error
    is one line (:func:`netspec.errors.native_message`).

    Raises:
        ExportError: a missing or irregular file, a weights file out of bounds, duplicate keys, or a
            file OpenVINO cannot read; each names the ``.xml``.
    """
    import openvino as ov

    from ..source.kerasfile import display
    from .convert import quiet_native_stderr

    path = Path(xml_path)
    shown = display(path)
    _check_regular(path, shown, "")
    check_rt_info(path, shown)  # well-formed XML first: a truncated .xml is named as such, whatever its .bin
    _check_weights(path, shown)
    try:
        with quiet_native_stderr():
            return ov.Core().read_model(path)
    except Exception as e:
        raise ExportError(f"{shown}: not an OpenVINO IR file OpenVINO can read: {_reason(e)}") from None


def _check_regular(path: Path, shown: str, what: str) -> None:
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ExportError(f"no OpenVINO IR file at {shown}" if not what else
                          f"{what} are missing; an OpenVINO IR is an .xml with the .bin of the same name beside it")
    except OSError as e:
        raise ExportError(f"{what or shown} cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        link = " a symlink to" if path.is_symlink() else ""
        raise ExportError(f"{what or shown} is{link} {kind}, not a regular file")
    if st.st_size > MAX_IR_BYTES:
        raise ExportError(f"{what or shown} is {st.st_size:,} bytes; netspec reads IR files of at most {MAX_IR_BYTES:,}")


def _check_weights(xml: Path, shown: str) -> None:
    """The ``.bin`` beside ``xml``: present, regular, and a symlink only within the ``.xml``'s directory tree."""
    from ..source.kerasfile import display

    weights = bin_path(xml)
    what = f"{shown}: its weights {display(weights.name)}"
    if weights.is_symlink():
        home = Path(os.path.realpath(xml.parent))
        target = Path(os.path.realpath(weights))
        if target != home and home not in target.parents:
            raise ExportError(f"{what} are a symlink that leads outside the directory of the .xml; netspec follows "
                              "a model's symlinks only within its own directory tree")
    _check_regular(weights, shown, what)


def check_rt_info(xml: Path, shown: str) -> None:
    """Refuse an IR whose rt_info ``netspec`` section names a key twice, or that declares XML entities.

    OpenVINO keeps one of two equal keys without a word, so a stranger could put a second contract
    beside the one the gate checked and choose which a reader sees. The ``.xml`` is scanned with
    expat (streamed, nothing kept but the keys); an IR has no DTD, so a file declaring entities
    (billion laughs, external entities) is refused before anything is expanded.
    """
    from xml.parsers import expat

    from ..errors import Location

    parser = expat.ParserCreate()
    stack: list[str] = []
    seen: set[str] = set()

    def start(tag: str, attrs: dict) -> None:
        if len(stack) == 3 and stack[1] == "rt_info" and stack[2] == RT_SECTION:
            if tag in seen:
                raise ExportError(f"its rt_info holds {tag[:200]!r} twice (which one is meant?)",
                                  location=Location(shown, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
            seen.add(tag)
        stack.append(tag)

    def end(tag: str) -> None:
        stack.pop()

    def entity(name: str, *rest: Any) -> None:
        raise ExportError(f"it declares XML entities (<!ENTITY {name[:40]} ...>); an OpenVINO IR has none",
                          location=Location(shown, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))

    parser.StartElementHandler, parser.EndElementHandler, parser.EntityDeclHandler = start, end, entity
    try:
        with open(xml, "rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as e:
        raise ExportError(f"not an OpenVINO IR file OpenVINO can read: {expat.errors.messages[e.code]}",
                          location=Location(shown, e.lineno, e.offset + 1)) from None


def read_metadata(xml_path: str | os.PathLike) -> dict[str, str]:
    """The netspec metadata an exported ``.xml`` carries in its rt_info (empty when it has none).

    Raises:
        ExportError: the file is missing or not an IR OpenVINO can read.
    """
    return _metadata(read_ir(xml_path))


def _metadata(ov_model) -> dict[str, str]:
    if not ov_model.has_rt_info([RT_SECTION]):
        return {}
    section = ov_model.get_rt_info()[RT_SECTION]  # {key: OVAny}; a plain value when a file put one there
    if not isinstance(section, dict):
        return {}
    return {str(k): ov_model.get_rt_info([RT_SECTION, k]).astype(str) for k in section}


# -- helpers -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """The converter prints unsupported ops and NNCF a progress bar; the error or the report says what matters."""
    from .convert import quiet_native_stderr

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), quiet_native_stderr():
        yield


def _reason(e: BaseException) -> str:
    """The useful line of an OpenVINO error: the ops it has no rule for, else the message's start."""
    from ..errors import native_message

    text = str(e)
    marker = "No conversion rule found for operations:"
    if marker in text:
        return "no conversion rule for TensorFlow op(s) " + text.split(marker, 1)[1].strip().splitlines()[0]
    return native_message(e)
