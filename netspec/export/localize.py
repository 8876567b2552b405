"""Where an fp16 or int8 ONNX export departs from the float model: activations matched tensor by tensor.

int8 uses onnxruntime's ``quantization.qdq_loss_debug``: both models are run with every intermediate
tensor as an output, float and quantized activations are matched (``create_activation_matching``)
and compared by their signal-to-quantization-noise ratio (``compute_activation_error``; dB, lower
is worse). fp16 is compared the same way, tensor name by tensor name (the fp16 converter keeps the
names). Tensors are mapped to Keras layers (spec nodes) by the name scope tf2onnx gives them
(:func:`netspec.export.verify.layer_of`), so the report can name the spec's lines.
"""

from __future__ import annotations

import os
import tempfile
from typing import Mapping

import numpy as np

from .verify import layer_of

Arrays = Mapping[str, np.ndarray]
APPEARS_DB = 30.0  # an activation under this SQNR (error over ~3% of the signal) is where the error shows
EXACT_DB = 140.0  # SQNR of identical tensors is ~300 dB (eps-bound): capped, so losses read in real terms


def activation_errors(float_proto, low_proto, batches: list[Arrays], precision: str) -> list[dict]:
    """Per Keras layer, in graph order: its worst activation's SQNR against the float model, and how much
    SQNR it lost against its inputs.

    Args:
        float_proto: the fp32 ONNX model the export was made from.
        low_proto: the fp16 or int8 (QDQ) model.
        batches: inputs to run both on.

    Returns:
        ``[{"node", "tensor", "sqnr_db", "drop_db"}]``; layers without a matched activation are left out.
    """
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, f"{k}.onnx") for k in ("float", "low", "float_aug", "low_aug")}
        if precision == "int8":  # the QDQ model was made from the pre-processed float model: match its names
            from onnxruntime.quantization.shape_inference import quant_pre_process

            onnx.save(float_proto, paths["low"])
            quant_pre_process(paths["low"], paths["float"])
        else:
            onnx.save(float_proto, paths["float"])
        graph = onnx.load(paths["float"]).graph
        onnx.save(low_proto, paths["low"])
        sqnr = _streamed_sqnr(paths, batches, precision, _dynamic_batch(graph))
    return _by_layer(graph, sqnr)


def _dynamic_batch(graph) -> bool:
    """Whether every input's first dimension is free (then batches can be fed one sample at a time)."""
    dims = [i.type.tensor_type.shape.dim for i in graph.input]
    return all(len(d) > 0 and not d[0].dim_value for d in dims)


def _streamed_sqnr(paths: dict, batches: list[Arrays], precision: str, by_sample: bool) -> dict[str, float]:
    """Each matched activation's SQNR over all ``batches``, fed one piece at a time.

    onnxruntime's ``collect_activations`` keeps every intermediate tensor of every batch of both
    models (DenseNet121: 192 MiB a sample, 7.4 GiB peak for the gate's 9 samples). The SQNR of
    concatenated tensors, ``20 log10(|x| / |x - y|)`` (``compute_signal_to_quantization_noice_ratio``),
    only needs the two sums of squares, so they are summed piece by piece (a sample at a time when
    the batch dimension is free): memory is one sample's activations of each model.
    """
    import onnxruntime
    from onnxruntime.quantization.qdq_loss_debug import (create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL  # as collect_activations
    sessions = {}
    for k in ("float", "low"):
        modify_model_output_intermediate_tensors(paths[k], paths[f"{k}_aug"])
        sessions[k] = onnxruntime.InferenceSession(paths[f"{k}_aug"], sess_options=options,
                                                   providers=["CPUExecutionProvider"])
    pieces = [{n: v[i:i + 1] for n, v in b.items()} for b in batches for i in range(len(next(iter(b.values()))))] \
        if by_sample else [dict(b) for b in batches]
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    for piece in pieces:
        acts = {k: _activations(sess, piece) for k, sess in sessions.items()}
        if precision == "int8":
            matched = create_activation_matching(acts["low"], acts["float"])
        else:
            matched = {name: {"post_qdq": acts["low"][name], "float": a} for name, a in acts["float"].items()
                       if name in acts["low"]}
        del acts
        for name, m in matched.items():
            if not m.get("float") or m.get("post_qdq") is None:
                continue
            add_squares(signal, noise, name, m["float"][0], m["post_qdq"][0])
    return sqnr_db(signal, noise)


def add_squares(signal: dict[str, float], noise: dict[str, float], name: str, x, y) -> None:
    """Add one piece of tensor ``name`` to its sums of squares: ``x`` the float activation, ``y`` the low-precision one."""
    x = np.asarray(x, dtype=np.float64).ravel()  # fp16 against fp32: compared in 64 bits
    y = np.asarray(y, dtype=np.float64).ravel()
    signal[name] = signal.get(name, 0.0) + float(x @ x)
    noise[name] = noise.get(name, 0.0) + float((x - y) @ (x - y))


def sqnr_db(signal: dict[str, float], noise: dict[str, float]) -> dict[str, float]:
    """Each tensor's SQNR from its sums of squares (:func:`add_squares`), capped at :data:`EXACT_DB`."""
    eps = float(np.finfo("float").eps)
    return {name: min(EXACT_DB, 20 * float(np.log10(max(np.sqrt(signal[name]), eps) / max(np.sqrt(noise[name]), eps))))
            for name in signal}


def _activations(session, feed: Arrays) -> dict[str, list]:
    """One run's intermediate tensors by name (``collect_activations``' format, for one batch)."""
    from onnxruntime.quantization.qdq_loss_debug import _TENSOR_SAVE_POSTFIX

    cut = len(_TENSOR_SAVE_POSTFIX)
    return {o.name[:-cut]: [v] for o, v in zip(session.get_outputs(), session.run(None, dict(feed)))
            if o.name.endswith(_TENSOR_SAVE_POSTFIX)}


def _by_layer(graph, sqnr: dict[str, float]) -> list[dict]:
    by_layer: dict[str, dict] = {}
    for node in graph.node:
        layer = layer_of(node.name)
        measured = [(sqnr[t], t) for t in node.output if t in sqnr]
        if layer is None or not measured:
            continue
        worst, tensor = min(measured)
        inputs = [sqnr[t] for t in node.input if t in sqnr]
        drop = (min(inputs) - worst) if inputs else 0.0
        entry = by_layer.setdefault(layer, {"node": layer, "tensor": tensor, "sqnr_db": worst, "drop_db": drop})
        if worst < entry["sqnr_db"]:
            entry.update(tensor=tensor, sqnr_db=worst)
        entry["drop_db"] = max(entry["drop_db"], drop)
    return [{**e, "sqnr_db": float(e["sqnr_db"]), "drop_db": float(e["drop_db"])} for e in by_layer.values()]


def summarize(errors: list[dict]) -> dict:
    """The layers a report names: where the error appears (first under :data:`APPEARS_DB`), where it grows
    most (the largest SQNR losses against their inputs) and the worst."""
    if not errors:
        return {}
    appears = next((e for e in errors if e["sqnr_db"] < APPEARS_DB), None)
    grows = sorted((e for e in errors if e["drop_db"] > 1.0), key=lambda e: -e["drop_db"])[:3]
    return {"worst": min(errors, key=lambda e: e["sqnr_db"]), "appears": appears, "grows": grows}
