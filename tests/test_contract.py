"""The deployment contract: spec syntax and its errors, stamped into every artifact, include_preprocess, inspect."""

from __future__ import annotations

import json
import textwrap
import zipfile

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.contract import METADATA_KEY, Contract, Preprocess
from netspec.errors import ArtifactError, ContractError
from netspec.export import export
from netspec.export.targets import BUILTIN, with_overrides

from conftest import error_for

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_contract")

SPEC = textwrap.dedent("""\
    netspec: 1
    name: tiny
    inputs:
      image:
        shape: [6, 6, 3]
        preprocess: {dtype: uint8, color: rgb, resize: true, scale: 0.00392156862745098,
                     mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]}
    nodes:
      - {name: conv, type: Conv2D, filters: 4, kernel_size: 3, activation: relu}
      - {type: GlobalAveragePooling2D}
      - {name: probs, type: Dense, units: 4, activation: softmax}
    outputs:
      - {from: probs, labels: [cat, dog, "3", bird]}
    """)
LABELS = ("cat", "dog", "3", "bird")
KINDS = ["keras", "onnx-cpu", "onnx-int8", "litert", "openvino-cpu", "onnx-cpu+raw", "litert+raw", "openvino-cpu+raw"]


@pytest.fixture(scope="module")
def spec():
    return netspec.load(SPEC)


@pytest.fixture(scope="module")
def artifacts(keras, spec, tmp_path_factory):
    """Every artifact of the spec, once: a .keras file and exports (``+raw``: with include_preprocess)."""
    from netspec.build.saving import save_model

    root = tmp_path_factory.mktemp("artifacts")
    keras.utils.set_random_seed(3)
    model = spec.build()
    save_model(model, root / "tiny.keras", spec.metadata())
    out = {"keras": (root / "tiny.keras", None)}
    for kind in KINDS[1:]:
        name, _, raw = kind.partition("+")
        target = with_overrides(BUILTIN[name], include_preprocess=True if raw else None)
        path = root / f"{kind}{target.suffix}"
        out[kind] = (path, export(spec, target, path, weights=str(root / "tiny.keras"), latency=False))
    return out


# -- the spec -------------------------------------------------------------------------------------


