"""Representative inputs and int8 quantization: generated samples, ORT static QDQ, LiteRT int8, held-out accuracy."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np

from ..budget import CALIBRATION_CHUNK_BYTES, UNKNOWN_DIM, calibration_chunk, feed_dims  # noqa: F401 - UNKNOWN_DIM re-exported: quantize.UNKNOWN_DIM
from ..errors import ExportError

if TYPE_CHECKING:
    from .targets import Calibration

Arrays = Mapping[str, np.ndarray]
DEFAULT_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class InputInfo:
    """What a generated sample of one input must look like."""

    name: str
    shape: tuple  # without batch; None for unknown
    dtype: str
    high: int | None = None  # exclusive upper bound of integer inputs (Embedding input_dim, ...)
    range: tuple[float, float] | None = None  # float inputs: what the stem expects (see expected_range)


def describe_inputs(model) -> list[InputInfo]:
    """The model's inputs, with integer bounds and float ranges read from the layers that consume them."""
    out = []
    for tensor in model.inputs:
        high = value_range = None
        consumers = _consumers(model, tensor)
        if "int" in str(tensor.dtype):
            high = _consumer_bound(consumers)
        elif "float" in str(tensor.dtype) and len(consumers) == 1:
            value_range = expected_range(consumers[0])
        out.append(InputInfo(tensor.name, tuple(tensor.shape)[1:], str(tensor.dtype), high, value_range))
    return out


def _consumers(model, tensor) -> list:
    from ..kerasapi import inbound_nodes

    return [layer for layer in model.layers
            if any(any(t is tensor for t in node.input_tensors) for node in inbound_nodes(layer))]


def _consumer_bound(consumers: list) -> int | None:
    for layer in consumers:
        for attr in ("input_dim", "num_tokens", "num_bins"):
            value = getattr(layer, attr, None)
            if isinstance(value, int) and value > 0:
                return value
    return None


def expected_range(layer) -> tuple[float, float] | None:
    """The input range a preprocessing stem was written for, or None (then generated floats are in [-1, 1]).

    ``keras.applications`` models that include their preprocessing (MobileNetV3, EfficientNet,
    EfficientNetV2, ConvNeXt, RegNet, ResNetRS) take pixels in [0, 255]. Fed [-1, 1], their stem
    turns the inputs into a near-constant (MobileNetV3's ``Rescaling(1/127.5, offset=-1)`` gives
    [-1.008, -0.992]): the int8 calibration then spends its 256 levels on a range the inputs never
    span (measured on MobileNetV3Small: max error 0.83 of the output range, against 0.19 fed pixels),
    and the gate compares outputs of inputs no user feeds. So:

    - ``Rescaling(scale, offset)``: the inputs it maps onto [-1, 1] (an offset) or [0, 1] (none);
    - ``Normalization(mean, variance)``: the uniform distribution with that mean and variance
      (``mean +- sqrt(3 * variance)``), over all channels.
    """
    name = type(layer).__name__
    try:
        if name == "Rescaling":
            scale, offset = float(np.asarray(layer.scale)), float(np.asarray(layer.offset))
            if scale == 0:
                return None
            lo, hi = (-1.0, 1.0) if offset != 0 else (0.0, 1.0)
            ends = sorted(((lo - offset) / scale, (hi - offset) / scale))
        elif name == "Normalization" and getattr(layer, "mean", None) is not None:
            mean = np.asarray(layer.mean, dtype=np.float64)
            half = np.sqrt(3.0 * np.maximum(np.asarray(layer.variance, dtype=np.float64), 0.0))
            ends = [float((mean - half).min()), float((mean + half).max())]
        else:
            return None
    except (TypeError, ValueError):  # a per-channel scale, an unbuilt layer: no range to read
        return None
    if not all(np.isfinite(ends)) or ends[1] <= ends[0]:
        return None
    return float(ends[0]), float(ends[1])


