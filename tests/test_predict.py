"""``netspec predict``: the same answers from every runtime, the contract applied, bad inputs refused with located errors.

The artifacts are one small digits model trained for the session (tests/deploy_artifacts.py). The
hostile inputs that need resource bounds (bombs, huge headers) run as subprocess cases in
tests/hostile/predict_*.yaml; the in-process cases here check messages and locations.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy_artifacts import SAMPLES, SPEC, artifacts
from netspec.cli import main
from netspec.contract import METADATA_KEY, Contract, InputContract, OutputContract, Preprocess

IMAGES = sorted(SAMPLES.glob("*.png"))
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def predictions(capsys, artifact: Path, *inputs: str, extra: tuple[str, ...] = ()) -> list[dict]:
    rc, out, err = cli(capsys, "predict", str(artifact), *inputs, "--format", "json", *extra)
    assert rc == 0, out + err
    return json.loads(out)["predictions"]


def ort_probs(path: Path, x: np.ndarray) -> np.ndarray:
    """The ONNX file run directly on onnxruntime: the independent reference."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.uint8)[:, :, None]


def declared() -> Preprocess:
    """What specs/digits.yaml declares for its input, read here from the spec (not from an artifact)."""
    import netspec

    pre = Contract.of_graph(netspec.load(SPEC).graph).inputs["image"].preprocess
    assert pre == Preprocess(dtype="uint8", color="grayscale", resize=True, scale=16 / 255)
    return pre


def scores(row: dict) -> list[float]:
    """Every class's probability from a ``--top-k 10`` row, in class order."""
    top = {t["index"]: t["score"] for t in row["outputs"]["probs"]["top"]}
    return [top[i] for i in range(10)]


def test_samples_are_held_out_digits_named_by_label():
    with np.load(SAMPLES.parent / "digits.npz") as d:
        images, labels = d["images"], d["labels"]
    assert len(IMAGES) == 10
    for path in IMAGES:
        label, index = (int(t) for t in path.stem.split("_"))
        assert index >= 1438 and labels[index] == label  # the last 20%: specs/digits.yaml's validation part
        assert np.array_equal(pixels(path)[:, :, 0], np.round(images[index, :, :, 0].astype(np.float64) * 255 / 16).astype(np.uint8))


def test_same_top1_from_keras_onnx_tflite_and_openvino(capsys):
    a = artifacts()
    tops = {}
    for path in (a.keras, a.onnx, a.tflite, a.openvino):
        rows = predictions(capsys, path, *map(str, IMAGES), extra=("--top-k", "3"))
        assert [r["input"] for r in rows] == [str(p) for p in IMAGES]
        tops[path.suffix] = [r["outputs"]["probs"]["top"][0]["index"] for r in rows]
        assert all(len(r["outputs"]["probs"]["top"]) == 3 for r in rows)
    assert tops[".keras"] == tops[".onnx"] == tops[".tflite"] == tops[".xml"]
    # and what onnxruntime says on the decoded pixels put through the spec's contract (0..255 -> 0..16)
    x = declared().apply(np.stack([pixels(p) for p in IMAGES]))
    want = ort_probs(a.onnx, x)
    assert tops[".onnx"] == want.argmax(axis=1).tolist()
    labels = [int(p.stem.split("_")[0]) for p in IMAGES]
    assert sum(t == y for t, y in zip(tops[".onnx"], labels)) >= 8  # 3 epochs: the scale is right, or it guesses
    rows = predictions(capsys, a.onnx, *map(str, IMAGES), extra=("--top-k", "10"))
    assert np.allclose([scores(r) for r in rows], want, atol=1e-6)
    assert [r["outputs"]["probs"]["top"][0]["label"] for r in rows] == [str(i) for i in tops[".onnx"]]


