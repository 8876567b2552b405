"""Is a failed int8 export netspec's loss, or int8's? Two comparisons for bench/zoo.py, each judged by the
export's own gate rule (``verify.run_gate``) on the gate's own batches, with the export's calibration samples:

- :func:`int8_in_keras`: int8 arithmetic simulated in Keras, with no export at all;
- :func:`int8_plain_ort`: onnxruntime's own static quantization of Keras's own ``model.export``, the
  plain way to get an int8 ONNX model without netspec.
"""

from __future__ import annotations

from pathlib import Path

from _util import feed_for, in_chunks

# onnxruntime's plain configurations: its QDQ default (uint8 activations, int8 weights) per channel and
# per tensor with min-max ranges, and its percentile calibration.
PLAIN_CONFIGS = (("MinMax", True), ("MinMax", False), ("Percentile", True))
# onnxruntime's histogram calibrators keep every recorded activation of every sample until they are done
# (DenseNet121 at 224 px: 192 MiB a sample): percentile is run only when that fits in this.
PLAIN_HISTOGRAM_BYTES = 6 * 2**30


def judge(references: dict, run, batches: list, classifier: bool) -> dict:
    """The int8 gate rule on ``run``'s outputs against the float references (by batch id)."""
    from netspec.export.verify import GateResult, run_gate, top1_totals

    gate = GateResult("int8")
    run_gate(lambda b: {"output": references[id(b)]}, lambda b: {"output": run(b)}, batches, "int8",
             {"output"} if classifier else set(), gate)
    agreed, decisive = top1_totals(gate.parity)
    return {"ok": gate.ok, "error_vs_range": max(p.error_vs_range for p in gate.parity),
            "top1_agreement": agreed / decisive if decisive else None, "top1_decisive": int(decisive)}


def gate_sets(model, spec, target, chunk: int) -> tuple[list, list]:
    """(the inputs at their first proven shapes, the export gate's batches): as ``netspec.export.pipeline``
    makes them, unknown dimensions at both proven sizes (MobileNetV3's 224 and 160), at batch 1 and ``chunk``."""
    from netspec.export import quantize, sizes
    from netspec.export.runs import gate_batches

    declared = quantize.describe_inputs(model)

    def refuse(field: str, message: str) -> Exception:
        return ValueError(f"{field}: {message}")

    sized = sizes.plan(model, declared, target, spec, None, refuse)
    inputs = sizes.feeds(declared, sized, 0)
    others = [sizes.feeds(declared, sized, k) for k in range(1, sizes.size_sets(sized))]
    return inputs, gate_batches(inputs, target, None, others, (1, min(8, chunk)))


def is_classifier(model) -> bool:
    return getattr(getattr(model.layers[-1], "activation", None), "__name__", "") == "softmax"


