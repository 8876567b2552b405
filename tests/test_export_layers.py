"""Table-driven export: every core layer kind through the spec, to ONNX and LiteRT, gated; every refusal real."""

from __future__ import annotations

from unittest import mock

import pytest

import netspec
from netspec.export import compat
from netspec.schema.catalog import load_schema
from netspec.export import GateError, export
from netspec.errors import ExportError
from netspec.export.targets import BUILTIN

from export_cases import ALIASES, AUGMENT, CASES, CELLS, REFUSED, group_spec

# Layer kinds a spec cannot write at all, so there is nothing to export.
NOT_IN_SPECS: dict[str, str] = {}


def schema_layers() -> set[str]:
    return {k[len("layer."):] for k in load_schema()["$defs"] if k.startswith("layer.")}


def test_every_schema_layer_is_exported_or_refused_with_a_reason():
    tested = {c.type for cases in CASES.values() for c in cases}
    covered = tested | set(ALIASES) | set(CELLS) | set(REFUSED) | {c.type for c in AUGMENT} | set(NOT_IN_SPECS)
    assert schema_layers() - covered == set()
    assert set(ALIASES.values()) <= tested and set(CELLS.values()) <= tested
    # Every layer refused for every format has a case proving the refusal; augmentation is all rewritten.
    assert {t for t, r in compat.LAYERS.items() if "*" in r or "onnx" in r} <= set(REFUSED)
    assert {c.type for c in AUGMENT} == compat.AUGMENTATION


def _kept(cases, fmt):
    return [c for c in cases if compat.layer_refusal(c.type, fmt) is None]


def _export_group(group, cases, target, tmp_path):
    spec = netspec.load(group_spec(group, cases))
    report = export(spec, target, tmp_path / f"{group}{target.suffix}", latency=False)
    assert report.gate.ok
    outputs = {p.output for p in report.gate.parity}
    assert outputs == {c.name for c in cases}  # every case was compared, at both batch sizes
    assert {p.batch for p in report.gate.parity} == {1, 8}
    return report


@pytest.mark.parametrize("group", list(CASES))
def test_layer_group_exports_to_onnx(keras, group, tmp_path):
    report = _export_group(group, _kept(CASES[group], "onnx"), BUILTIN["onnx-cpu"], tmp_path)
    assert all(p.max_abs_error <= p.bound for p in report.gate.parity)
    if group == "activations":
        assert any("act_gelu: exact gelu" in r for r in report.rewrites)
        assert any("act_celu: celu" in r for r in report.rewrites)


@pytest.mark.parametrize("group", [g for g in CASES if g != "activations"])
def test_layer_group_exports_to_litert(keras, group, tmp_path):
    cases = _kept(CASES[group], "litert")
    _export_group(group, cases, BUILTIN["litert"], tmp_path)


def test_litert_refusals_are_real(keras, tmp_path):
    refused = [c for cases in CASES.values() for c in cases if compat.layer_refusal(c.type, "litert")]
    assert {c.type for c in refused} >= {"LSTM", "MaxPooling3D", "CategoryEncoding"}
    for case in [c for c in refused if c.type in ("LSTM", "MaxPooling3D", "CategoryEncoding")]:
        spec = netspec.load(group_spec("refused", [case]))
        with pytest.raises(ExportError, match="LiteRT"):
            export(spec, BUILTIN["litert"], tmp_path / "x.tflite", latency=False)


@pytest.mark.parametrize("layer", sorted(t for t, r in compat.LAYERS.items() if t in REFUSED and "litert" not in r
                                          and "*" not in r))
def test_layers_refused_by_onnx_only_export_to_litert(keras, layer, tmp_path):
    """"(LiteRT takes it)" in a refusal is a claim too: the layer passes the LiteRT gate."""
    _export_group(layer.lower(), [REFUSED[layer]], BUILTIN["litert"], tmp_path)


def test_augmentation_layers_are_left_out_of_the_graph(keras, tmp_path):
    import onnx

    report = _export_group("augment", AUGMENT, BUILTIN["onnx-cpu"], tmp_path)
    assert len(report.rewrites) == len(AUGMENT)
    ops = {n.op_type for n in onnx.load(tmp_path / "augment.onnx").graph.node}
    assert not any("Random" in op for op in ops)


def _raw_export(case, target, path):
    """Export with the compatibility table and the rewrites switched off."""
    spec = netspec.load(group_spec("raw", [case]))
    with mock.patch.object(compat, "check", lambda s, f: []), mock.patch("netspec.export.rewrite.REWRITES", {}):
        return export(spec, target, path, latency=False)


