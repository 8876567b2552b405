"""A failed OpenVINO gate names its spec node: the first diverging layer (fp32), where int8 loses SQNR (int8)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import netspec
from netspec.export import GateError, export, localize, ovlocalize, quantize, verify
from netspec.export import openvino as ovx
from netspec.export.signature import io_names
from netspec.export.formats import OPENVINO
from netspec.export.targets import BUILTIN

from conftest import SPECS

pytest.importorskip("openvino")

LENET_LINES = {"c1": 11, "s2": 12, "c3": 13, "s4": 14, "flatten": 15, "f5": 16, "f6": 17, "probs": 18}


@pytest.fixture(scope="module")
def lenet():
    return netspec.load((SPECS / "lenet5.yaml").read_text())  # from text: located as <spec>


def scale_weights(ov_model, op_type: str, k: int, factor: float = 1.1) -> str:
    """Multiply the weights of the ``k``-th ``op_type`` op of an IR by ``factor``; returns the op's name."""
    import openvino.opset13 as ops

    op = [o for o in ov_model.get_ordered_ops() if o.get_type_name() == op_type][k]
    weights = op.input_value(1).get_node()
    assert weights.get_type_name() == "Constant"
    op.input(1).replace_source_output(ops.constant(weights.get_data() * factor).output(0))
    return op.get_friendly_name()


# -- fp32: the first diverging node -----------------------------------------------------------------

FP32_CASES = [
    # the op perturbed in the IR, the spec node named; the convolution's tensors lost their TensorFlow names
    # to transpose sinking (matched by value), the Dense layer's MatMul keeps its name
    (("Convolution", 1), "c3"),
    (("MatMul", 1), "f6"),
]


@pytest.mark.parametrize("op,node", FP32_CASES, ids=[c[1] for c in FP32_CASES])
def test_a_wrong_openvino_export_names_the_diverging_node_with_its_line(keras, lenet, tmp_path, monkeypatch, op, node):
    real = ovx.to_openvino

    def corrupt(model, names, target):
        ov_model = real(model, names, target)
        scale_weights(ov_model, *op)
        return ov_model

    monkeypatch.setattr(ovx, "to_openvino", corrupt)
    with pytest.raises(GateError) as info:
        export(lenet, BUILTIN["openvino-cpu"], tmp_path / "bad.xml", latency=False)
    text = str(info.value)
    assert f"first diverging node: '{node}' (<spec>:{LENET_LINES[node]}:5)" in text, text
    d = info.value.report.gate.diverging
    assert d["node"] == node and d["max_abs_error"] > d["bound"] > 0
    assert list(tmp_path.iterdir()) == []


def test_a_layer_the_ir_folds_away_is_not_blamed_and_a_wrong_fused_op_is(keras, tmp_path):
    """MobileNetV2: the IR folds each BatchNormalization into its convolution, so no IR tensor is the
    convolution's own output. A right IR diverges nowhere; one fused convolution off names its convolution."""
    from test_export_openvino import lively_weights, mobilenet_v2_96

    spec = mobilenet_v2_96()
    model = spec.build()
    model.load_weights(lively_weights(spec, tmp_path / "w.weights.h5"))
    x = quantize.generate(quantize.describe_inputs(model), 1, seed=3)
    artifact = OPENVINO.convert(model, io_names(model, spec.graph), BUILTIN["openvino-cpu"], None)
    layers, matched = ovlocalize.probe(model, artifact.model, x, verify.TOLERANCES["fp32"])
    assert ovlocalize.first_divergence(model, artifact.model, x) is None
    unmatched = {la.name for la in layers if not matched.get(la.name, {}).get("ok")}
    assert "stage_3_block_1_project" in unmatched and "stage_3_block_1_project_bn" not in unmatched
    by_name = {o.get_friendly_name(): o for o in artifact.model.get_ordered_ops()}
    op = by_name[matched["stage_3_block_1_project_bn"]["key"].rsplit(":", 1)[0]]  # the normalization's shift
    while op.get_type_name() != "Convolution":  # ... added to the convolution scaled by it
        op = op.input_value(0).get_node()
    k = [o for o in artifact.model.get_ordered_ops() if o.get_type_name() == "Convolution"].index(op)
    scale_weights(artifact.model, "Convolution", k)
    d = ovlocalize.first_divergence(model, artifact.model, x)
    assert d is not None and d["node"] == "stage_3_block_1_project", d