def generate(inputs: list[InputInfo], n: int, seed: int, value_range: tuple[float, float] | None = None) -> dict:
    """``n`` seeded samples shaped and typed from the declared inputs.

    Float inputs are uniform in ``value_range``, else in the range the input's stem expects
    (``InputInfo.range``), else in [-1, 1]; integer inputs uniform in
    [0, bound) where a consumer (Embedding, CategoryEncoding) gives the bound, else [0, 10);
    booleans are fair coin flips.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for info in inputs:
        shape = feed_dims(info.shape, n)  # the sizes the export budget costs (netspec.budget)
        if info.dtype == "bool":
            out[info.name] = rng.random(shape) < 0.5
        elif info.dtype == "string":
            words = np.array(["a", "b", "c", "the cat", "a dog"], dtype=object)
            out[info.name] = words[rng.integers(0, len(words), size=shape)]
        elif "int" in info.dtype:
            out[info.name] = rng.integers(0, info.high or 10, size=shape).astype(info.dtype)
        else:
            low, high = value_range or info.range or DEFAULT_RANGE
            out[info.name] = rng.uniform(low, high, size=shape).astype(info.dtype)
    return out


def batches(x: Arrays, size: int) -> Iterator[dict]:
    """``x`` cut into consecutive batches of ``size`` (the last one dropped if short, unless it is the only one)."""
    n = len(next(iter(x.values())))
    stop = max(size, n - n % size) if n >= size else n
    for start in range(0, stop, size):
        yield {k: v[start:start + size] for k, v in x.items()}


def calibration_arrays(spec, inputs: list[InputInfo], calibration: Calibration,
                       load_arrays: Callable | None = None) -> tuple[dict, str]:
    """Calibration samples: the spec's training inputs when it has some, else generated ones.

    Args:
        load_arrays: ``netspec.train.data.load_arrays``-like ``(spec, part) -> object with .x``; None
            when no loader is available.

    Returns:
        The arrays by input name and where they came from (for the report).
    """
    data = spec_data(spec, "train", load_arrays)
    if data is not None:
        x = {k: np.asarray(v)[: calibration.samples] for k, v in data.x.items()}
        return x, f"{len(next(iter(x.values())))} samples of the spec's training data"
    x = generate(inputs, calibration.samples, calibration.seed, calibration.range)
    low, high = calibration.range or DEFAULT_RANGE
    stems = [] if calibration.range else [i for i in inputs if i.range is not None and "float" in i.dtype]
    where = "".join(f"; {i.name} in [{i.range[0]:g}, {i.range[1]:g}], what its stem expects"
                    for i in stems if i.range is not None)
    return x, f"{calibration.samples} generated samples (seed {calibration.seed}, floats in [{low:g}, {high:g}]{where})"


def heldout_arrays(spec, load_arrays: Callable | None = None):
    """The spec's validation data (``.x`` and ``.y``), or None when it has none."""
    return spec_data(spec, "validation", load_arrays)


def spec_data(spec, part: str, load_arrays: Callable | None):
    """``load_arrays(spec, part)`` when the spec has that data (validation: a split or a source), else None."""
    if spec is None or load_arrays is None:
        return None
    data = (spec.section("train") or {}).get("data")
    if not data or (part == "validation" and not ("validation_split" in data or "validation" in data)):
        return None
    return load_arrays(spec, part)


# -- ONNX ---------------------------------------------------------------------------------------


