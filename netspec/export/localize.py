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
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([dict(b) for b in batches])

        def get_next(self):
            return next(self.it, None)

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
        for k in ("float", "low"):
            modify_model_output_intermediate_tensors(paths[k], paths[f"{k}_aug"])
        float_acts = collect_activations(paths["float_aug"], Reader())
        low_acts = collect_activations(paths["low_aug"], Reader())
    if precision == "int8":
        matched = create_activation_matching(low_acts, float_acts)
    else:
        matched = {name: {"pre_qdq": low_acts[name], "post_qdq": low_acts[name], "float": acts}
                   for name, acts in float_acts.items() if name in low_acts}
    matched = {name: m for name, m in matched.items() if m.get("float")}
    for m in matched.values():  # fp16 activations against fp32 ones: compare in fp32
        for key in ("pre_qdq", "post_qdq", "float"):
            m[key] = [np.asarray(a, dtype=np.float32) for a in m[key]]
    sqnr = {name: min(EXACT_DB, e["xmodel_err"]) for name, e in compute_activation_error(matched).items()
            if "xmodel_err" in e}

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