@pytest.mark.parametrize("kind", ["npy_one", "npy_batch", "npz", "csv_header"])
def test_array_inputs_are_raw_and_get_the_contract(tmp_path, capsys, kind):
    """Arrays are raw samples (what the image files hold, 0..255): predict applies the stamped contract."""
    a = artifacts()
    raw = np.stack([pixels(p) for p in IMAGES[:5]])  # uint8 (5, 8, 8, 1)
    if kind == "npy_one":
        raw = raw[:1]
        np.save(tmp_path / "x.npy", raw[0])
        name = "x.npy"
    elif kind == "npy_batch":
        np.save(tmp_path / "x.npy", raw)
        name = "x.npy"
    elif kind == "npz":
        np.savez(tmp_path / "x.npz", image=raw)
        name = "x.npz"
    else:
        rows = "\n".join(",".join(str(int(v)) for v in s.ravel()) for s in raw)
        (tmp_path / "x.csv").write_text(",".join(f"p{i}" for i in range(64)) + "\n" + rows + "\n")
        name = "x.csv"
    rows = predictions(capsys, a.onnx, str(tmp_path / name), extra=("--top-k", "10"))
    want = ort_probs(a.onnx, declared().apply(raw))
    assert len(rows) == len(raw)
    assert np.allclose([scores(r) for r in rows], want, atol=1e-6)
    unscaled = ort_probs(a.onnx, raw.astype(np.float32))  # what feeding them as they are would give
    assert not np.allclose(unscaled, want, atol=1e-2)


def stamped_copy(src: Path, dst: Path, contract: Contract) -> Path:
    """``src`` with ``contract`` stamped in place of the one its export stamped (one key, as export writes it)."""
    import onnx

    proto = onnx.load(str(src))
    entries = [p for p in proto.metadata_props if p.key == METADATA_KEY]
    assert len(entries) == 1  # the export stamped the spec's contract
    entries[0].value = contract.to_json()
    onnx.save(proto, str(dst))
    return dst


def digits_contract(resize: bool) -> Contract:
    pre = Preprocess(dtype="uint8", color="grayscale", resize=resize, interpolation="bilinear", scale=16 / 255)
    return Contract(inputs={"image": InputContract((8, 8, 1), "float32", pre)},
                    outputs={"probs": OutputContract(tuple(WORDS))})


def test_contract_rescales_resizes_and_labels(tmp_path, capsys):
    a = artifacts()
    onnx_file = stamped_copy(a.onnx, tmp_path / "labelled.onnx", digits_contract(resize=True))
    big = tmp_path / "big.png"
    Image.fromarray(pixels(IMAGES[3])[:, :, 0]).resize((16, 16), Image.Resampling.NEAREST).convert("RGB").save(big)
    rows = predictions(capsys, onnx_file, str(IMAGES[3]), str(big), extra=("--top-k", "10"))
    small = pixels(IMAGES[3]).astype(np.float32) * np.float32(16 / 255)
    resized = np.asarray(Image.open(big).convert("L").resize((8, 8), Image.Resampling.BILINEAR), np.float32)
    want = ort_probs(a.onnx, np.stack([small, resized[:, :, None] * np.float32(16 / 255)]))
    for row, probs in zip(rows, want):
        top = row["outputs"]["probs"]["top"]
        assert top[0]["label"] == WORDS[int(probs.argmax())]
        assert np.allclose([t["score"] for t in sorted(top, key=lambda t: t["index"])], probs, atol=1e-6)
    rc, out, _ = cli(capsys, "predict", str(onnx_file), str(IMAGES[3]), "--top-k", "2")
    assert rc == 0 and f"{IMAGES[3]}  {WORDS[int(want[0].argmax())]} (" in out


def test_raw_prints_every_output_value(capsys):
    a = artifacts()
    rows = predictions(capsys, a.onnx, str(IMAGES[0]), extra=("--raw",))
    values = rows[0]["outputs"]["probs"]["values"]
    assert len(values) == 10 and abs(sum(values) - 1) < 1e-5


# -- bad inputs: exit 1, the file named, what was expected and received, no traceback ----------------


def _text_png(tmp: Path) -> Path:
    (tmp / "note.png").write_text("not an image\n")
    return tmp / "note.png"


def _truncated(tmp: Path) -> Path:
    data = IMAGES[0].read_bytes()
    (tmp / "cut.png").write_bytes(data[: data.index(b"IDAT") + 10])
    return tmp / "cut.png"


def _big_png(tmp: Path) -> Path:
    Image.new("L", (16, 12)).save(tmp / "big.png")
    return tmp / "big.png"