def int8_in_keras(model, spec, target, chunk: int) -> dict:
    """The int8 gate applied to int8 arithmetic simulated in Keras, with no export at all.

    Kernels are rounded to int8 per output channel (symmetric, as the export's per-channel weights);
    the model's inputs and every layer output a runtime does not fuse into the next layer (a
    convolution feeding only a BatchNormalization or an activation is fused: only the chain's last
    output is rounded) are rounded to uint8 at the min-max, then the percentile, of the export's own
    calibration samples, as onnxruntime's QDQ does. The simulated outputs on the gate's own batches
    are judged by the gate itself (``verify.run_gate``). When this fails too, the loss is int8's on
    these weights, not the export's. ``chunk``: samples per Keras call (the memory the lively pass took).
    """
    import keras
    import numpy as np
    from keras.src.models.functional import operation_fn as inference  # what Model.call wraps each layer with
    from netspec.export import quantize

    consumers: dict[int, list] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                consumers.setdefault(id(t._keras_history.operation), []).append(layer)
    fused_into = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation)

    def rounded_here(op) -> bool:
        after = consumers.get(id(op), [])
        return not (len(after) == 1 and isinstance(after[0], fused_into))

    methods = ("minmax", "percentile")
    ranges: dict[str, dict[str, tuple[float, float]]] = {m: {} for m in methods}  # one calibration pass for both
    method = methods[0]  # the one fake_quant rounds with

    def fake_quant(key: str, v):
        lo, hi = ranges[method][key]
        step = (hi - lo) / 255 or 1.0
        zero = np.round(-lo / step)
        v = np.asarray(v)
        return ((np.clip(np.round(v / step) + zero, 0, 255) - zero) * step).astype(v.dtype)

    def record(key: str, v) -> None:
        v = np.asarray(v).ravel()
        sample = v[::max(1, v.size // 1_000_000)]  # percentile: of a sample of at most ~1M values
        found_ = {"minmax": (float(v.min()), float(v.max())),
                  # onnxruntime's percentile: 99.999% of the values kept, half cut off each side
                  "percentile": tuple(float(q) for q in np.percentile(sample, [0.0005, 99.9995]))}
        for m, (lo, hi) in found_.items():
            old = ranges[m].get(key, (0.0, 0.0))  # over chunks: the widest; it holds 0, as a uint8 zero point needs
            ranges[m][key] = (min(lo, old[0]), max(hi, old[1]))

    def run(feed: dict, quantize_: bool | None):
        """quantize_ None: the float model; False: record the ranges; True: round."""
        args = []
        for t in model.inputs:
            v = feed[t.name]
            if quantize_ is not None and np.issubdtype(v.dtype, np.floating):
                if quantize_:
                    v = fake_quant("input:" + t.name, v)
                else:
                    record("input:" + t.name, v)
            args.append(v)

        def wrap(op):
            def call(*a, **k):
                out = inference(op, training=False)(*a, **k)
                if quantize_ is None or not rounded_here(op):
                    return out
                if not quantize_:
                    record(op.name, out)
                    return out
                return fake_quant(op.name, out)
            return call

        return np.asarray(model._run_through_graph(args, operation_fn=wrap))

    infos, batches = gate_sets(model, spec, target, chunk)
    calib, _ = quantize.calibration_arrays(spec, infos, target.calibration)
    references = {id(b): run(b, None) for b in batches}  # float kernels: before they are rounded
    kernels = []
    for layer in model.layers:
        for attr in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            k = getattr(layer, attr, None)
            if k is None or not hasattr(k, "assign"):
                continue
            w = np.asarray(k)
            axes = (0, 1) if attr == "depthwise_kernel" else tuple(range(w.ndim - 1))
            scale = np.abs(w).max(axis=axes, keepdims=True) / 127
            scale[scale == 0] = 1.0
            kernels.append((k, w))
            k.assign((np.round(w / scale) * scale).astype(w.dtype))
    found = {}
    try:
        total = len(next(iter(calib.values())))
        for start in range(0, total, chunk):
            run({k: v[start:start + chunk] for k, v in calib.items()}, False)
        for method in methods:
            found[method] = judge(references, lambda b: run(b, True), batches, is_classifier(model))
    finally:
        for k, w in kernels:
            k.assign(w)
    return {"ok": any(f["ok"] for f in found.values()), **found}


def int8_plain_ort(model, bare: Path, spec, target, chunk: int, work: Path, source: str = "keras",
                   run_chunk: int | None = None) -> dict:
    """The int8 gate applied to onnxruntime's own static quantization of Keras's own ``model.export``.

    ``bare`` is that export (``source`` "keras"), or netspec's fp32 export (``source`` "netspec") when Keras's
    goes over the memory cap; it is used only if it matches Keras within 1e-3 of the output range. ``chunk``
    sizes the gate's batches (as the export's gate made them); ``run_chunk`` (default ``chunk``) is how many
    samples Keras and onnxruntime run at once, for calibration too: min-max ranges do not depend on it.
    The result names its ``source``. It goes through onnxruntime's documented steps with no netspec code:
    ``quant_pre_process``, then ``quantize_static`` (QDQ, uint8 activations, int8 weights) over a
    ``CalibrationDataReader`` of the export's own calibration samples, in each of :data:`PLAIN_CONFIGS`
    (min-max records only each batch's reduced minimum and maximum; percentile runs only within
    :data:`PLAIN_HISTOGRAM_BYTES`. onnxruntime 1.31's ``CalibMaxIntermediateOutputs`` would not bound it:
    on reaching that count, its min-max calibrator drops what it collected, unmerged). When that fails too, and netspec's best export is no worse,
    the loss lies in int8 with onnxruntime on these weights, outside netspec.
    """
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from netspec.export import quantize
    from netspec.export.runs import activation_bytes

    infos, batches = gate_sets(model, spec, target, chunk)
    calib, _ = quantize.calibration_arrays(spec, infos, target.calibration)
    chunk = run_chunk or chunk
    references = {id(b): keras_outputs(model, b, infos, chunk) for b in batches}
    pre, out = work / "plain-pre.onnx", work / "plain-int8.onnx"
    bound = bind_keras_constants(model, bare, work / "plain-bound.onnx")
    if isinstance(bound, str):
        return {"ok": None, "unavailable": bound, "source": source}
    quant_pre_process(str(bound), str(pre))
    fp32 = ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"])

    def feed(x: dict) -> dict:
        return feed_for(fp32, x)

    class Reader:  # onnxruntime's CalibrationDataReader protocol
        def __init__(self) -> None:
            total = len(next(iter(calib.values())))
            self.it = iter([feed({k: v[s:s + chunk] for k, v in calib.items()}) for s in range(0, total, chunk)])

        def get_next(self):
            return next(self.it, None)

    first = batches[0]
    want = references[id(first)]
    off = float(np.abs(fp32.run(None, feed(first))[0] - want).max() / max(float(np.ptp(want)), 1e-12))
    if not off < 1e-3:  # the comparison is only worth its int8 when the float export it starts from is right
        whose = "Keras's own export" if source == "keras" else "netspec's fp32 export"
        return {"ok": None, "unavailable": f"{whose} is off by {off:.2g} of the output range in float32",
                "source": source}
    samples = len(next(iter(calib.values())))
    recorded = samples * activation_bytes(model)  # netspec's own costing of one sample's layer outputs
    found: dict = {}
    for method, per_channel in PLAIN_CONFIGS:
        key = f"{method.lower()}{'' if per_channel else ' per-tensor'}"
        if method != "MinMax" and recorded > PLAIN_HISTOGRAM_BYTES:
            found[key] = {"skipped": f"onnxruntime's {method} calibrator would hold {recorded / 2**30:.0f} GiB"}
            continue
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method))
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

        def run(b: dict, sess=sess):
            return in_chunks(lambda part: sess.run(None, feed(part))[0], b, chunk)

        found[key] = judge(references, run, batches, is_classifier(model))
    for f in (pre, out, work / "plain-bound.onnx"):
        f.unlink(missing_ok=True)
    if bound != bare:
        found["bound"] = BOUND_NOTE
    return {"ok": any(f.get("ok") for f in found.values() if isinstance(f, dict)), **found, "source": source}