def quantize_onnx(proto, x: Arrays, batch_size: int | None, *, method: str = "MinMax", per_channel: bool = True,
                  keep_float: tuple[str, ...] = ()):
    """onnxruntime static quantization: QDQ format, uint8 activations, int8 weights.

    The model is pre-processed first (symbolic shape inference and graph optimization, which let
    onnxruntime fuse the quantized operators), and activations are unsigned: on x86 CPUs U8S8 runs
    the VNNI/AVX2 integer kernels, while S8S8 QDQ measured twice as slow as fp32 here.

    Args:
        method: onnxruntime's ``CalibrationMethod`` member name (``formats.CALIBRATION_METHODS`` values).
        per_channel: weights quantized per output channel, else per tensor.
        keep_float: Keras layer (spec node) names whose ONNX nodes stay in float (``nodes_to_exclude``).

    Raises:
        ExportError: onnxruntime cannot quantize the model, or a ``keep_float`` name made no ONNX node.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data
    from .verify import nodes_of_layers
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = (os.path.join(tmp, f) for f in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(proto, src)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime logs advice on the root logger, every time
        try:
            quant_pre_process(src, pre)
            exclude = []
            if keep_float:
                found = nodes_of_layers(onnx.load(pre), keep_float)
                missing = [name for name in keep_float if not found.get(name)]
                if missing:
                    raise ExportError(f"keep_float: node {missing[0]!r} made no ONNX node (the converter folded it "
                                      "into its neighbours); nothing of it to keep in float: leave it out")
                exclude = [n for name in keep_float for n in found[name]]
            # The ranges are computed here, streamed over chunks of samples (see calibrate), and handed
            # to quantize_static through its public calibration cache.
            cache = os.path.join(tmp, "ranges.json")
            save_tensors_data(calibrate(pre, x, batch_size, method, os.path.join(tmp, "augmented.onnx")), cache)
            quantize_static(pre, dst, None, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=getattr(CalibrationMethod, method), calibration_cache_path=cache,
                            nodes_to_exclude=exclude, extra_options={"CalibTensorRangeSymmetric": False})
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"onnxruntime could not quantize the model: {type(e).__name__}: {str(e)[:300]}") from e
        finally:
            root.setLevel(level)
        return onnx.load(dst)


# A histogram of this many bins is searched for the threshold that keeps the most information at
# 128 quantized levels. quantize_static cannot pass it on (onnxruntime 1.31 leaves its entropy
# calibrator at 128 bins for 128 levels: a single candidate, the full range, so "entropy" gave
# exactly minmax's scales on all 250 tensors of MobileNetV3Small); calibrate() sets it.
ENTROPY_BINS = 2048
# What quantize_static would give each calibrator (asymmetric ranges: uint8 activations).
CALIBRATOR_OPTIONS = {"MinMax": {"symmetric": False},
                      "Entropy": {"symmetric": False, "num_bins": ENTROPY_BINS, "num_quantized_bins": 128},
                      "Percentile": {"symmetric": False}}


class _Chunk:
    """An onnxruntime ``CalibrationDataReader`` over a list of batches."""

    def __init__(self, items: list) -> None:
        self.it = iter(items)

    def get_next(self):
        return next(self.it, None)


def calibrate(model_path: str, x: Arrays, batch_size: int | None, method: str, augmented: str,
              chunk_bytes: int = CALIBRATION_CHUNK_BYTES):
    """onnxruntime's activation ranges of ``model_path`` on ``x``, streamed over chunks of samples.

    onnxruntime's calibrators keep what they record until ``collect_data`` returns: the histogram
    calibrators (entropy, percentile) every activation of every sample fed (DenseNet121 at 224 px:
    192 MiB a sample, 24 GiB for 128), MinMax a per-batch min and max. So the samples are fed in
    chunks whose recorded outputs stay within ``chunk_bytes`` (:func:`netspec.budget.calibration_chunk`,
    measured on the first batch): memory is bounded by a chunk, whatever the sample count.

    The result is the one of a single call: MinMax merges its ranges across calls; for the
    histograms, a MinMax pass first finds every tensor's range over all samples, and each histogram
    starts at its final width (onnxruntime's own merge re-bins a histogram a later chunk widens, and
    grows its bin count: measured 19% of a range apart, and 5x slower for entropy).

    Returns:
        onnxruntime's ``TensorsData`` (what ``save_tensors_data`` writes as a calibration cache).
    """
    size = batch_size or 1
    todo = list(batches(x, size))
    minmax = _calibrator(model_path, "MinMax", augmented)
    recorded = sum(np.asarray(o).nbytes for o in minmax.infer_session.run(None, todo[0]))
    ranges = _collect(minmax, todo, calibration_chunk(len(todo) * size, size, recorded, chunk_bytes) // size)
    if method == "MinMax":
        return ranges
    del minmax
    histograms = _calibrator(model_path, method, augmented)
    recorded = sum(np.asarray(o).nbytes for o in histograms.infer_session.run(None, todo[0]))
    _start_histograms(histograms, ranges)
    return _collect(histograms, todo, calibration_chunk(len(todo) * size, size, recorded, chunk_bytes) // size)


def _calibrator(model_path: str, method: str, augmented: str):
    from pathlib import Path

    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    # The tensors quantize_static would calibrate: those of every quantizable operator type.
    return create_calibrator(Path(model_path), sorted(set(QLinearOpsRegistry) | set(QDQRegistry)),
                             augmented_model_path=augmented, calibrate_method=getattr(CalibrationMethod, method),
                             extra_options=CALIBRATOR_OPTIONS[method])


def _collect(calibrator, todo: list, per_chunk: int):
    # The histogram calibrators print their progress: stdout is the report's.
    with contextlib.redirect_stdout(io.StringIO()):
        for start in range(0, len(todo), per_chunk):
            calibrator.collect_data(_Chunk(todo[start:start + per_chunk]))
        return calibrator.compute_data()


def _start_histograms(calibrator, ranges) -> None:
    """Give a histogram calibrator an empty histogram per tensor, already at the width all samples need.

    What onnxruntime's ``HistogramCollector.collect_value`` makes of a first call on every sample
    (``num_bins`` bins over [-t, t], t the largest magnitude, and the min and max); a chunk then only
    adds its counts (``merge_histogram`` with a threshold that never grows).
    """
    from onnxruntime.quantization.calibrate import HistogramCollector

    c = calibrator
    collector = HistogramCollector(method=c.method, symmetric=c.symmetric, num_bins=c.num_bins,
                                   num_quantized_bins=c.num_quantized_bins, percentile=c.percentile,
                                   scenario=c.scenario)
    for name, data in ranges.items():
        low, high = (np.asarray(v, dtype=np.float32).reshape(()) for v in data.range_value)
        threshold = np.array(max(abs(low), abs(high)), dtype=np.float32)
        # the range as onnxruntime passes it (0-d float32 arrays): the same float32 edges
        span = (-threshold, threshold)
        hist, edges = np.histogram(np.zeros(0, np.float32), c.num_bins, range=span)  # type: ignore[arg-type]
        collector.histogram_dict[name] = (hist, edges, low, high, threshold)
    c.collector = collector


# -- LiteRT -------------------------------------------------------------------------------------


def representative_dataset(x: Arrays, order: tuple[str, ...], batch_size: int | None) -> Callable:
    """The LiteRT converter's ``representative_dataset``: dicts by signature input name (order-proof)."""

    def gen():
        for b in batches(x, batch_size or 1):
            yield {name: b[name] for name in order}

    return gen


