"""int8 and fp16 exports: the calibration options (method, per-channel, nodes kept in float) and located failures."""

from __future__ import annotations

import textwrap

import pytest

import netspec
from netspec.cli import main
from netspec.errors import ExportError
from netspec.export import export
from netspec.export.targets import BUILTIN, get_target, with_overrides

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_export_int8")

TINY = textwrap.dedent("""\
    netspec: 1
    name: tiny
    inputs:
      image: {shape: [8, 8, 3]}
    nodes:
      - {name: conv, type: Conv2D, filters: 4, kernel_size: 3, activation: relu, in: image}
      - {name: pool, type: GlobalAveragePooling2D}
      - {name: head, type: Dense, units: 3}
    export:
      careful: {format: onnx, precision: int8, calibration: {method: entropy, samples: 8}, per_channel: false,
                keep_float: [head]}
      short: {format: onnx, precision: int8, calibration: percentile}
    """)


@pytest.fixture(scope="module")
def tiny():
    return netspec.load(TINY)


def _spy_quantize_static(monkeypatch) -> list[dict]:
    import onnxruntime.quantization as q

    calls, real = [], q.quantize_static

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(q, "quantize_static", spy)
    return calls


def _float_weights(proto, layer: str) -> list[str]:
    """The op types of ``layer``'s ONNX nodes that read a float initializer directly (not dequantized)."""
    import onnx

    floats = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) > 1}
    return [n.op_type for n in proto.graph.node if f"/{layer}_1/" in n.name and set(n.input) & floats]


# -- the options, from the spec --------------------------------------------------------------------

SECTION_CASES = [
    # target, calibration.method, per_channel, keep_float
    ("careful", "entropy", False, ("head",)),
    ("short", "percentile", True, ()),
    ("onnx-int8", "minmax", True, ()),
]


@pytest.mark.parametrize("name, method, per_channel, keep", SECTION_CASES)
def test_int8_options_are_read_from_the_export_section(tiny, name, method, per_channel, keep):
    target = get_target(name, tiny)
    assert (target.calibration.method, target.per_channel, target.keep_float) == (method, per_channel, keep)
    assert target.to_dict()["keep_float"] == list(keep)


def test_int8_options_reach_onnxruntime(keras, tiny, monkeypatch, tmp_path):
    import onnx

    calls = _spy_quantize_static(monkeypatch)
    report = export(tiny, get_target("careful", tiny), tmp_path / "c.onnx", latency=False)
    assert report.gate.ok
    (kw,) = calls
    assert kw["calibrate_method"].name == "Entropy" and kw["per_channel"] is False
    assert kw["nodes_to_exclude"] and all("/head_1/" in n for n in kw["nodes_to_exclude"])
    proto = onnx.load(tmp_path / "c.onnx")
    assert _float_weights(proto, "head") == ["MatMul"]  # the head's weights stay float
    assert _float_weights(proto, "conv") == []  # the conv's are quantized
    scales = [i for i in proto.graph.initializer if "conv" in i.name and i.name.endswith("_scale")]
    assert scales and all(len(i.dims) == 0 for i in scales)  # per tensor: one scale each


