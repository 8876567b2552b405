"""``netspec evaluate``: per-artifact metrics equal what each runtime gives when scored independently here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deploy_artifacts import SPEC, artifacts
from netspec.cli import main


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def held_out():
    import netspec
    from netspec.train.data import load_arrays

    val = load_arrays(netspec.load(SPEC), "validation")
    return val.x["image"].astype(np.float32), val.y["probs"]


def probs_on_runtime(path: Path, x: np.ndarray) -> np.ndarray:
    """Each artifact on its own runtime, called directly (not through netspec.deploy)."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return s.run(None, {s.get_inputs()[0].name: x})[0]
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path)).get_signature_runner()
        return np.concatenate([next(iter(runner(image=x[i:i + 1]).values())) for i in range(len(x))])
    if path.suffix == ".xml":
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.asarray(compiled(x)[compiled.outputs[0]])
    import keras

    return np.asarray(keras.saving.load_model(str(path), compile=False).predict(x, verbose=0))


def test_accuracy_per_artifact_equals_independent_scoring(capsys, held_out):
    a = artifacts()
    paths = [a.keras, a.onnx, a.int8, a.tflite, a.openvino]
    # the spec stamped in the .keras names ../data/digits.npz, relative to where it was exported: its file names it
    rc, out, err = cli(capsys, "evaluate", *map(str, paths), "--spec", str(SPEC), "--format", "json")
    assert rc == 0, out + err
    data = json.loads(out)
    x, y = held_out
    assert data["samples"] == len(y) == 359 and data["data"] == "the spec's validation data"
    got = [c["metrics"]["accuracy"] for c in data["artifacts"]]
    want = [float(np.mean(probs_on_runtime(p, x).argmax(axis=1) == y)) for p in paths]
    assert got == pytest.approx(want, abs=1e-6)
    assert [c["runtime"].split()[0] for c in data["artifacts"]] == ["Keras", "onnxruntime", "onnxruntime", "LiteRT", "OpenVINO"]
    assert data["artifacts"][0]["change"] is None
    assert data["artifacts"][2]["change"]["accuracy"] == pytest.approx(got[2] - got[0])
    rc, text, _ = cli(capsys, "evaluate", *map(str, paths), "--spec", str(SPEC))
    assert rc == 0 and text.splitlines()[1].split() == ["artifact", "runtime", "accuracy", "time"]
    assert f"{got[2]:.4f} ({got[2] - got[0]:+.4f})" in text


def test_data_override_scores_all_its_samples(tmp_path, capsys, held_out):
    a = artifacts()
    x, y = held_out
    np.savez(tmp_path / "some.npz", x=x[:50], y=y[:50])
    rc, out, err = cli(capsys, "evaluate", str(a.onnx), "--data", str(tmp_path / "some.npz"), "--format", "json")
    assert rc == 0, out + err
    data = json.loads(out)
    want = float(np.mean(probs_on_runtime(a.onnx, x[:50]).argmax(axis=1) == y[:50]))
    assert data["samples"] == 50 and data["artifacts"][0]["metrics"]["accuracy"] == pytest.approx(want, abs=1e-6)
    mapping = f"{{source: npz, path: {tmp_path / 'some.npz'}, x: x, y: y, validation_split: 0.5}}"
    rc, out, _ = cli(capsys, "evaluate", str(a.onnx), "--data", mapping, "--data-root", str(tmp_path), "--format", "json")
    assert rc == 0 and json.loads(out)["samples"] == 25  # its own held-out half


def _strip(src: Path, dst: Path, extra: dict[str, str] | None = None) -> Path:
    import onnx

    proto = onnx.load(str(src))
    del proto.metadata_props[:]
    for k, v in (extra or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(dst))
    return dst


def test_without_a_spec_it_asks_for_one(tmp_path, capsys):
    bare = _strip(artifacts().onnx, tmp_path / "bare.onnx")
    rc, _, err = cli(capsys, "evaluate", str(bare))
    assert rc == 1 and "none of the artifacts carries its spec" in err and "--spec" in err
    rc, out, _ = cli(capsys, "evaluate", str(bare), "--spec", str(SPEC), "--format", "json")
    assert rc == 0 and json.loads(out)["samples"] == 359


def test_folded_preprocessing_is_refused_on_model_domain_data(capsys):
    rc, _, err = cli(capsys, "evaluate", str(artifacts().raw), "--spec", str(SPEC))
    assert rc == 1 and "has the preprocessing folded in" in err and "--raw-data" in err