@pytest.mark.parametrize("layer", sorted(t for t, r in compat.LAYERS.items() if "*" in r or "onnx" in r))
def test_onnx_refusals_are_real(keras, layer, tmp_path):
    case = REFUSED[layer]
    # Refused by the table, before any conversion, at the node's type:
    spec = netspec.load(group_spec("refused", [case]))
    with pytest.raises(ExportError, match=f"cannot take node {case.name!r}") as info:
        export(spec, BUILTIN["onnx-cpu"], tmp_path / "x.onnx", latency=False)
    assert info.value.location.line > 1
    # And without the table the export really fails (never a silent success):
    with pytest.raises(Exception):
        _raw_export(case, BUILTIN["onnx-cpu"], tmp_path / "raw.onnx")
    assert not list(tmp_path.iterdir())


def test_exact_gelu_without_the_rewrite_is_an_invalid_graph(keras, tmp_path):
    case = next(c for c in CASES["activations"] if c.name == "act_gelu")
    with pytest.raises(ExportError, match=r"ONNX checker rejects .*in layer 'act_gelu'.*Erfc"):
        _raw_export(case, BUILTIN["onnx-cpu"], tmp_path / "g.onnx")


def test_bicubic_resizing_fails_the_gate_naming_the_layer(keras, tmp_path):
    from export_cases import C

    # Upsampling 64 -> 224 (what a classifier's preprocessing does): ~1.6e-3 off.
    case = C("Resizing", {"height": 224, "width": 224, "interpolation": "bicubic"}, (64, 64, 3), id="bicubic")
    out = tmp_path / "b.onnx"
    with pytest.raises(GateError) as info:
        _raw_export(case, BUILTIN["onnx-cpu"], out)
    text = str(info.value)
    assert "output bicubic @ batch 1" in text and "nothing written" in text
    assert "first diverging node: 'bicubic'" in text
    assert info.value.report.gate.diverging["max_abs_error"] > 1e-4
    assert not out.exists() and not list(tmp_path.iterdir())


def test_squeeze_excite_hard_sigmoid_keeps_no_transpose_inside(keras, tmp_path):
    """MobileNetV3's squeeze-excite, a 1x1 Conv2D -> hard-sigmoid (``x + 3``, a 0-d constant), made tf2onnx's
    transpose optimizer raise and abandon its whole pass: MobileNetV3Small's ONNX kept 106 NHWC/NCHW Transposes
    (this model 4). netspec's export keeps only the input's, and still matches Keras."""
    import numpy as np
    import onnxruntime as ort

    spec = netspec.load(
        "netspec: 1\nname: hswish\ninputs:\n  image: [16, 16, 3]\nnodes:\n"
        "  - {type: Conv2D, filters: 8, kernel_size: 3, padding: same, use_bias: false}\n"
        "  - {type: GlobalAveragePooling2D, keepdims: true}\n"
        "  - {type: Conv2D, filters: 8, kernel_size: 1}\n"  # squeeze-excite: its bias and hard-sigmoid's + 3 merge
        "  - {type: Activation, activation: hard_sigmoid}\n"
        "  - {type: Flatten}\n"
        "  - {type: Dense, units: 4}\n")
    out, weights = tmp_path / "hswish.onnx", tmp_path / "w.weights.h5"
    model = spec.build()
    model.save_weights(weights)
    export(spec, BUILTIN["onnx-cpu"], out, weights=str(weights), latency=False)
    import onnx

    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.count("Transpose") == 1 and ops[0] == "Transpose" and ops.count("Conv") == 2, ops  # NHWC input
    x = np.random.default_rng(0).uniform(-4, 4, (2, 16, 16, 3)).astype("float32")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)


def _oxford_pets_unet(keras, img_size=(32, 32), num_classes=3):
    """keras.io's "Image segmentation with a U-Net-like architecture" (fchollet), its get_model verbatim."""
    from keras import layers

    inputs = keras.Input(shape=img_size + (3,))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for filters in [16, 32, 64]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    for filters in [64, 32, 16, 8]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous_block_activation)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous_block_activation = x
    outputs = layers.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


def test_a_litert_refusal_that_batch_one_avoids_says_so(keras, tmp_path):
    """keras.io's U-Net: with a dynamic batch the LiteRT converter loses the height after UpSampling2D and
    refuses a tf.Conv2D (which LiteRT has) as an op it cannot lower. The refusal says the model converts at
    batch 1 (tried), and it does."""
    from dataclasses import replace

    keras.utils.set_random_seed(0)
    path = tmp_path / "unet.keras"
    _oxford_pets_unet(keras).save(path)
    out = tmp_path / "unet.tflite"
    with pytest.raises(ExportError) as e:
        export(str(path), BUILTIN["litert"], out, latency=False)
    assert "is not a LiteRT builtin op" in e.value.message and "pass --batch-size 1" in e.value.hint
    assert not out.exists()
    report = export(str(path), replace(BUILTIN["litert"], batch_size=1), out, latency=False)
    assert report.gate.ok and out.is_file()
