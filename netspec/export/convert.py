"""Keras model -> ONNX (tf2onnx ``from_function``, named inputs/outputs/dims, fp16) and -> LiteRT bytes."""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Mapping

from ..errors import ExportError, keras_message
from . import tfgraph
from .signature import IONames, serving_function

if TYPE_CHECKING:
    from .targets import Target



@contextlib.contextmanager
def quiet_native_stderr():
    """File descriptor 2 to /dev/null: the TF Lite converter and interpreter print from C++."""
    import sys

    if os.environ.get("NETSPEC_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _quiet_tf2onnx():
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# tf2onnx's optimizer deep-copies the whole ONNX graph, weights included, before each of its dozen passes (and
# again every round until nothing changes), to fall back on it if a pass fails. A dead copy is a reference cycle
# (every node points back at its graph), so only the cyclic collector frees it; that collector runs by counts of
# objects, not bytes, and a copy is few objects holding many bytes, so dead copies pile up: ConvNeXtTiny's 110 MB
# of weights grew the optimizer to 3.5 GiB, ConvNeXtBase's past a 10 GiB cap. Collecting before each copy keeps at
# most the live graph and its copy; freezing the objects that existed before (TensorFlow's, Keras's, the model's)
# makes each collection scan only the optimizer's own objects, so it costs milliseconds.


class _CollectingCopy:
    """Stands in for the ``copy`` module inside ``tf2onnx.optimizer``: frees dead graph copies before each copy."""

    @staticmethod
    def deepcopy(x, memo=None):
        gc.collect()
        return copy.deepcopy(x, memo)


@contextlib.contextmanager
def _lean_tf2onnx():
    """tf2onnx's optimizer freeing dead graph copies (:class:`_CollectingCopy`), its transpose pass whole
    (:func:`_scalar_safe`)."""
    from tf2onnx import optimizer
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    optimize = optimizer.optimize_graph

    def collecting(*args, **kwargs):
        outer = gc.get_freeze_count() > 0  # onnx_model froze what existed before the conversion: keep it so
        if not outer:
            gc.freeze()
        optimizer.copy = _CollectingCopy
        try:
            return optimize(*args, **kwargs)
        finally:
            optimizer.copy = copy
            if not outer:
                gc.unfreeze()
            gc.collect()

    optimizer.optimize_graph = collecting
    merge_add = TransposeOptimizer._add_handler
    TransposeOptimizer._add_handler = _scalar_safe(merge_add)
    try:
        yield
    finally:
        optimizer.optimize_graph = optimize
        TransposeOptimizer._add_handler = merge_add


def _scalar_safe(merge_add):
    """tf2onnx's transpose optimizer on Conv (no bias) -> Transpose -> Add of a 0-d constant (MobileNetV3's
    hard-swish ``x + 3``): tf2onnx 1.17 takes ``max(shape)`` of the constant to merge it as a bias, raises on a
    0-d one, and abandons the whole pass (MobileNetV3Small kept 106 Transposes). That Add is handled here as
    tf2onnx handles any bias it cannot merge, and the export keeps none."""

    def handler(self, trans, node):
        conv = trans.inputs[0]
        if (node.inputs[1].is_const() and conv.type in ("Conv", "ConvTranspose") and len(conv.input) == 2
                and node.inputs[1].get_tensor_value(as_list=False).ndim == 0):
            return self._handle_node_having_branches(trans, node)
        return merge_add(self, trans, node)

    return handler


def to_onnx(model, names: IONames, target: Target):
    """Convert with tf2onnx at ``target.opset``; names the dynamic dimensions.

    Calls that Keras or a user layer compiles with XLA are inlined (:func:`tfgraph.drop_xla_marks`); the weights
    are copied fewer times than tf2onnx alone would (:func:`tfgraph.frozen_graph_def`, :func:`onnx_model`).

    Returns:
        The fp32 ``onnx.ModelProto`` (unchecked: the gate checks it).

    Raises:
        ExportError: tf2onnx refuses the graph.
    """
    serve, sig = serving_function(model, names, target.batch_size, target.input_shape)
    try:
        with _quiet_tf2onnx(), _lean_tf2onnx():
            proto = onnx_model(serve, sig, target.opset)
    except Exception as e:
        raise ExportError(f"tf2onnx could not convert the model: {type(e).__name__}: {keras_message(e, 300)}") from e
    order = {n: i for i, n in enumerate(names.outputs)}  # tf2onnx sorts a dict's outputs by key
    outs = sorted(proto.graph.output, key=lambda o: order.get(o.name, len(order)))
    copies = [type(o)() for o in outs]
    for c, o in zip(copies, outs):
        c.CopyFrom(o)
    del proto.graph.output[:]
    proto.graph.output.extend(copies)
    name_dims(proto, names)
    return proto


def onnx_model(serve, sig, opset: int):
    """tf2onnx's ``convert.from_function`` (and its ``_convert_common``), step for step, each copy of the weights
    freed as soon as the next exists.

    tf2onnx keeps the frozen ``GraphDef`` and the TensorFlow graph it imports it into alive until the ONNX proto
    is made, and its graph of ONNX nodes (reference cycles) until the collector happens to run: ConvNeXtTiny's
    conversion left 12x its weights resident after returning a proto of 1x. Here the ``GraphDef`` goes once
    imported, the TensorFlow graph once tf2onnx has read it, and tf2onnx's graph once the proto exists: 2.7x
    resident after, and the onnx-cpu export's peak 29.4x -> 21.5x its weights (bench/export_memory.py). The
    ONNX file's outputs are bit-identical; tf2onnx's generated node names vary from run to run either way.
    """
    # Objects that exist now (TensorFlow's, Keras's, the model's) are left out of the collections below, so each
    # scans only the conversion's own objects: five full collections cost 1.4 s of MobileNetV2's 5.2 s.
    gc.freeze()
    try:
        return _onnx_model(serve, sig, opset)
    finally:
        gc.unfreeze()


def _onnx_model(serve, sig, opset: int):
    import tensorflow as tf
    from tf2onnx import convert, optimizer, tfonnx

    concrete = serve.get_concrete_function(*sig)
    # The signature's own inputs come first; after them, the captures. tf2onnx (and Keras's export) names every
    # non-resource capture an input too: a constant the model holds as a tensor (``ops.convert_to_tensor``,
    # ``resnet50.preprocess_input``'s mean) became a graph input nothing feeds ("Required inputs ... are missing").
    own = len(tf.nest.flatten(concrete.structured_input_signature))
    input_names = [t.name for t in concrete.inputs[:own] if t.dtype != tf.dtypes.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    renames = convert.tensor_names_from_structed(concrete, input_names, output_names)
    title = f"converted from {concrete.name}"
    with tf.device("/cpu:0"):
        graph_def = tfgraph.frozen_graph_def(concrete, input_names, output_names)
        del concrete
        with tf.Graph().as_default() as tf_graph:
            tf.import_graph_def(graph_def, name="")
            del graph_def
            graph = tfonnx.process_tf_graph(tf_graph, continue_on_error=True, opset=opset, input_names=input_names,
                                            output_names=output_names, tensors_to_rename=renames)
        del tf_graph
        gc.collect()
        graph = optimizer.optimize_graph(graph, True)  # catch_errors, as tf2onnx without an external store
        proto = graph.make_model(title)
        del graph
        gc.collect()
    return proto


def name_dims(proto, names: IONames) -> None:
    """Replace tf2onnx's ``unk__N`` dimension names: ``batch`` for axis 0, else ``<tensor>_dim<i>``."""
    renamed: dict[str, str] = {}

    def visit(value_info, own: bool) -> None:
        dims = value_info.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_param"):
                continue
            old = d.dim_param
            if old in renamed:
                d.dim_param = renamed[old]
            elif own:
                renamed[old] = d.dim_param = "batch" if i == 0 else f"{value_info.name}_dim{i}"

    for vi in proto.graph.input:
        visit(vi, True)
    for vi in proto.graph.output:
        visit(vi, True)
    for vi in proto.graph.value_info:
        visit(vi, False)


def to_fp16(proto):
    """fp16 weights and compute, fp32 inputs and outputs (``keep_io_types``)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = convert_float_to_float16(proto, keep_io_types=True)
    topological_sort(out.graph)  # the converter appends the input casts after their consumers
    return out


def topological_sort(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (stable)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle or a dangling input: leave it for the checker to name
            ordered.extend(rest)
            break
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def set_metadata(proto, props: Mapping[str, str]) -> None:
    """Add ``metadata_props`` entries (replacing entries of the same key)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in [*keep, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


METADATA_FIELD = 14  # ModelProto.metadata_props


def stamp_onnx(data: bytes, props: Mapping[str, str]) -> bytes:
    """A serialized ONNX model with ``metadata_props`` entries added or replaced, as :func:`set_metadata` would,
    without parsing the model.

    Parsing and re-serializing the whole model to change a few strings held two more copies of the weights
    at the end of an export, when its peak was reached: ConvNeXtBase's onnx-cpu export peaked at 16.7x its
    weights while stamping. Here only the top-level fields of the ``ModelProto`` are walked (the graph is one
    field, skipped by its length) and the output is the only copy. Malformed top-level fields and metadata
    entries raise ValueError; the graph's own bytes are not read (the pipeline stamps only what it made).
    """
    import onnx
    from google.protobuf.message import DecodeError

    view = memoryview(data)
    parts: list = []
    entries: list[tuple[str, str]] = []
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError(f"not a serialized ONNX model: field number 0 at byte {start}")
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if field == METADATA_FIELD:
                try:
                    entry = onnx.StringStringEntryProto.FromString(view[pos:pos + size])
                except DecodeError as e:
                    raise ValueError(f"not a serialized ONNX model: metadata entry at byte {start}: {e}") from e
                entries.append((entry.key, entry.value))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"not a serialized ONNX model: wire type {wire} at byte {start}")
        if pos > len(data):
            raise ValueError("not a serialized ONNX model: truncated")
        if field != METADATA_FIELD:
            parts.append(view[start:pos])
    tail = onnx.ModelProto()
    for key, value in [*((k, v) for k, v in entries if k not in props), *props.items()]:
        entry = tail.metadata_props.add()
        entry.key, entry.value = key, value
    return b"".join([*parts, tail.SerializeToString()])


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("not a serialized ONNX model: bad varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def to_litert(model, names: IONames, target: Target, representative=None) -> bytes:
    """Convert the serving function with the LiteRT converter, builtin ops only (no Flex delegate needed).

    Args:
        representative: for int8, a callable yielding lists of input arrays (in input order).

    Raises:
        ExportError: the converter refuses the model (an op LiteRT has no builtin for, ...).
    """
    import tensorflow as tf

    from keras.export import ExportArchive

    serve, sig = serving_function(model, names, target.batch_size, target.input_shape)
    try:
        with _quiet_tf2onnx(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
                quiet_native_stderr(), tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            # The converter's int8 calibrator runs TensorFlow's own tf.lite.Interpreter, which warns that it is
            # deprecated; netspec's gate runs ai_edge_litert's, so the warning would name a choice not ours.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                                    category=UserWarning)
            # Keras's own LiteRT path (ExportArchive -> SavedModel -> converter), with our serving function
            # so the signature has the spec's input and output names.
            archive = ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", serve, input_signature=sig)
            archive.write_out(tmp, verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if target.precision == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            return converter.convert()
    except Exception as e:
        reason = _first_line(e)
        hint = _batch_one_hint(model, names, target, representative) \
            if target.batch_size is None and reason.endswith("is not a LiteRT builtin op") else None
        raise ExportError(f"the LiteRT converter refused the model: {reason}", hint=hint) from e


def _batch_one_hint(model, names: IONames, target: Target, representative) -> str | None:
    """Whether a model the converter refused with a dynamic batch converts at batch 1 (a U-Net: after
    UpSampling2D the converter loses the height and refuses the next tf.Conv2D, a builtin, as an op it cannot
    lower). Only on that failure: one more conversion, whose result is not kept."""
    from dataclasses import replace

    try:
        to_litert(model, names, replace(target, batch_size=1), representative)
    except ExportError:
        return None
    return ("the model converts with a fixed batch of 1 (with a dynamic batch the converter loses a shape it "
            "needs): pass --batch-size 1, or batch_size: 1 in the target")


def _first_line(e: Exception) -> str:
    import re

    text = " ".join(str(e).split())
    op = re.search(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)
    if op:
        scope = re.search(r'fused\["\w+:", "[^/"]+/([^/"]+?)(?:_\d+)?/', text)
        where = f" in layer {scope.group(1)!r}" if scope else ""
        return f"{op.group(1)}{where} is not a LiteRT builtin op"
    for marker in ("error: ", "Error: "):
        if marker in text:
            text = text[text.index(marker):]
            break
    return text[:400]