def _npy(tmp: Path, arr: np.ndarray, name: str = "x.npy", pickle: bool = False) -> Path:
    np.save(tmp / name, arr, allow_pickle=pickle)
    return tmp / name


def _objects(tmp: Path) -> Path:
    arr = np.empty(2, dtype=object)
    arr[:] = [{"a": 1}, [2]]
    return _npy(tmp, arr, "objects.npy", pickle=True)


def _csv_word(tmp: Path) -> Path:
    (tmp / "rows.csv").write_text("\n".join([",".join(["1"] * 64), ",".join(["2"] * 63 + ["x"])]) + "\n")
    return tmp / "rows.csv"


def _csv_short(tmp: Path) -> Path:
    (tmp / "rows.csv").write_text(",".join(["1"] * 63) + "\n")
    return tmp / "rows.csv"


def _suffix(tmp: Path) -> Path:
    (tmp / "x.txt").write_text("1,2,3\n")
    return tmp / "x.txt"


def _negative_shape(tmp: Path) -> Path:
    """A .npy whose header numpy parses but whose shape is negative (it used to crash the reader)."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 8, 8, 1), }"
    header += b" " * (118 - len(header)) + b"\n"
    (tmp / "neg.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 256)
    return tmp / "neg.npy"


BAD_INPUTS = [
    ("text_as_png", _text_png, "note.png is not an image Pillow can read"),
    ("truncated_png", _truncated, "cut.png cannot be decoded: image file is truncated"),
    ("wrong_shape_npy", lambda t: _npy(t, np.zeros((3, 9, 9), np.float32)),
     "x.npy: the array does not fit input 'image' of shape (8, 8, 1) float32"),
    ("pickled_npy", _objects, "objects.npy holds Python objects"),
    ("complex_npy", lambda t: _npy(t, np.zeros((8, 8, 1), np.complex64)), "x.npy has dtype complex64"),
    ("negative_shape_npy", lambda t: _negative_shape(t), "neg.npy is not a .npy array (its header declares shape (-1, 8, 8, 1))"),
    ("nan_npy", lambda t: _npy(t, np.full((8, 8, 1), np.nan, np.float32)), "x.npy holds 64 NaN or infinite values"),
    ("csv_word", _csv_word, "rows.csv line 2, field 64: 'x' is not a finite number"),
    ("csv_short_row", _csv_short, "rows.csv line 1 has 63 fields but input 'image'"),
    ("unknown_suffix", _suffix, "x.txt: netspec predict reads images"),
]


@pytest.mark.parametrize("make,fragment", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_located_error(tmp_path, capsys, make, fragment):
    path = make(tmp_path)
    rc, out, err = cli(capsys, "predict", str(artifacts().onnx), str(path))
    assert rc == 1, out + err
    assert fragment in err and "Traceback" not in err
    rc, out, _ = cli(capsys, "predict", str(artifacts().onnx), str(path), "--format", "json")
    error = json.loads(out)["error"]
    assert rc == 1 and error["kind"] == "data" and fragment in error["message"]


def test_wrong_size_is_resized_only_when_the_contract_says(tmp_path, capsys):
    a = artifacts()
    big = _big_png(tmp_path)
    Image.fromarray(np.arange(192, dtype=np.uint8).reshape(12, 16)).save(big)
    # the digits spec resizes: the 16 x 12 image becomes 8 x 8 (Pillow, bilinear) before the numeric steps
    rows = predictions(capsys, a.onnx, str(big), extra=("--top-k", "10"))
    resized = np.asarray(Image.open(big).convert("L").resize((8, 8), Image.Resampling.BILINEAR), np.uint8)
    assert np.allclose(scores(rows[0]), ort_probs(a.onnx, declared().apply(resized[None, :, :, None]))[0], atol=1e-6)
    # a contract without resize refuses it, located at the file, naming both sizes
    onnx_file = stamped_copy(a.onnx, tmp_path / "fixed.onnx", digits_contract(resize=False))
    rc, out, err = cli(capsys, "predict", str(onnx_file), str(big))
    assert rc == 1 and "Traceback" not in err
    assert ("big.png is 12 x 16 (height x width) but input 'image' of shape (8, 8, 1) float32 takes 8 x 8, "
            "and the contract does not resize") in err


def test_folded_artifact_takes_raw_uint8(tmp_path, capsys):
    """An artifact whose contract marks the preprocess ``included`` (an include_preprocess export) is fed
    the raw pixels, cast only: the numeric steps are the graph's own (its input is uint8)."""
    a = artifacts()
    rc, out, _ = cli(capsys, "predict", str(a.raw), str(IMAGES[0]), "--format", "json", "--top-k", "10")
    data = json.loads(out)
    assert rc == 0 and data["folded"] is True
    import onnxruntime as ort

    session = ort.InferenceSession(str(a.raw), providers=["CPUExecutionProvider"])
    want = session.run(None, {"image": pixels(IMAGES[0])[None]})[0]  # raw 0..255 uint8, as the graph takes them
    assert np.allclose(scores(data["predictions"][0]), want[0], atol=1e-6)
    # raw arrays must hold what the raw dtype holds: 1.5 is no uint8 pixel
    np.save(tmp_path / "bad.npy", np.full((8, 8, 1), 1.5, np.float32))
    rc, _, err = cli(capsys, "predict", str(a.raw), str(tmp_path / "bad.npy"))
    assert rc == 1 and "hold values that are not uint8 integers (0..255)" in err and "bad.npy" in err
    # "included" stamped on a graph that takes floats would feed raw pixels to a model expecting them scaled
    fake = stamped_copy(a.onnx, tmp_path / "folded.onnx", digits_contract(resize=False).folded())
    rc, _, err = cli(capsys, "predict", str(fake), str(IMAGES[0]))
    assert rc == 1 and err == (f"$.metadata['netspec.contract']: {fake}: its contract says input 'image' takes raw "
                               "uint8 values (preprocessing included in the graph) but the model's input is float32\n")


