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

from deploy_artifacts import SAMPLES, artifacts
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
    # and what onnxruntime says on the decoded pixels, fed as they are (the model has no contract)
    x = np.stack([pixels(p) for p in IMAGES]).astype(np.float32)
    assert tops[".onnx"] == ort_probs(a.onnx, x).argmax(axis=1).tolist()


@pytest.mark.parametrize("kind", ["npy_one", "npy_batch", "npz", "csv_header"])
def test_array_inputs_match_onnxruntime(tmp_path, capsys, kind):
    a = artifacts()
    with np.load(SAMPLES.parent / "digits.npz") as d:
        x = d["images"][1500:1505].astype(np.float32)
    if kind == "npy_one":
        x = x[:1]
        np.save(tmp_path / "x.npy", x[0])
        name = "x.npy"
    elif kind == "npy_batch":
        np.save(tmp_path / "x.npy", x)
        name = "x.npy"
    elif kind == "npz":
        np.savez(tmp_path / "x.npz", image=x)
        name = "x.npz"
    else:
        rows = "\n".join(",".join(str(int(v)) for v in s.ravel()) for s in x)
        (tmp_path / "x.csv").write_text(",".join(f"p{i}" for i in range(64)) + "\n" + rows + "\n")
        name = "x.csv"
    rows = predictions(capsys, a.onnx, str(tmp_path / name), extra=("--top-k", "10"))
    want = ort_probs(a.onnx, x)
    assert len(rows) == len(x)
    for row, probs in zip(rows, want):
        got = {t["index"]: t["score"] for t in row["outputs"]["probs"]["top"]}
        assert np.allclose([got[i] for i in range(10)], probs, atol=1e-6)


def stamped_copy(src: Path, dst: Path, contract: Contract) -> Path:
    import onnx

    proto = onnx.load(str(src))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
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


BAD_INPUTS = [
    ("text_as_png", _text_png, "note.png is not an image Pillow can read"),
    ("truncated_png", _truncated, "cut.png cannot be decoded: image file is truncated"),
    ("wrong_size_png", _big_png, "big.png is 12 x 16 (height x width) but input 'image' of shape (8, 8, 1) float32 "
                                 "takes 8 x 8"),
    ("wrong_shape_npy", lambda t: _npy(t, np.zeros((3, 9, 9), np.float32)),
     "x.npy: the array does not fit input 'image' of shape (8, 8, 1) float32"),
    ("pickled_npy", _objects, "objects.npy holds Python objects"),
    ("complex_npy", lambda t: _npy(t, np.zeros((8, 8, 1), np.complex64)), "x.npy has dtype complex64"),
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
    onnx_file = stamped_copy(artifacts().onnx, tmp_path / "fixed.onnx", digits_contract(resize=False))
    rc, _, err = cli(capsys, "predict", str(onnx_file), str(_big_png(tmp_path)))
    assert rc == 1 and "the contract does not resize" in err


def test_folded_artifact_takes_raw_uint8(tmp_path, capsys):
    """An artifact stamped ``include_preprocess`` is fed the raw pixels: the numeric steps are its own."""
    import onnx

    onnx_file = stamped_copy(artifacts().onnx, tmp_path / "folded.onnx", digits_contract(resize=False))
    proto = onnx.load(str(onnx_file))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "netspec.include_preprocess", "true"
    onnx.save(proto, str(onnx_file))
    rc, out, _ = cli(capsys, "predict", str(onnx_file), str(IMAGES[0]), "--format", "json")
    data = json.loads(out)
    assert rc == 0 and data["folded"] is True
    want = ort_probs(artifacts().onnx, pixels(IMAGES[0])[None].astype(np.float32))  # raw 0..255, cast only
    assert data["predictions"][0]["outputs"]["probs"]["top"][0]["index"] == int(want.argmax())


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