def test_cli_int8_options_override_the_target(keras, monkeypatch, tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    calls = _spy_quantize_static(monkeypatch)
    rc = main(["export", str(spec), "--target", "onnx-int8", "-o", str(tmp_path / "t.onnx"), "--no-latency",
               "--calibration", "percentile", "--no-per-channel", "--keep-float", "conv,head", "--format", "json"])
    assert rc == 0, capsys.readouterr().err
    (kw,) = calls
    assert kw["calibrate_method"].name == "Percentile" and kw["per_channel"] is False
    assert {n.split("/")[1] for n in kw["nodes_to_exclude"]} == {"conv_1", "head_1"}
    assert '"keep_float": [' in capsys.readouterr().out  # the target in the JSON report


# -- the options refused, located -------------------------------------------------------------------

SPEC_ERRORS = [
    # export entry, message fragment, line:column
    ("{format: onnx, precision: int8, keep_float: [haed]}", "keep_float names no node of the spec. Received: 'haed'",
     "10:53"),
    ("{format: onnx, precision: fp32, per_channel: false}", "per_channel applies to int8 targets only", "10:53"),
    ("{format: litert, precision: int8, calibration: entropy}", "calibration applies to int8 targets of ONNX",
     "10:55"),
    ("{format: onnx, precision: int8, calibration: {method: mean}}", "expected one of 'entropy', 'minmax', 'percentile'", "10:62"),
]


@pytest.mark.parametrize("entry, fragment, where", SPEC_ERRORS)
def test_int8_options_errors_are_located(tmp_path, capsys, entry, fragment, where):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY.split("export:")[0] + f"export:\n  bad: {entry}\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{where}:" in err and fragment in err
    if "haed" in entry:
        assert "did you mean 'head'?" in err


CLI_ERRORS = [
    # options, message fragment
    (["--target", "onnx-int8", "--calibration", "entropie"], "--calibration must be minmax | entropy | percentile"),
    (["--target", "onnx-cpu", "--keep-float", "conv"], "--keep-float applies to int8 targets"),
    (["--target", "litert-int8", "--no-per-channel"], "--per-channel applies to int8 targets of ONNX"),
]


@pytest.mark.parametrize("options, fragment", CLI_ERRORS)
def test_cli_int8_option_errors(tmp_path, capsys, options, fragment):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    assert main(["export", str(spec), "-o", str(tmp_path / "x" / "t.onnx"), *options]) == 1
    assert fragment in capsys.readouterr().err


def test_unknown_keep_float_node_from_the_cli_has_a_did_you_mean(keras, tiny, tmp_path):
    target = with_overrides(BUILTIN["onnx-int8"], keep_float=["haed"])
    with pytest.raises(ExportError, match="keep_float names no node of the spec. Received: 'haed'") as info:
        export(tiny, target, tmp_path / "t.onnx", latency=False)
    assert info.value.hint == "did you mean 'head'?"
    assert list(tmp_path.iterdir()) == []


# -- a .keras file is checked like a spec ----------------------------------------------------------

DISCRETIZE = textwrap.dedent("""\
    netspec: 1
    name: buckets
    inputs:
      x: [4]
    nodes:
      - {name: bucket, type: Discretization, bin_boundaries: [0.0, 1.0]}
      - {name: out, type: Dense, units: 2}
    """)

KERAS_FILE_CASES = [
    # spec (file name or text), refused node, its class
    ("argmax_head.yaml", "label", "Expression"),
    (DISCRETIZE, "bucket", "Discretization"),
]


@pytest.mark.parametrize("spec, node, cls", KERAS_FILE_CASES, ids=["expression", "layer"])
def test_export_of_a_keras_file_refuses_what_validate_target_refuses(keras, tmp_path, capsys, spec, node, cls):
    from conftest import SPECS

    path = SPECS / spec if spec.endswith(".yaml") else tmp_path / "s.yaml"
    if not spec.endswith(".yaml"):
        path.write_text(spec)
    assert main(["validate", str(path), "--target", "onnx-cpu"]) == 1
    said = capsys.readouterr().err
    reason = said.split(f"refused: node {node!r}: ", 1)[1].splitlines()[0]
    model = tmp_path / "m.keras"
    assert main(["build", str(path), "-o", str(model)]) == 0
    capsys.readouterr()
    out = tmp_path / "m.onnx"
    assert main(["export", str(model), "--target", "onnx-cpu", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{model}: target 'onnx-cpu' (onnx) cannot take layer {node!r} ({cls}): {reason}" in err
    assert "Required inputs" not in err and not out.exists()


# -- failures located for every precision ----------------------------------------------------------


@pytest.mark.parametrize("name", ["onnx-int8", "onnx-gpu-fp16"])
def test_a_failed_low_precision_gate_names_the_worst_node_with_its_line(keras, tiny, tmp_path, monkeypatch, name):
    from dataclasses import replace

    from netspec.export import GateError, verify

    tight = {p: replace(t, atol=1e-9) for p, t in verify.TOLERANCES.items()}  # no export is that exact
    monkeypatch.setattr(verify, "TOLERANCES", tight)
    with pytest.raises(GateError) as info:
        export(tiny, BUILTIN[name], tmp_path / "t.onnx", latency=False)
    located = info.value.report.gate.located
    assert set(located) == {"worst", "appears", "grows"}, located
    worst = located["worst"]["node"]
    assert worst in {"conv", "pool", "head"}
    line = {"conv": 6, "pool": 7, "head": 8}[worst]
    text = str(info.value)
    assert f"worst at node {worst!r} (<spec>:{line}:5)" in text, text
    assert info.value.report.to_dict()["gate"]["located"]["worst"]["node"] == worst
    assert list(tmp_path.iterdir()) == []


def test_entropy_calibration_clips_what_minmax_keeps():
    """``calibration: entropy`` is its own method: on heavy-tailed activations its ranges are narrower than
    minmax's (onnxruntime's quantize_static alone leaves the entropy histogram at one candidate: minmax)."""
    import keras
    import numpy as np
    import onnx
    import tensorflow as tf
    import tf2onnx

    from netspec.export.quantize import quantize_onnx

    inp = keras.Input((16,), name="x")
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Dense(32, activation="relu")(inp)))
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=[tf.TensorSpec((None, 16), tf.float32, name="x")],
                                          opset=17)
    x = {"x": np.random.default_rng(0).standard_t(2, size=(64, 16)).astype("float32")}

    def activation_scales(method):
        q = quantize_onnx(proto, x, 8, method=method)
        return sorted(float(onnx.numpy_helper.to_array(t)) for t in q.graph.initializer
                      if t.name.endswith("_scale") and onnx.numpy_helper.to_array(t).ndim == 0)

    minmax, entropy = activation_scales("MinMax"), activation_scales("Entropy")
    assert len(minmax) == len(entropy) > 0
    assert all(e <= m for e, m in zip(entropy, minmax)) and sum(entropy) < 0.8 * sum(minmax), (minmax, entropy)