def test_a_real_include_preprocess_export_gives_the_same_answers(capsys):
    """The onnx-cpu export with include_preprocess takes uint8 images and answers as the plain export does
    (the same contract, applied in the graph instead of before it)."""
    import onnxruntime as ort

    a = artifacts()
    assert ort.InferenceSession(str(a.raw), providers=["CPUExecutionProvider"]).get_inputs()[0].type == "tensor(uint8)"
    folded = predictions(capsys, a.raw, *map(str, IMAGES), extra=("--top-k", "10"))
    plain = predictions(capsys, a.onnx, *map(str, IMAGES), extra=("--top-k", "10"))
    assert np.allclose([scores(r) for r in folded], [scores(r) for r in plain], atol=1e-5)
    rc, out, _ = cli(capsys, "predict", str(a.raw), str(IMAGES[0]), "--format", "json")
    assert json.loads(out)["folded"] is True


@pytest.mark.parametrize("argv", [
    ("predict", "{onnx}", "{a}", "--top-k", "3", "{b}"),
    ("predict", "--top-k", "3", "{onnx}", "{a}", "{b}"),
    ("predict", "{onnx}", "{a}", "{b}", "--top-k", "3"),
    ("predict", "{onnx}", "--format", "json", "{a}", "--top-k", "3", "{b}"),
], ids=["between", "before", "after", "everywhere"])
def test_options_go_before_between_or_after_the_inputs(capsys, argv):
    a = artifacts()
    names = {"onnx": str(a.onnx), "a": str(IMAGES[0]), "b": str(IMAGES[1])}
    rc, out, err = cli(capsys, *(arg.format(**names) for arg in argv), *(("--format", "json") if "json" not in argv else ()))
    assert rc == 0, err
    rows = json.loads(out)["predictions"]
    assert [r["input"] for r in rows] == [str(IMAGES[0]), str(IMAGES[1])]
    assert [len(r["outputs"]["probs"]["top"]) for r in rows] == [3, 3]