def test_the_spec_declares_its_contract(spec):
    c = spec.contract()
    pre = c.inputs["image"].preprocess
    assert pre == Preprocess(dtype="uint8", color="rgb", resize=True, scale=0.00392156862745098,
                             mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    assert c.outputs["probs"].labels == LABELS
    assert Contract.from_json(c.to_json()) == c
    x = np.arange(6 * 6 * 3, dtype=np.uint8).reshape(1, 6, 6, 3)
    expected = (x.astype(np.float32) * np.float32(0.00392156862745098) - np.float32([0.5, 0.4, 0.3])) \
        / np.float32([0.2, 0.25, 0.3])
    np.testing.assert_allclose(pre.apply(x), expected, rtol=1e-6)


def _edit(old: str, new: str) -> str:
    assert old in SPEC
    return SPEC.replace(old, new)


@pytest.mark.parametrize("old, new, stage, message, path, line", [
    ("mean: [0.5, 0.4, 0.3]", "mean: [0.5, 0.4]", "load",
     "mean gives one value per channel; input 'image' has 3 channels", "$.inputs.image.preprocess.mean", 7),
    ("std: [0.2, 0.25, 0.3]", "std: [0.2, 0, 0.3]", "load", "std divides; it must not be 0",
     "$.inputs.image.preprocess.std", 7),
    ("color: rgb", "color: grayscale", "load", "color grayscale has 1 channel; input 'image' has 3",
     "$.inputs.image.preprocess.color", 6),
    ("scale: 0.00392156862745098", "scale: 1, rescale: 0.5", "load", "give scale or rescale",
     "$.inputs.image.preprocess.rescale", 6),
    ("shape: [6, 6, 3]", "shape: [null, 6, 3]", "load", "resize needs the input's height and width",
     "$.inputs.image.preprocess.resize", 6),
    ("dtype: uint8", "dtype: uint9", "load", "uint9", "$.inputs.image.preprocess.dtype", 6),
    ("labels: [cat, dog, \"3\", bird]", "labels: [cat, dog, bird]", "check",
     "output 'probs' has 4 classes", "$.outputs[0].labels", 13),
    ("labels: [cat, dog, \"3\", bird]", "labels: [cat, dog, cat, bird]", "load", "labels must be distinct",
     "$.outputs[0].labels", 13),
    ("labels: [cat, dog, \"3\", bird]", "labels: [cat, dog, 3, bird]", "load", "", "$.outputs[0].labels[2]", 13),
    ("from: probs", "form: probs", "load", "unknown key 'form'", "$.outputs[0].form", 13),
    # numbers the float32 steps cannot hold, or a std that is not a spread (held to the stamped contract's rule)
    ("scale: 0.00392156862745098", "scale: 1e308", "load",
     "scale must be a finite float32 number (at most 3.403e+38 in magnitude). Received: 1e+308",
     "$.inputs.image.preprocess.scale", 6),
    ("scale: 0.00392156862745098", "rescale: 0", "load", "scale must be a non-zero float32 number",
     "$.inputs.image.preprocess.rescale", 6),
    ("scale: 0.00392156862745098", "offset: -1e39", "load", "offset must be a finite float32 number",
     "$.inputs.image.preprocess.offset", 6),
    ("mean: [0.5, 0.4, 0.3]", "mean: [0.5, 4e38, 0.3]", "load", "mean must be a finite float32 number",
     "$.inputs.image.preprocess.mean[1]", 7),
    ("std: [0.2, 0.25, 0.3]", "std: [0.2, -1, 0.3]", "load", "std divides, so each value must be positive, from "
     "1e-07 (Keras's Normalization divides by at least that)", "$.inputs.image.preprocess.std[1]", 7),
    ("std: [0.2, 0.25, 0.3]", "std: [0.2, 0.25, 1e-320]", "load", "Received: 1e-320",
     "$.inputs.image.preprocess.std[2]", 7),
])
def test_spec_errors_are_located(old, new, stage, message, path, line):
    e = error_for(_edit(old, new), stage=stage)
    assert message in e.message
    assert e.json_path == path and e.line == line


def test_a_bad_preprocess_key_gets_did_you_mean():
    e = error_for(_edit("std:", "sdt:"))
    assert e.json_path == "$.inputs.image.preprocess.sdt" and e.hint == "did you mean 'std'?" and e.line == 7


def test_labels_from_a_file_in_the_spec_tree_and_refused_outside_it(tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog\n3\nbird\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    spec_file = tmp_path / "sub" / "s.yaml"
    spec_file.write_text(_edit('labels: [cat, dog, "3", bird]', "labels: ../classes.txt"), encoding="utf-8")
    e = error_for(spec_file)
    assert "labels file '../classes.txt' leads outside the spec's directory" in e.message and e.line == 13
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(_edit('labels: [cat, dog, "3", bird]', "labels: classes.txt"), encoding="utf-8")
    assert netspec.load(spec_file).contract().outputs["probs"].labels == LABELS
    (tmp_path / "classes.txt").write_text("cat\n\ndog\n", encoding="utf-8")
    e = error_for(spec_file)
    assert "label 2 (line 2 of 'classes.txt') must be a non-empty" in e.message and e.line == 13


def test_include_preprocess_needs_a_preprocess():
    text = _edit("    preprocess: {dtype: uint8, color: rgb, resize: true, scale: 0.00392156862745098,\n"
                 "                 mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3]}\n", "") + \
        "export:\n  raw: {format: onnx, include_preprocess: true}\n"
    e = error_for(text, stage="validate")
    assert "no input declares one" in e.message and e.json_path == "$.export.raw.include_preprocess" and e.line == 13


def test_include_preprocess_needs_an_integer_raw_dtype(spec, tmp_path):
    """A float raw input cannot show whether its graph rescales, so folding takes integer raw inputs only:
    refused where the spec says it (the target) and on the command line (``--include-preprocess``)."""
    text = _edit("dtype: uint8", "dtype: float32") + "export:\n  raw: {format: onnx, include_preprocess: true}\n"
    e = error_for(text, stage="validate")
    assert e.json_path == "$.export.raw.include_preprocess" and e.line == 15
    assert ("input 'image': preprocessing is folded into a model that takes raw integer values (uint8, uint16, "
            "int8, int16, int32: images, counts); a raw float32 input keeps its preprocessing outside the graph"
            in e.message)
    floats = netspec.load(_edit("dtype: uint8", "dtype: float16"))
    with pytest.raises(netspec.NetspecError, match="a raw float16 input keeps its preprocessing outside") as info:
        export(floats, with_overrides(BUILTIN["onnx-cpu"], include_preprocess=True), tmp_path / "r.onnx",
               latency=False)
    assert info.value.message.startswith("export target 'onnx-cpu': input 'image': preprocessing is folded")


# -- every artifact carries it ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_contract_round_trips_through_every_artifact(kind, spec, artifacts, capsys):
    path, _ = artifacts[kind]
    assert main(["inspect", str(path), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    expected = spec.contract().folded() if kind.endswith("+raw") else spec.contract()
    assert found["contract"] == expected.to_dict()
    assert found["spec_sha256"] == spec.metadata()["netspec.spec_sha256"]
    assert found["netspec_version"] == netspec.__version__
    raw = kind.endswith("+raw")
    assert found["inputs"] == {"image": {"shape": [None, 6, 6, 3], "dtype": "uint8" if raw else "float32"}}
    assert found["outputs"] == {"probs": {"shape": [None, 4], "dtype": "float32"}}
    if kind != "keras":
        _, report = artifacts[kind]
        assert found["precision"] == report.target.precision
        assert found["target"]["name"] == report.target.name
        gate = found["gate"]["outputs"]["probs"]
        worst = max((p for p in report.gate.parity if p.output == "probs"), key=lambda p: p.error_vs_range)
        assert gate["max_abs_error"] == worst.max_abs_error and gate["bound"] == worst.bound


def test_a_stamped_keras_file_still_loads_and_can_be_restamped(artifacts, tmp_path):
    from netspec.build.saving import load_model, stamp_keras
    from netspec.deploy.stamps import read_metadata

    path = tmp_path / "t.keras"
    path.write_bytes(artifacts["keras"][0].read_bytes())
    assert load_model(path).output_names == ["probs"]
    stamp_keras(path, {"netspec.version": "x"})
    assert read_metadata(path) == {"netspec.version": "x"}
    assert zipfile.ZipFile(path).namelist().count("netspec.json") == 1
    assert load_model(path).count_params() == load_model(artifacts["keras"][0]).count_params()


def test_an_export_of_a_stamped_keras_file_carries_its_contract(spec, artifacts, tmp_path):
    from netspec.deploy.stamps import read_contract, read_metadata

    keras_file = artifacts["keras"][0]
    export(str(keras_file), BUILTIN["onnx-cpu"], tmp_path / "k.onnx", latency=False)
    assert read_contract(tmp_path / "k.onnx") == spec.contract()
    meta = read_metadata(tmp_path / "k.onnx")
    assert meta["netspec.spec_sha256"] == spec.metadata()["netspec.spec_sha256"]
    assert meta["netspec.source"] == str(keras_file) and "netspec.keras_sha256" in meta


def test_train_best_keras_carries_the_spec_metadata(spec, keras, tmp_path):
    from netspec.deploy.stamps import read_contract, read_metadata
    from netspec.train.runs import RunDir

    model = spec.build()
    run = RunDir(tmp_path / "run")
    run.save_best_weights(model)
    run.save_best(model, spec.metadata())
    assert read_metadata(run.best_model) == spec.metadata()
    assert read_contract(run.best_model) == spec.contract()


@pytest.mark.parametrize("kind", ["onnx-cpu+raw", "litert+raw", "openvino-cpu+raw"])
def test_include_preprocess_takes_raw_uint8_and_matches_keras_on_preprocessed_input(kind, spec, artifacts):
    path, report = artifacts[kind]
    assert report.gate.ok and report.inputs["image"]["dtype"] == "uint8"
    model = netspec.load_model(artifacts["keras"][0])
    pre = spec.contract().inputs["image"].preprocess
    x = np.random.default_rng(0).integers(0, 256, size=(5, 6, 6, 3)).astype(np.uint8)
    x[0] = 0
    x[1] = 255  # the ends of the raw range
    expected = model(pre.apply(x), training=False).numpy()
    if kind.startswith("onnx"):
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].type == "tensor(uint8)"
        got = session.run(None, {"image": x})[0]
    elif kind.startswith("openvino"):
        from netspec.export import openvino as ovx

        opened = ovx.open_model(path)
        assert opened.inputs["image"]["dtype"] == "uint8"
        got = opened.run({"image": x})["probs"]
    else:
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path)).get_signature_runner()
        got = runner(image=x)["probs"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # float inputs are refused by the raw model: it really takes uint8
    assert spec.contract().folded().inputs["image"].preprocess.feed(x).dtype == np.uint8


def test_include_preprocess_gate_feeds_the_whole_raw_range(spec, keras, monkeypatch, tmp_path):
    from netspec.export import verify

    seen = []
    real = verify.run_gate

    def spy(reference, run, sets, *args, **kwargs):
        seen.extend(s["image"] for s in sets)
        return real(reference, run, sets, *args, **kwargs)

    monkeypatch.setattr(verify, "run_gate", spy)
    export(spec, with_overrides(BUILTIN["onnx-cpu"], include_preprocess=True), tmp_path / "r.onnx", latency=False)
    values = np.concatenate([s.ravel() for s in seen])
    assert all(s.dtype == np.uint8 for s in seen) and values.min() == 0 and values.max() == 255


# -- inspect --spec ---------------------------------------------------------------------------------


def test_inspect_spec_writes_the_stored_spec_which_reproduces_the_hash(spec, artifacts, tmp_path, capsys):
    out = tmp_path / "back.yaml"
    assert main(["inspect", str(artifacts["onnx-cpu"][0]), "--spec", str(out)]) == 0
    assert "checked" in capsys.readouterr().out
    again = netspec.load(out)
    assert again.metadata()["netspec.spec_sha256"] == spec.metadata()["netspec.spec_sha256"]
    assert again.contract() == spec.contract()


def test_inspect_spec_refuses_a_spec_that_does_not_match_its_hash(artifacts, tmp_path, capsys):
    import onnx

    from netspec.export.convert import set_metadata

    proto = onnx.load(artifacts["onnx-cpu"][0])
    meta = {p.key: p.value for p in proto.metadata_props}
    set_metadata(proto, {"netspec.spec": meta["netspec.spec"].replace('"units":4', '"units":5')})
    onnx.save(proto, tmp_path / "tampered.onnx")
    out = tmp_path / "back.yaml"
    assert main(["inspect", str(tmp_path / "tampered.onnx"), "--spec", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("$.metadata['netspec.spec']: ") and \
        "tampered.onnx: the stored spec does not match the stored hash" in err
    assert not out.exists()


# -- hostile artifacts --------------------------------------------------------------------------------


def _onnx_with(artifacts, tmp_path, props: dict) -> str:
    import onnx

    from netspec.export.convert import set_metadata

    proto = onnx.load(artifacts["onnx-cpu"][0])
    set_metadata(proto, props)
    path = tmp_path / "h.onnx"
    onnx.save(proto, path)
    return str(path)


def _keras_with(artifacts, tmp_path, member: bytes) -> str:
    path = tmp_path / "h.keras"
    with zipfile.ZipFile(artifacts["keras"][0]) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info, member if info.filename == "netspec.json" else src.read(info))
    return str(path)


def _truncated(artifacts, tmp_path, kind: str) -> str:
    src = artifacts[kind][0]
    path = tmp_path / f"cut{src.suffix}"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    return str(path)


HOSTILE = [
    ("truncated onnx", lambda a, t: _truncated(a, t, "onnx-cpu"), "cut.onnx: not a readable ONNX model"),
    ("truncated tflite", lambda a, t: _truncated(a, t, "litert"), "cut.tflite: the LiteRT model is malformed"),
    ("truncated keras", lambda a, t: _truncated(a, t, "keras"), "cut.keras: not a .keras archive"),
    ("not a tflite", lambda a, t: (t / "x.tflite").write_bytes(b"\0" * 64) and str(t / "x.tflite"),
     "x.tflite: not a LiteRT model (no TFL3"),
    ("contract not JSON", lambda a, t: _onnx_with(a, t, {METADATA_KEY: "{not json"}),
     "h.onnx is not JSON"),
    ("contract of wrong types", lambda a, t: _onnx_with(a, t, {METADATA_KEY: json.dumps(
        {"version": 1, "inputs": {"image": {"shape": [6], "preprocess": {"mean": "x"}}}})}),
     "inputs.image.preprocess.mean must be a list"),
    ("huge metadata", lambda a, t: _onnx_with(a, t, {"netspec.spec": "x" * (17 << 20)}),
     "h.onnx: metadata_props: the netspec metadata is over the 16,777,216-character cap"),
    ("keras member not an object", lambda a, t: _keras_with(a, t, b"[1, 2]"),
     "h.keras: netspec.json: the netspec metadata must be a JSON object of strings"),
    ("keras member not JSON", lambda a, t: _keras_with(a, t, b"\xff{"), "h.keras: netspec.json is not valid JSON"),
    ("unknown suffix", lambda a, t: (t / "m.pt").write_bytes(b"x") and str(t / "m.pt"),
     "m.pt: not an artifact netspec reads"),
    ("missing", lambda a, t: str(t / "none.onnx"), "no such file: "),
]


@pytest.mark.parametrize("make, message", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_artifacts_exit_1_with_a_located_message(make, message, artifacts, tmp_path, capsys):
    path = make(artifacts, tmp_path)
    assert main(["inspect", path]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_reading_errors_are_netspec_errors(artifacts, tmp_path):
    from netspec.deploy.stamps import read_contract

    with pytest.raises(ContractError):
        read_contract(_onnx_with(artifacts, tmp_path, {METADATA_KEY: "[]"}))
    with pytest.raises(ArtifactError):
        read_contract(_truncated(artifacts, tmp_path, "litert"))