# -- accuracy ------------------------------------------------------------------------------------


def accuracy_change(reference: Callable[[Arrays], dict], run: Callable[[Arrays], dict], x: Arrays,
                    y: Mapping[str, np.ndarray], classifiers: set[str], batch_size: int = 32) -> dict:
    """Top-1 accuracy of Keras and of the export on labelled data, per classifier output.

    Args:
        reference, run: ``inputs -> outputs by name`` for Keras and the export.
        x: inputs by name; y: integer labels (or one-hot rows) by output name.

    Returns:
        ``{output: {"samples", "keras", "export", "change"}}`` for outputs with labels.
    """
    result = {}
    for name in sorted(set(y) & classifiers):
        labels = np.asarray(y[name])
        labels = labels.argmax(axis=-1) if labels.ndim == 2 else labels.reshape(-1)
        hits_k = hits_e = total = 0
        for start in range(0, len(labels), batch_size):
            xb = {k: v[start:start + batch_size] for k, v in x.items()}
            want, got = reference(xb)[name], run(xb)[name]
            lab = labels[start:start + batch_size]
            hits_k += int((want.argmax(axis=-1) == lab).sum())
            hits_e += int((got.argmax(axis=-1) == lab).sum())
            total += len(lab)
        keras_acc, export_acc = hits_k / total, hits_e / total
        result[name] = {"samples": total, "keras": keras_acc, "export": export_acc, "change": export_acc - keras_acc}
    return result