def test_weights_before_the_spec(capsys):
    a = artifacts()
    rows = predictions(capsys, SPEC, str(IMAGES[2]), extra=("--top-k", "10", "--weights", str(a.keras)))
    rc, out, err = cli(capsys, "predict", "--weights", str(a.keras), str(SPEC), str(IMAGES[2]), "--top-k", "10",
                       "--format", "json")
    assert rc == 0, err
    assert np.allclose(scores(json.loads(out)["predictions"][0]), scores(rows[0]), atol=1e-6)
    assert np.allclose(scores(rows[0]), ort_probs(a.onnx, declared().apply(pixels(IMAGES[2])[None]))[0], atol=1e-5)
    with pytest.raises(SystemExit) as exit:
        main(["predict", str(a.onnx), str(IMAGES[2]), "--bogus"])
    assert exit.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_several_inputs_need_names(tmp_path, capsys):
    spec = tmp_path / "two.yaml"
    spec.write_text("netspec: 1\nname: two\ninputs: {a: [3], b: [2]}\nnodes:\n"
                    "  - {name: cat, type: Concatenate, in: [a, b]}\n"
                    "  - {name: probs, type: Dense, units: 4, activation: softmax}\noutputs: [probs]\n")
    np.save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    np.save(tmp_path / "b.npy", np.ones((2, 2), np.float32))
    rc, _, err = cli(capsys, "predict", str(spec), str(tmp_path / "a.npy"))
    assert rc == 1 and "give each file as NAME=FILE" in err
    rows = predictions(capsys, spec, f"a={tmp_path / 'a.npy'}", f"b={tmp_path / 'b.npy'}")
    assert [(r["input"], r["index"]) for r in rows] == [(str(tmp_path / "a.npy"), 0), (str(tmp_path / "a.npy"), 1)]
    shutil.copy(tmp_path / "a.npy", tmp_path / "a3.npy")
    np.save(tmp_path / "b3.npy", np.ones((3, 2), np.float32))
    rc, _, err = cli(capsys, "predict", str(spec), f"a={tmp_path / 'a3.npy'}", f"b={tmp_path / 'b3.npy'}")
    assert rc == 1 and "paired files give different numbers of samples" in err


def test_onnx_with_external_data_is_refused(tmp_path, capsys, monkeypatch):
    """Loaded from bytes, onnxruntime reads an external tensor's relative location from the current directory:
    a stranger's model could feed the user's files through its outputs (found by a red-team run)."""
    import onnx
    from onnx import TensorProto, helper

    (tmp_path / "secret.txt").write_bytes(b"AWS_SECRET=hunt2")
    tensor = TensorProto(name="sec", data_type=TensorProto.UINT8, dims=[16], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "secret.txt"), ("offset", "0"), ("length", "16")):
        tensor.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("Cast", ["sec"], ["secf"], to=TensorProto.FLOAT),
                               helper.make_node("Add", ["x", "secf"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], initializer=[tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "sub").mkdir()
    onnx.save(model, str(tmp_path / "sub" / "leak.onnx"))
    np.save(tmp_path / "zeros.npy", np.zeros((1, 16), np.float32))
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "predict", "sub/leak.onnx", "zeros.npy", "--raw")
    assert rc == 1 and "keeps tensor 'sec' in an external file" in out + err
    assert "65" not in out  # the secret's first byte ("A") never reaches an output


def _float_contract(pre: Preprocess | None) -> Contract:
    return Contract(inputs={"image": InputContract((8, 8, 1), "float32", pre)},
                    outputs={"probs": OutputContract(tuple(WORDS))})


@pytest.mark.parametrize("pre, value, message", [
    (Preprocess(scale=16 / 255), np.nan, "{f} holds 1 NaN or infinite value; netspec predict feeds finite numbers"),
    (Preprocess(scale=1e30), 1e10, "the samples of {f} for input 'image' of shape (8, 8, 1) float32 become, after "
     "the contract's preprocessing (x * 1e+30 + 0), values that are not finite (NaN or infinite; first at sample 0 "
     "at (2, 3, 0): inf); float32 holds at most 3.4e38 in magnitude"),
])
def test_non_finite_inputs_and_outputs_are_located_errors(tmp_path, capsys, pre, value, message):
    """NaN used to reach the model (and NaN scores the terminal, sorted as the best class, and bare NaN the
    JSON): a NaN or overflowing input, or a model output that is not finite, is an error naming the file."""
    onnx_file = stamped_copy(artifacts().onnx, tmp_path / "f.onnx", _float_contract(pre))
    x = np.zeros((8, 8, 1), np.float32)
    x[2, 3, 0] = value
    np.save(tmp_path / "x.npy", x)
    rc, out, err = cli(capsys, "predict", str(onnx_file), str(tmp_path / "x.npy"))
    assert rc == 1 and out == "" and message.format(f=tmp_path / "x.npy") in err, err
    assert "RuntimeWarning" not in err and "Traceback" not in err
    rc, out, _ = cli(capsys, "predict", str(onnx_file), str(tmp_path / "x.npy"), "--format", "json")
    assert rc == 1 and json.loads(out)["error"]["kind"] == "data"