# -- calibration streamed over chunks of samples ---------------------------------------------------


@pytest.fixture(scope="module")
def dense_block(tmp_path_factory):
    """A DenseNet-like block (every conv reads the concatenation of all before it), pre-processed for
    quantization: many activations per sample, as in DenseNet121 whose 128 samples once needed 24 GiB."""
    import keras
    import numpy as np
    import onnx
    import tensorflow as tf
    import tf2onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3), name="x")
    feats = [keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)]
    for _ in range(3):
        joined = keras.layers.Concatenate()(feats) if len(feats) > 1 else feats[0]
        feats.append(keras.layers.Conv2D(4, 3, padding="same", activation="relu")(joined))
    out = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(keras.layers.Concatenate()(feats)))
    proto, _ = tf2onnx.convert.from_keras(keras.Model(inp, out), opset=17,
                                          input_signature=[tf.TensorSpec((None, 12, 12, 3), tf.float32, name="x")])
    tmp = tmp_path_factory.mktemp("dense")
    onnx.save(proto, tmp / "fp32.onnx")
    quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"))
    x = {"x": np.random.default_rng(0).standard_t(3, size=(32, 12, 12, 3)).astype("float32")}  # heavy tails
    return tmp, x


@pytest.mark.parametrize("method", ["MinMax", "Entropy", "Percentile"])
def test_calibration_in_chunks_gives_the_ranges_of_one_pass(dense_block, monkeypatch, method):
    import numpy as np
    from onnxruntime.quantization import calibrate as ort_calibrate

    from netspec.export import quantize

    # fewer entropy bins: the threshold search is quadratic in them, and the equality holds at any count
    monkeypatch.setitem(quantize.CALIBRATOR_OPTIONS, "Entropy", {**quantize.CALIBRATOR_OPTIONS["Entropy"],
                                                                "num_bins": 256})
    tmp, x = dense_block
    fed: list[int] = []  # batches per collect_data call: what a calibrator holds at once
    for cls in (ort_calibrate.MinMaxCalibrater, ort_calibrate.HistogramCalibrater):
        real = cls.collect_data

        def spy(self, reader, real=real):
            items = list(iter(reader.get_next, None))
            fed.append(len(items))
            return real(self, quantize._Chunk(items))

        monkeypatch.setattr(cls, "collect_data", spy)
    whole = quantize.calibrate(str(tmp / "pre.onnx"), x, 4, method, str(tmp / "aug.onnx"), chunk_bytes=1 << 40)
    assert max(fed) == 8  # all 32 samples at once
    fed.clear()
    chunked = quantize.calibrate(str(tmp / "pre.onnx"), x, 4, method, str(tmp / "aug.onnx"), chunk_bytes=1)
    assert set(fed) == {1} and len(fed) == (8 if method == "MinMax" else 16)  # one batch at a time
    assert set(whole.data) == set(chunked.data) and len(whole.data) > 10
    for name, data in whole.items():
        assert np.array_equal(np.ravel(data.range_value), np.ravel(chunked[name].range_value)), name
    if method == "Entropy":  # a method of its own still: it clips the heavy tails minmax keeps
        minmax = quantize.calibrate(str(tmp / "pre.onnx"), x, 4, "MinMax", str(tmp / "aug.onnx"))
        spans = [(float(np.ravel(v.range_value)[1] - np.ravel(v.range_value)[0]),
                  float(np.ravel(minmax[k].range_value)[1] - np.ravel(minmax[k].range_value)[0]))
                 for k, v in whole.items()]
        assert sum(a for a, _ in spans) < 0.9 * sum(b for _, b in spans), spans