BOUND_NOTE = ("Keras's own export leaves the Normalization layer's mean and variance as graph inputs (onnxruntime "
              "refuses to run it: 'Required inputs ... are missing'); they were bound to the layer's values")


def bind_keras_constants(model, bare: Path, dst: Path) -> Path | str:
    """Keras's own ONNX export of a model with a ``Normalization`` layer (EfficientNet) makes the layer's mean
    and variance graph inputs (``.../normalization_1/Sub/y:0``, ``.../Sqrt/x:0``), which nothing feeds. They are
    made initializers holding the layer's values, so onnxruntime can run it; nothing else changes. Returns the
    path to quantize (``bare`` itself when there is nothing to bind), or why it cannot run."""
    import re

    import keras
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(bare))
    extra = list(proto.graph.input)[len(model.inputs):]
    if not extra:
        return bare
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)]
    values = {}
    for inp in extra:
        found = re.search(r"/normalization[^/]*/(Sub/y|Sqrt/x):0$", inp.name)
        if not found or len(norms) != 1:
            return f"Keras's own export has graph input {inp.name!r} that nothing feeds"
        layer = norms[0]
        v = np.asarray(layer.mean if found.group(1) == "Sub/y" else layer.variance, dtype=np.float32)
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        values[inp.name] = v.reshape(shape) if all(shape) else v
    kept = [i for i in proto.graph.input if i.name not in values]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    proto.graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in values.items())
    onnx.save(proto, str(dst))
    return dst


def keras_outputs(model, x: dict, infos, chunk: int):
    """The float Keras model's (single) output on ``x``, ``chunk`` samples at a time."""
    import numpy as np

    def call(part: dict):
        return np.asarray(model(part[infos[0].name] if len(infos) == 1 else [part[i.name] for i in infos],
                                training=False))

    return in_chunks(call, x, chunk)