def test_a_model_output_that_is_not_finite_is_an_error_naming_the_sample(tmp_path):
    """The digits model's softmax stays finite on any finite input, so its runner is replaced by one whose
    output for the second sample is NaN: it is refused, naming that sample, not printed as a score."""
    from dataclasses import replace

    from netspec.deploy.predict import predict
    from netspec.deploy.runtimes import open_artifact
    from netspec.errors import DataError

    a = open_artifact(str(artifacts().onnx))

    def nan_second(x: dict) -> dict:
        y = a.runner(x)["probs"].copy()
        y[1, 4] = np.nan
        return {"probs": y}

    np.save(tmp_path / "b.npy", np.stack([pixels(IMAGES[0]), pixels(IMAGES[1])]))
    assert len(predict(a, [str(tmp_path / "b.npy")])) == 2  # the real runner: finite
    with pytest.raises(DataError) as info:
        predict(replace(a, runner=nan_second), [str(tmp_path / "b.npy")])
    assert info.value.message == (f"{artifacts().onnx} gives output 'probs' values that are not finite (NaN or "
                                  f"infinite) for {tmp_path / 'b.npy'}[1]: the model's arithmetic overflowed on this "
                                  "input (values far outside what it was trained on, or a model that was changed)")


@pytest.mark.parametrize("fault, message", [
    (",".join(["1"] * 30 + ["nan"] + ["1"] * 33), "rows.csv line 5002, field 31: 'nan' is not a finite number"),
    (",".join(["1"] * 65), "rows.csv line 5002 has 65 fields but input 'image' of shape (8, 8, 1) float32 takes 64 "
     "per row. Received: 65 fields"),
    (",".join(["1"] * 63 + ["1e999"]), "rows.csv line 5002, field 64: '1e999' is not a finite number"),
])
def test_csv_rows_are_converted_in_chunks_and_faults_still_located(tmp_path, fault, message):
    """CSV rows are parsed by numpy a chunk at a time (a million rows of 64 took 72 s field by field, now
    about 5); a fault in a later chunk is still named by its line and field, and values are exact."""
    from netspec.deploy.inputs import CSV_CHUNK, Port, read_samples
    from netspec.errors import DataError

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (CSV_CHUNK + 1000, 64))
    text = "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    (tmp_path / "rows.csv").write_text(text)
    port = Port("image", (8, 8, 1), "float32")
    got = read_samples(str(tmp_path / "rows.csv"), port, None)
    assert got.shape == (len(rows), 8, 8, 1) and np.array_equal(got.reshape(len(rows), 64), rows)
    lines = text.splitlines()
    lines[5001] = fault
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        read_samples(str(tmp_path / "rows.csv"), port, None)
    assert info.value.message == f"{tmp_path}/{message}"


