"""Issue 13: Normalization stems export (rewritten to constants), and unknown dimensions are proven at real sizes.

Sizes come from the target's input_shape / --input-shape (which fix them in the file), else the
spec's data, else example_shape; each unknown dimension is proven at two sizes, each checked by
building the model at it; with no size the export is refused at the input.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import netspec
from netspec.cli.app import main
from netspec.errors import ExportError
from netspec.export import compat, export
from netspec.export.sizes import parse_input_shapes, second_sizes
from netspec.export.targets import BUILTIN, Calibration, Target, get_target

NORM_STEM = """\
netspec: 1
name: norm_stem
inputs:
  image: [16, 16, 3]
nodes:
  - {name: norm, type: Normalization, axis: -1, mean: [120.0, 110.0, 100.0], variance: [3600.0, 3000.0, 2500.0]}
  - {type: Conv2D, filters: 8, kernel_size: 3, strides: 2, padding: same, activation: relu}
  - {type: GlobalAveragePooling2D}
  - {name: probs, type: Dense, units: 4, activation: softmax}
"""

# Three valid stride-2 3x3 convolutions: 8x8 shrinks to nothing (Keras refuses it symbolically).
DYNAMIC = """\
netspec: 1
name: dyn
inputs:
  image: {shape: [null, null, 3]EXTRA}
nodes:
  - {type: Conv2D, filters: 8, kernel_size: 3, strides: 2, padding: valid, activation: relu}
  - {type: Conv2D, filters: 8, kernel_size: 3, strides: 2, padding: valid, activation: relu}
  - {type: Conv2D, filters: 8, kernel_size: 3, strides: 2, padding: valid}
  - {type: GlobalAveragePooling2D}
  - {name: probs, type: Dense, units: 5, activation: softmax}
