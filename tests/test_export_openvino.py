"""The OpenVINO targets: gated on the OpenVINO CPU runtime, metadata in rt_info read back, .xml/.bin written atomically."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import netspec
from netspec.errors import ExportError
from netspec.export import GateError, compat, export
from netspec.export import openvino as ovx
from netspec.export.signature import call_model, io_names
from netspec.export.targets import BUILTIN
from netspec.export.verify import GateResult

from conftest import ROOT, SPECS
from export_cases import C, group_spec

pytest.importorskip("openvino")

# Two outputs in an order the converter does not keep (it sorts), one an input passed straight through.
PASS_THROUGH = textwrap.dedent("""\
    netspec: 1
    name: pass_through
    inputs:
      image: {shape: [12, 12, 3]}
    nodes:
      - {name: conv, type: Conv2D, filters: 4, kernel_size: 3, activation: relu}
      - {name: pool, type: GlobalAveragePooling2D}
      - {name: zeta, type: Dense, units: 3, activation: softmax}
      - {name: kept, type: Dropout, rate: 0.5, in: image}
    outputs: {zeta: zeta, alpha: kept}
    """)


def mobilenet_v2_96():
    """MobileNetV2 at alpha 0.35 on 96x96 images with 10 classes: the architecture, small enough for a test."""
    text = (SPECS / "mobilenet_v2.yaml").read_text().replace("shape: [224, 224, 3]", "shape: [96, 96, 3]")
    return netspec.load(text, params={"alpha": 0.35, "classes": 10})


def lively_weights(spec, path: Path) -> str:
    """Weights whose BatchNormalization statistics fit generated images, so outputs vary and parity means something."""
    from export_cases import lively
    from netspec.export import quantize

    model = spec.build()
    lively(model, quantize.generate(quantize.describe_inputs(model), 8, seed=5))
    model.save_weights(path)
    return str(path)


def files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


CASES = {  # id -> (spec, whether to give it lively weights)
    "lenet5": (lambda: netspec.load(SPECS / "lenet5.yaml"), False),
    "mobilenet_v2_96": (mobilenet_v2_96, True),
    "expressions": (lambda: netspec.load(SPECS / "gelu_mixer.yaml"), False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_openvino_cpu_passes_its_gate(keras, case, tmp_path):
    make, lively = CASES[case]
    spec = make()
    weights = lively_weights(spec, tmp_path / "w.weights.h5") if lively else None
    out = tmp_path / "m.xml"
    report = export(spec, BUILTIN["openvino-cpu"], out, weights=weights, latency=case == "lenet5")
    assert report.gate.ok and files(tmp_path) == sorted(["m.bin", "m.xml", *(["w.weights.h5"] if lively else [])])
    assert report.size_bytes == out.stat().st_size + out.with_suffix(".bin").stat().st_size
    assert all(p.max_abs_error <= p.bound for p in report.gate.parity) and {p.batch for p in report.gate.parity} == {1, 8}
    assert report.gate.checks[0].startswith("OpenVINO 20") and "f32 inference precision" in report.gate.checks[0]
    if case == "expressions":  # exact gelu (in an expr: node too) converts as is: no rewrite, unlike ONNX
        assert any(n.kind == "expr" for n in spec.graph.nodes)
        assert report.rewrites == [] and not compat.check(spec, "openvino")
    if case == "lenet5":
        assert set(report.latency_ms["export"]) == {1, 8} and "OpenVINO" in report.text()
    # What was written opens by the spec's names through the function predict uses.
    opened = ovx.open_model(out)
    decl = spec.graph.inputs[0]
    assert list(opened.inputs) == [decl.name]
    assert opened.inputs[decl.name] == {"shape": [None, *decl.shape], "dtype": "float32"}
    assert list(opened.outputs) == [name for name, _ in spec.graph.outputs]


def test_outputs_keep_spec_names_and_order_and_a_passed_through_input(keras, tmp_path):
    spec = netspec.load(PASS_THROUGH)
    model = spec.build()
    model.save_weights(tmp_path / "w.weights.h5")
    out = tmp_path / "p.xml"
    report = export(spec, BUILTIN["openvino-cpu"], out, weights=str(tmp_path / "w.weights.h5"), latency=False)
    assert list(report.outputs) == ["zeta", "alpha"]
    opened = ovx.open_model(out)
    assert list(opened.inputs) == ["image"] and list(opened.outputs) == ["zeta", "alpha"]
    x = {"image": np.random.default_rng(1).uniform(-1, 1, (3, 12, 12, 3)).astype("float32")}
    got, want = opened.run(x), call_model(model, io_names(model, spec.graph), x)
    np.testing.assert_array_equal(got["alpha"], x["image"])
    np.testing.assert_allclose(got["zeta"], want["zeta"], atol=1e-6)


def test_metadata_round_trips_through_rt_info(keras, tmp_path):
    spec = netspec.load(SPECS / "lenet5.yaml")
    out = tmp_path / "l.xml"
    report = export(spec, BUILTIN["openvino-cpu"], out, latency=False)
    meta = ovx.read_metadata(out)
    assert meta == {**report.metadata, ovx.PRECISION_KEY: "f32"}
    assert meta["netspec.spec_sha256"] == hashlib.sha256(meta["netspec.spec"].encode()).hexdigest()
    assert json.loads(meta["netspec.spec"])["spec"]["name"] == "lenet5"
    assert json.loads(meta["netspec.target"])["name"] == "openvino-cpu"
    assert ovx.open_model(out).metadata == meta
    # Whatever the pipeline passes to finish is stamped, characters XML escapes included (the contract goes here).
    from netspec.export.formats import OPENVINO

    model = spec.build()
    names = io_names(model, spec.graph)
    contract = json.dumps({"labels": ["<0>", "&1", '"2"'], "preprocess": {"rescale": 1 / 255}})
    artifact = OPENVINO.finish(OPENVINO.convert(model, names, BUILTIN["openvino-cpu"], None), BUILTIN["openvino-cpu"],
                               None, {"netspec.contract": contract})
    loaded = OPENVINO.load(artifact, GateResult("fp32"), model, names, BUILTIN["openvino-cpu"])
    assert loaded.write is not None and loaded.write(tmp_path / "c.xml", loaded.data) > 0
    assert ovx.read_metadata(tmp_path / "c.xml")["netspec.contract"] == contract


def test_openvino_int8_quantizes_with_nncf_and_passes_its_gate(keras, tmp_path):
    spec = netspec.load(SPECS / "lenet5.yaml")
    out = tmp_path / "q.xml"
    report = export(spec, BUILTIN["openvino-int8"], out, latency=False)
    assert report.gate.ok and report.target.precision == "int8"
    import openvino as ov

    ops = {op.get_type_name() for op in ov.Core().read_model(out).get_ops()}
    assert "FakeQuantize" in ops  # NNCF's quantize/dequantize pairs, run as int8 by the CPU plugin
    assert json.loads(ovx.read_metadata(out)["netspec.target"])["precision"] == "int8"


def test_refused_layer_is_located_and_really_fails_without_the_table(keras, tmp_path):
    case = C("CategoryEncoding", {"num_tokens": 6, "output_mode": "multi_hot"}, (3,), "int32")
    spec = netspec.load(group_spec("refused", [case]))
    with pytest.raises(ExportError, match="cannot take node 'categoryencoding'.*DenseBincount") as info:
        export(spec, BUILTIN["openvino-cpu"], tmp_path / "r.xml", latency=False)
    assert info.value.location.line > 1
    with mock.patch.object(compat, "check", lambda s, f: []), \
            pytest.raises(ExportError, match="OpenVINO converter refused the model: .*DenseBincount"):
        export(spec, BUILTIN["openvino-cpu"], tmp_path / "r.xml", latency=False)
    assert files(tmp_path) == []


def test_failed_gate_writes_nothing_and_keeps_an_old_pair(keras, tmp_path):
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU computes in f32 whatever the hint: nothing makes the gate fail")
    keras.utils.set_random_seed(0)  # the same weights in any test order: some draws stay within the bound in bf16
    out = tmp_path / "l.xml"
    out.write_text("old xml")
    out.with_suffix(".bin").write_text("old bin")
    # The CPU plugin's own default on this CPU: bfloat16, ~3e-4 off on LeNet-5's softmax (why netspec asks for f32).
    with mock.patch.dict(ovx.COMPILE_CONFIG, {"INFERENCE_PRECISION_HINT": "bf16"}), \
            pytest.raises(GateError, match="failed its verification gate .*nothing written"):
        export(netspec.load(SPECS / "lenet5.yaml"), BUILTIN["openvino-cpu"], out, latency=False)
    assert files(tmp_path) == ["l.bin", "l.xml"]
    assert out.read_text() == "old xml" and out.with_suffix(".bin").read_text() == "old bin"


def test_a_write_failing_halfway_leaves_neither_file(tmp_path):
    real = Path.write_bytes
    calls = []

    def second_fails(self, data):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    with mock.patch.object(Path, "write_bytes", second_fails), pytest.raises(OSError):
        ovx.write_pair(tmp_path / "m.xml", b"<net/>", b"\0" * 16)
    assert len(calls) == 2 and files(tmp_path) == []  # the .bin was written to its temporary name only


def test_wrong_suffix_and_unreadable_files_are_errors(keras, tmp_path):
    with pytest.raises(ExportError, match=r"writes \.xml files"):
        export(netspec.load(SPECS / "lenet5.yaml"), BUILTIN["openvino-cpu"], tmp_path / "m.onnx", latency=False)
    bad = tmp_path / "bad.xml"
    bad.write_text("<net><layers>")
    with pytest.raises(ExportError, match="not an OpenVINO IR file"):
        ovx.read_metadata(bad)
    with pytest.raises(ExportError, match="no OpenVINO IR file"):
        ovx.open_model(tmp_path / "missing.xml")
    assert files(tmp_path) == ["bad.xml"]


def test_validate_target_and_list_targets_import_neither_tensorflow_nor_openvino(tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text(group_spec("refused", [C("CategoryEncoding", {"num_tokens": 6}, (3,), "int32")]))
    code = textwrap.dedent(f"""
        import sys
        from netspec.cli import main
        rc = main(["validate", {str(path)!r}, "--target", "openvino-cpu"])
        heavy = sorted(m for m in ("tensorflow", "keras", "openvino", "nncf") if m in sys.modules)
        print("HEAVY", heavy, "RC", rc)
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "HEAVY [] RC 1" in proc.stdout, proc.stderr
    assert "refused: node 'categoryencoding': CategoryEncoding uses DenseBincount" in proc.stdout + proc.stderr
    listed = subprocess.run([sys.executable, "-m", "netspec", "export", "--list-targets"], cwd=ROOT,
                            capture_output=True, text=True)
    rows = {line.split()[0]: line.split()[1:3] for line in listed.stdout.splitlines()[1:]}
    assert rows["openvino-cpu"] == ["openvino", "fp32"] and rows["openvino-int8"] == ["openvino", "int8"]