# -- int8: where the error appears, grows and is worst ------------------------------------------------


def test_a_failed_openvino_int8_gate_names_the_worst_node_with_its_line(keras, lenet, tmp_path, monkeypatch):
    tight = {p: replace(t, atol=1e-9) for p, t in verify.TOLERANCES.items()}  # no int8 export is that exact
    monkeypatch.setattr(verify, "TOLERANCES", tight)
    with pytest.raises(GateError) as info:
        export(lenet, BUILTIN["openvino-int8"], tmp_path / "q.xml", latency=False)
    located = info.value.report.gate.located
    assert set(located) == {"worst", "appears", "grows"}, located
    worst = located["worst"]["node"]
    text = str(info.value)
    assert f"worst at node {worst!r} (<spec>:{LENET_LINES[worst]}:5)" in text, text
    assert info.value.report.to_dict()["gate"]["located"]["worst"]["node"] == worst
    assert list(tmp_path.iterdir()) == []
    # the hint offers what an OpenVINO int8 target takes, not ONNX's keep_float and calibration methods
    assert "keep_float: [nodes] in the target" not in text and "calibration: entropy" not in text
    assert text.endswith("(the OpenVINO int8 converter (NNCF post-training quantization) takes min/max ranges, "
                         "per-channel weights and fast bias correction, its defaults: it takes no keep_float or "
                         "calibration method; its target takes calibration.samples (more, or the spec's own data) "
                         "and calibration.range, or export fp32, or int8 through ONNX with keep_float)"), text


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_the_int8_hint_offers_only_options_the_format_s_target_takes(fmt):
    """What the int8 hint names, a target of that format accepts; what it says the format refuses, it refuses."""
    from netspec.errors import NetspecError
    from netspec.export.pipeline import int8_hint
    from netspec.export.targets import all_targets

    hint = int8_hint(fmt)
    base = (SPECS / "lenet5.yaml").read_text() + "\nexport:\n  q: {format: %s, precision: int8, %s}\n"
    offered = {"onnx": "keep_float: [f5], calibration: entropy", "openvino": "calibration: {samples: 64, range: [0, 1]}"}
    all_targets(netspec.load(base % (fmt, offered[fmt])))  # every option the hint offers is accepted
    assert ("keep_float" in hint and "entropy" in hint) if fmt == "onnx" else "calibration.samples" in hint
    if fmt == "openvino":
        for refused in ("keep_float: [f5]", "calibration: entropy"):
            with pytest.raises(NetspecError, match="applies to int8 targets of ONNX; the OpenVINO converter"):
                all_targets(netspec.load(base % (fmt, refused)))


def test_int8_activation_errors_are_per_spec_node_and_the_output_one_is_the_output_sqnr(keras, lenet):
    """Every LeNet-5 node is matched, in spec order; the last node's figure is the SQNR of the int8 IR's
    output against the float IR's, computed here from the two models as the gate runs them."""
    model = lenet.build()
    names = io_names(model, lenet.graph)
    inputs = quantize.describe_inputs(model)
    artifact = OPENVINO.convert(model, names, BUILTIN["openvino-int8"], None)
    low = OPENVINO.finish(artifact, BUILTIN["openvino-int8"], quantize.generate(inputs, 16, seed=3), {})
    batches = [quantize.generate(inputs, n, seed=10 + n) for n in (1, 8)]
    errors = ovlocalize.activation_errors(model, artifact.model, low.model, batches)
    assert [e["node"] for e in errors] == list(LENET_LINES)
    runs = [ovx.compile_ir(*ovx.serialize(m)).run for m in (artifact.model, low.model)]
    x = np.concatenate([b["image"] for b in batches])
    f, q = (np.asarray(run({"image": x})["probs"], np.float64) for run in runs)
    expected = 20 * np.log10(np.linalg.norm(f) / np.linalg.norm(f - q))
    assert errors[-1]["sqnr_db"] == pytest.approx(expected, abs=0.5)
    assert all(e["sqnr_db"] < localize.EXACT_DB for e in errors)  # quantized: no node is exact
    summary = localize.summarize(errors)
    assert summary["worst"] == min(errors, key=lambda e: e["sqnr_db"])