"""


def dynamic(extra: str = "", tail: str = "") -> str:
    return DYNAMIC.replace("EXTRA", extra) + textwrap.dedent(tail)


def write(tmp_path, text: str, name: str = "m.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- Normalization ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_normalization_is_a_rewrite_not_a_refusal(fmt):
    findings = compat.check(netspec.load(NORM_STEM), fmt)
    assert [(f.action, f.node, f.location.line) for f in findings] == [("rewritten", "norm", 6)]
    assert "exported as constants" in findings[0].message


@pytest.mark.parametrize("target", ["onnx-cpu", "onnx-int8"])
def test_normalization_stem_passes_the_gate(keras, tmp_path, target):
    spec = netspec.load(NORM_STEM)
    t = BUILTIN[target]
    if t.precision == "int8":
        t = Target(t.name, t.format, "int8", calibration=Calibration(samples=32, range=(0.0, 255.0)))
    report = export(spec, t, tmp_path / "n.onnx", latency=False)
    assert report.gate.ok
    assert any(r.startswith("norm: Normalization exported as (x - mean) / std") for r in report.rewrites)


# -- sizes of unknown dimensions ------------------------------------------------------------------


@pytest.mark.parametrize("size, second", [(224, [160, 288, 256]), (32, [64]), (50, [36, 64, 52]), (1, [2])])
def test_second_sizes_stay_on_the_first_ones_grid(size, second):
    assert second_sizes(size) == second


def test_example_shape_proves_two_sizes_and_the_report_names_them(keras, tmp_path):
    report = export(netspec.load(dynamic(", example_shape: [64, 64, 3]")), BUILTIN["onnx-cpu"],
                    tmp_path / "d.onnx", latency=False)
    assert report.inputs["image"] == {"shape": [None, None, None, 3], "dtype": "float32",
                                      "proven_shapes": [[64, 64, 3], [32, 32, 3]]}
    assert "unknown dimensions of image proven at (64, 64, 3) and (32, 32, 3) (from example_shape:)" in report.text()
    assert len(report.gate.parity) == 4  # batch 1 and 8 at each size


def test_the_spec_data_gives_the_size(keras, tmp_path):
    from netspec.data import load_arrays

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.uniform(size=(24, 40, 40, 3)).astype(np.float32), y=rng.integers(0, 5, 24))
    path = write(tmp_path, dynamic(", example_shape: [64, 64, 3]", """\
        train:
          data: {source: npz, path: d.npz, x: x, y: y}
          loss: sparse_categorical_crossentropy
        """))
    report = export(netspec.load(path), BUILTIN["onnx-cpu"], tmp_path / "d.onnx", load_arrays=load_arrays,
                    latency=False)
    assert report.inputs["image"]["proven_shapes"] == [[40, 40, 3], [32, 32, 3]]
    assert "(from the spec's data)" in report.text()


@pytest.mark.parametrize("extra, key, fragments", [
    ("", "shape", ["input 'image' has unknown dimensions (?, ?, 3) and nothing gives a size",
                   "--input-shape", "input_shape:", "example_shape:"]),
    (", example_shape: [8, 8, 3]", "example_shape",
     ["the network cannot take input 'image' at (8, 8, 3) (from example_shape:)", "zero or negative"]),
], ids=["no-size", "too-small"])
def test_no_size_the_network_takes_is_refused_at_the_input(keras, tmp_path, extra, key, fragments):
    path = write(tmp_path, dynamic(extra))
    with pytest.raises(ExportError) as info:
        export(netspec.load(path), BUILTIN["onnx-cpu"], tmp_path / "d.onnx", latency=False)
    err = info.value
    for fragment in fragments:
        assert fragment in err.message, err.message
    line = path.read_text().splitlines()[3]
    column = line.index("[null" if key == "shape" else "[8") + 1
    assert (err.location.file, err.location.line, err.location.column) == (str(path), 4, column)
    assert err.json_path == f"$.inputs.image.{key}"
    assert not (tmp_path / "d.onnx").exists()


def test_a_dimension_that_takes_one_size_only_is_refused(keras, tmp_path):
    spec = netspec.load(textwrap.dedent("""\
        netspec: 1
        name: one_size
        inputs:
          x: {shape: [null], example_shape: [4]}
        nodes:
          - {type: Reshape, target_shape: [2, 2]}
        """))
    with pytest.raises(ExportError, match=r"takes \(4\) and none of \(8\).*not really dynamic"):
        export(spec, BUILTIN["onnx-cpu"], tmp_path / "o.onnx", latency=False)


def test_input_shape_fixes_the_dimensions_in_the_onnx_file(keras, tmp_path, capsys):
    import onnx

    path, out = write(tmp_path, dynamic()), tmp_path / "f.onnx"
    rc = main(["export", str(path), "--target", "onnx-cpu", "-o", str(out), "--input-shape", "image=48,48,3",
               "--no-latency", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["inputs"]["image"]["shape"] == [None, 48, 48, 3]
    assert data["target"]["input_shape"] == {"image": [48, 48, 3]}
    assert "input image fixed at (48, 48, 3) by --input-shape" in data["gate"]["checks"]
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 48, 48, 3]


def test_input_shape_in_a_target_is_checked_when_the_spec_loads(tmp_path):
    bad = write(tmp_path, dynamic(tail="""\
        export:
          fixed: {format: onnx, input_shape: [48, 48]}
        """))
    with pytest.raises(ExportError, match=r"must fill its null dimensions.*Received: \[48, 48\]") as info:
        get_target("fixed", netspec.load(bad))
    assert info.value.json_path == "$.export.fixed.input_shape" and info.value.location.line == 12
    good = write(tmp_path, dynamic(tail="""\
        export:
          fixed: {format: onnx, input_shape: {image: [48, 48, 3]}}
        """), "good.yaml")
    assert get_target("fixed", netspec.load(good)).input_shape == {"image": (48, 48, 3)}


@pytest.mark.parametrize("texts, parsed", [
    (["224,224,3"], {"*": (224, 224, 3)}), (["a=8,8", "b=4"], {"a": (8, 8), "b": (4,)}), (["0,3"], None),
    (["x=a,b"], None)])
def test_input_shape_option_syntax(texts, parsed):
    if parsed is None:
        with pytest.raises(ValueError, match="--input-shape expects positive integers"):
            parse_input_shapes(texts)
    else:
        assert parse_input_shapes(texts) == parsed


def test_example_shape_must_fit_the_shape():
    from netspec.errors import NetspecError

    with pytest.raises(NetspecError, match=r"example_shape fills the null dimensions.*\[null, null, 3\]") as info:
        netspec.load(dynamic(", example_shape: [64, 64, 4]"))
    assert info.value.json_path == "$.inputs.image.example_shape"


@pytest.mark.slow
def test_efficientnet_b0_normalization_stem_passes_onnx_cpu(keras, tmp_path, capsys):
    from export_cases import lively
    from netspec.export import quantize

    spec_path = tmp_path / "e.yaml"
    assert main(["import", "--keras-app", "EfficientNetB0", "-o", str(spec_path), "--no-verify"]) == 0
    capsys.readouterr()
    spec = netspec.load(spec_path)
    model = spec.build()
    lively(model, quantize.generate(quantize.describe_inputs(model), 8, seed=5))
    weights = tmp_path / "e.weights.h5"
    model.save_weights(weights)
    report = export(spec, BUILTIN["onnx-cpu"], tmp_path / "e.onnx", weights=str(weights), latency=False)
    assert report.gate.ok
    assert any("Normalization exported" in r for r in report.rewrites)


def test_a_gate_failure_at_the_second_proven_size_says_which_size():
    """With unknown dimensions fed at two sizes, a failed comparison names the input shape it was at (a
    MobileNetV3Small int8 export failed at 160x160 only, and "@ batch 1" alone pointed at 224x224)."""
    from netspec.export import verify

    rng = np.random.default_rng(0)
    batches = [{"image": rng.uniform(size=(n, s, s, 3)).astype("float32")} for s in (224, 160) for n in (1, 8)]

    def reference(x):
        return {"out": x["image"].mean(axis=(1, 2))}

    def run(x):  # right at 224, off by the whole range at 160
        out = x["image"].mean(axis=(1, 2))
        return {"out": out + (1.0 if x["image"].shape[1] == 160 else 0.0)}

    gate = verify.run_gate(reference, run, batches, "fp32", set(), verify.GateResult("fp32"))
    assert gate.failure.startswith("output out @ batch 1 (image 160x160x3): max |error| 1 ")
    assert "at batch 8 (image 160x160x3) (output range" in gate.summary()[0]  # the worst: the widest error ratio
    same = [{"image": b["image"][:, :16, :16]} for b in batches[:2]]  # one size only: no shape in the message
    gate = verify.run_gate(reference, lambda x: {"out": reference(x)["out"] + 1}, same, "fp32", set(),
                           verify.GateResult("fp32"))
    assert gate.failure.startswith("output out @ batch 1: max |error| 1 ")