def test_raw_data_gets_the_contract_or_is_fed_raw_to_a_folded_artifact(tmp_path, capsys, held_out):
    """--raw-data: the plain export gets Preprocess.apply of the raw pixels, the include_preprocess export the
    pixels themselves (uint8); each accuracy equals its runtime called directly on exactly that."""
    import netspec
    from netspec.contract import Contract

    a = artifacts()
    x, y = held_out
    raw = np.round(x.astype(np.float64) * 255 / 16).astype(np.uint8)  # as data/digits-samples/ were made
    np.savez(tmp_path / "raw.npz", x=raw, y=y)
    rc, out, err = cli(capsys, "evaluate", str(a.raw), str(a.onnx), "--data", str(tmp_path / "raw.npz"), "--raw-data",
                       "--format", "json")
    assert rc == 0, out + err
    data = json.loads(out)
    pre = Contract.of_graph(netspec.load(SPEC).graph).inputs["image"].preprocess
    want = [float(np.mean(probs_on_runtime(a.raw, raw).argmax(axis=1) == y)),
            float(np.mean(probs_on_runtime(a.onnx, pre.apply(raw)).argmax(axis=1) == y))]
    assert [c["metrics"]["accuracy"] for c in data["artifacts"]] == pytest.approx(want, abs=1e-6)
    assert [c["folded"] for c in data["artifacts"]] == [True, False]
    assert want[0] == pytest.approx(want[1], abs=0.01)  # the same model, the contract in or before the graph


def test_tampered_stamped_spec_is_refused(tmp_path, capsys):
    import onnx

    proto = onnx.load(str(artifacts().onnx))
    for p in proto.metadata_props:
        if p.key == "netspec.spec":
            p.value = p.value.replace('"epochs":40', '"epochs":41')
    onnx.save(proto, str(tmp_path / "t.onnx"))
    rc, _, err = cli(capsys, "evaluate", str(tmp_path / "t.onnx"))
    assert rc == 1 and "does not match its netspec.spec_sha256" in err


PLUGIN_SPEC = """\
netspec: 1
name: with_plugin
plugins: [eval_layers.py]
inputs: {features: [4]}
nodes:
  - {name: hidden, type: Dense, units: 3}
  - {name: doubled, type: EvaluateOnlyDouble}
  - {name: probs, type: Softmax}
outputs: [probs]
train:
  data: {source: npz, path: data.npz, x: features, y: labels, validation_split: 0.5}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
"""


def test_a_stored_spec_never_runs_its_plugins_and_takes_them_from_the_command_line(tmp_path, capsys):
    """An export of a spec with plugins: stores them, and a stranger's file may name any. evaluate never runs
    them: it asks for --plugins, and scores with them; a spec file the user names runs its own with
    --trust-plugins (predict and evaluate had no such option, so such a spec could not be scored at all)."""
    import onnxruntime as ort

    # a class of its own: the registry is the process's, and another file may not register a name twice
    (tmp_path / "eval_layers.py").write_text(
        "import keras\nimport netspec\n\n\n@netspec.register_layer\nclass EvaluateOnlyDouble(keras.layers.Layer):\n"
        "    def call(self, x):\n        return x * 2.0\n")
    (tmp_path / "spec.yaml").write_text(PLUGIN_SPEC)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    np.savez(tmp_path / "data.npz", features=x, labels=y)
    onnx = tmp_path / "m.onnx"
    rc, out, err = cli(capsys, "export", str(tmp_path / "spec.yaml"), "--trust-plugins", "--target", "onnx-cpu",
                       "-o", str(onnx), "--no-latency")
    assert rc == 0, out + err

    import subprocess
    import sys

    # a fresh process (this one registered the class when it exported); the file the stored spec names is there
    run = subprocess.run([sys.executable, "-m", "netspec", "evaluate", str(onnx)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 1 and "unknown layer type 'EvaluateOnlyDouble'" in run.stderr, run.stderr[-2000:]
    assert "names plugins ('eval_layers.py'), which a stored spec never runs" in run.stderr
    rc, out, err = cli(capsys, "evaluate", str(onnx), "--plugins", str(tmp_path / "eval_layers.py"),
                       "--format", "json")
    assert rc == 0, out + err
    s = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    expected = float(np.mean(np.argmax(s.run(None, {"features": x[20:]})[0], axis=1) == y[20:]))
    assert json.loads(out)["artifacts"][0]["metrics"]["accuracy"] == pytest.approx(expected)

    rc, out, err = cli(capsys, "evaluate", str(tmp_path / "spec.yaml"))
    assert rc == 1 and "--trust-plugins" in err
    rc, out, err = cli(capsys, "evaluate", str(tmp_path / "spec.yaml"), "--trust-plugins", "--format", "json")
    assert rc == 0, out + err