def test_calibration_memory_is_priced_by_the_chunk_not_the_sample_count():
    from netspec import budget

    mib = 2**20
    # DenseNet121 at 224 px: 192 MiB of activations and 1.8 MiB of generated input a sample.
    (gate, calib) = budget.export_runs(int(1.8 * mib), 192 * mib, 8, 128)
    assert calib.field == "calibration.samples"
    assert calib.bytes < 1.5 * 2**30, budget.format_bytes(calib.bytes)  # was 24 GiB: 128 x a sample
    assert "a chunk of 1 recorded" in calib.what
    many = budget.export_runs(int(1.8 * mib), 192 * mib, 8, 100_000)[1]
    assert many.bytes - calib.bytes == (100_000 - 128) * int(1.8 * mib)  # only the inputs grow with samples
    small = budget.export_runs(1000, 1000, 8, 128)[1]  # a small net: every sample in one chunk
    assert "a chunk of 128 recorded" in small.what and small.bytes == 128 * 1000 + (1 + 2 * 128) * 1000
    # min-max records two numbers a tensor: the running batch is the cost (EfficientNetB7 at 600 px was refused)
    minmax = budget.export_runs(int(1.8 * mib), 192 * mib, 8, 128, histogram=False)[1]
    assert minmax.bytes == 128 * int(1.8 * mib) + 192 * mib and "records ranges only" in minmax.what


def test_localisation_streams_samples_with_onnxruntimes_sqnr(dense_block, monkeypatch):
    """The report's SQNR per tensor is onnxruntime's qdq_loss_debug figure over all batches, computed one sample
    at a time (collect_activations keeps every activation of every batch of both models: 7.4 GiB on DenseNet121)."""
    import numpy as np
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    from netspec.export import localize
    from netspec.export.quantize import quantize_onnx

    tmp, x = dense_block
    low = quantize_onnx(onnx.load(tmp / "fp32.onnx"), x, 4)
    onnx.save(low, tmp / "low.onnx")
    batches = [{"x": x["x"][:1]}, {"x": x["x"][1:9]}]  # the gate's batches of 1 and 8
    want = {}
    for k in ("pre", "low"):
        modify_model_output_intermediate_tensors(str(tmp / f"{k}.onnx"), str(tmp / f"{k}_aug.onnx"))
        want[k] = collect_activations(str(tmp / f"{k}_aug.onnx"), iter(batches))
    errors = compute_activation_error(create_activation_matching(want["low"], want["pre"]))
    paths = {"float": str(tmp / "pre.onnx"), "low": str(tmp / "low.onnx"),
             "float_aug": str(tmp / "f_aug.onnx"), "low_aug": str(tmp / "l_aug.onnx")}
    pieces: list[int] = []
    real = localize._activations

    def spy(session, feed):
        pieces.append(len(feed["x"]))
        return real(session, feed)

    monkeypatch.setattr(localize, "_activations", spy)
    got = localize._streamed_sqnr(paths, batches, "int8", by_sample=True)
    assert set(pieces) == {1} and len(pieces) == 2 * 9  # both models, a sample at a time
    expected = {n: min(localize.EXACT_DB, e["xmodel_err"]) for n, e in errors.items() if "xmodel_err" in e}
    assert set(got) == set(expected) and len(got) > 10
    assert all(np.isclose(got[n], expected[n], atol=1e-3) for n in got), (got, expected)
    assert min(got.values()) < 60  # int8 noise is measured, not the eps cap