def test_a_keras_model_built_on_a_dict_of_inputs_exports_and_predicts(keras, tmp_path, capsys):
    """keras.io's structured-data models take a dict. ``model.inputs`` lists it by sorted key and the model
    refuses a list: export and predict pass it the structure it was built with, whatever the key order."""
    import onnxruntime as ort

    from netspec.export import export
    from netspec.export.targets import BUILTIN

    keras.utils.set_random_seed(0)
    zeta, alpha = keras.Input((3,), name="zeta"), keras.Input((4,), name="alpha")
    out = keras.layers.Dense(2, name="out")(keras.layers.Concatenate()([zeta, keras.layers.Dense(4)(alpha)]))
    model = keras.Model({"zeta": zeta, "alpha": alpha}, out)
    model.save(path := tmp_path / "dict.keras")
    x = {"zeta": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
         "alpha": np.linspace(2, -2, 8, dtype=np.float32).reshape(2, 4)}
    expected = np.asarray(model(x))
    report = export(str(path), BUILTIN["onnx-cpu"], tmp_path / "dict.onnx", latency=False)
    assert report.gate.ok
    session = ort.InferenceSession(str(tmp_path / "dict.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, x)[0], expected, atol=1e-5)
    for name, value in x.items():
        np.save(tmp_path / f"{name}.npy", value)
    for artifact in (path, tmp_path / "dict.onnx"):
        rows = predictions(capsys, artifact, f"zeta={tmp_path / 'zeta.npy'}", f"alpha={tmp_path / 'alpha.npy'}",
                           extra=("--raw",))
        np.testing.assert_allclose([r["outputs"]["out"]["values"] for r in rows], expected, atol=1e-5)


@pytest.mark.parametrize("make, names", [
    ("dict", ["first", "second"]),  # called by the dict's keys, not the layers' names (head, tail)
    ("shared", ["shared", "shared_1"]),  # one layer making both outputs: output_names has 'shared' twice
], ids=["dict-keys", "shared-layer"])
def test_every_output_of_a_keras_model_keeps_its_own_name(keras, tmp_path, capsys, make, names):
    """Outputs named twice collapsed into one (export kept one and its gate passed); dict outputs were looked
    up by layer name (predict: internal error). Both now export and predict every output, by name."""
    import onnxruntime as ort

    from netspec.export import export
    from netspec.export.targets import BUILTIN

    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    if make == "dict":
        model = keras.Model([a, b], {"second": keras.layers.Dense(3, name="tail")(b),
                                     "first": keras.layers.Dense(2, name="head")(a)})
    else:
        shared = keras.layers.Dense(2, name="shared")
        model = keras.Model([a, b], [shared(a), shared(b)])
    model.save(path := tmp_path / "m.keras")
    x = {"a": np.linspace(-1, 1, 3, dtype=np.float32)[None], "b": np.linspace(2, -1, 3, dtype=np.float32)[None]}
    got = model([x["a"], x["b"]])
    expected = dict(zip(names, (np.asarray(t) for t in keras.tree.flatten(got))))
    report = export(str(path), BUILTIN["onnx-cpu"], tmp_path / "m.onnx", latency=False)
    assert report.gate.ok
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == names
    for name, value in zip(names, session.run(None, x)):
        np.testing.assert_allclose(value, expected[name], atol=1e-5)
    for k, v in x.items():
        np.save(tmp_path / f"{k}.npy", v)
    for artifact in (path, tmp_path / "m.onnx"):
        rows = predictions(capsys, artifact, f"a={tmp_path / 'a.npy'}", f"b={tmp_path / 'b.npy'}", extra=("--raw",))
        assert sorted(rows[0]["outputs"]) == sorted(names)
        for name in names:
            np.testing.assert_allclose(rows[0]["outputs"][name]["values"], expected[name][0], atol=1e-5)


def test_a_string_input_is_refused_by_name(keras, tmp_path, capsys):
    """keras.io's structured data: a string Input into a StringLookup (was an internal error in predict)."""
    thal, age = keras.Input((1,), name="thal", dtype="string"), keras.Input((1,), name="age")
    lookup = keras.layers.StringLookup(vocabulary=["fixed", "normal"], output_mode="one_hot")(thal)
    out = keras.layers.Dense(1, name="out")(keras.layers.Concatenate()([lookup, age]))
    keras.Model({"thal": thal, "age": age}, out).save(path := tmp_path / "m.keras")
    np.save(tmp_path / "age.npy", np.array([[40.0]], np.float32))
    np.save(tmp_path / "thal.npy", np.array([[1.0]], np.float32))
    rc, _, err = cli(capsys, "predict", str(path), f"thal={tmp_path / 'thal.npy'}", f"age={tmp_path / 'age.npy'}")
    assert rc == 1 and "input 'thal' takes strings; netspec predict and evaluate feed numbers" in err
    assert "Traceback" not in err
