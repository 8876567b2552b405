"""Data sources (npz, csv, image folders, the shipped dataset), ``load_arrays`` for the export stage,
and bad data stopped before training with the spec line and the data named."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.data import load_arrays
from netspec.train import train

from conftest import ROOT

DIGITS = ROOT / "data" / "digits.npz"


def write_spec(tmp_path, data: str, *, loss: str = "sparse_categorical_crossentropy", shape="[8, 8, 1]",
               dtype: str = "float32", units: int = 10, name: str = "s.yaml"):
    text = textwrap.dedent(f"""\
        netspec: 1
        name: t
        inputs: {{image: {{shape: {shape}, dtype: {dtype}}}}}
        nodes:
          - {{name: flat, type: Flatten}}
          - {{name: probs, type: Dense, units: {units}, activation: softmax}}
        train:
          data: {data}
          loss: {loss}
          batch_size: 64
        """)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def digits():
    with np.load(DIGITS) as z:
        return z["images"], z["labels"]


def npz(tmp_path, name="d.npz", **arrays):
    np.savez(tmp_path / name, **arrays)
    return name


# -- sources -------------------------------------------------------------------------------------


def test_npz_split_like_keras(tmp_path):
    spec = netspec.load(write_spec(tmp_path, f"{{source: npz, path: {DIGITS}, x: images, y: labels, "
                                             "validation_split: 0.2}"))
    part, val = load_arrays(spec, "train"), load_arrays(spec, "validation")
    images, labels = digits()
    assert len(part) == 1438 and len(val) == 359  # ceil(1797 * 0.8), the last part validates, as in Keras
    np.testing.assert_array_equal(part.x["image"], images[:1438])
    np.testing.assert_array_equal(val.y["probs"], labels[1438:])
    assert set(part.x) == {"image"} and set(part.y) == {"probs"}
    assert part.x["image"].dtype == np.float32  # the input's dtype


def test_shipped_dataset_and_separate_validation(tmp_path):
    images, labels = digits()
    npz(tmp_path, "v.npz", images=images[:50], labels=labels[:50])
    spec = netspec.load(write_spec(tmp_path, "{source: dataset, name: digits, validation: {source: npz, "
                                             "path: v.npz, x: images, y: labels}}"))
    assert len(load_arrays(spec, "train")) == 1797
    np.testing.assert_array_equal(load_arrays(spec, "validation").y["probs"], labels[:50])


def test_no_validation_data(tmp_path):
    spec = netspec.load(write_spec(tmp_path, "{source: dataset, name: digits}"))
    with pytest.raises(netspec.NetspecError, match="no validation data"):
        load_arrays(spec, "validation")


def test_csv_rows_feed_an_image_input(tmp_path):
    images, labels = digits()
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    rows = [",".join(map(str, list(img.reshape(-1)) + [lab])) for img, lab in zip(images[:40], labels[:40])]
    (tmp_path / "d.csv").write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    spec = netspec.load(write_spec(tmp_path, "{source: csv, path: d.csv, y: label}"))
    arrays = load_arrays(spec)
    np.testing.assert_array_equal(arrays.x["image"], images[:40].astype(np.float64))
    np.testing.assert_array_equal(arrays.y["probs"], labels[:40])


def test_csv_bad_cell(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,x,1\n", encoding="utf-8")
    path = write_spec(tmp_path, "{source: csv, path: d.csv, y: label}", shape="[2]")
    err = _train_error(path)
    assert "d.csv line 3, column 'b': 'x' is not a number" in err.message
    assert (err.line, err.column) == (8, 9)


def _png_tree(tmp_path, tf):
    root = tmp_path / "imgs"
    for label, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(3):
            image = np.full((10 + i, 12, 3), 40 * label + i, dtype=np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    (root / "dog" / "notes.txt").write_text("not an image", encoding="utf-8")
    return root


def test_image_dir(tmp_path, keras):
    import tensorflow as tf

    _png_tree(tmp_path, tf)
    spec = netspec.load(write_spec(tmp_path, "{source: image_dir, path: imgs, validation_split: 0.5}",
                                   shape="[8, 8, 3]", units=2))
    arrays = load_arrays(spec, "train")
    assert arrays.x["image"].shape == (3, 8, 8, 3) and arrays.x["image"].dtype == np.float32
    assert list(load_arrays(spec, "validation").y["probs"]) == [1, 1, 1]
    np.testing.assert_allclose(arrays.x["image"][1], 1.0)  # cat/1.png: every pixel 1, resized


def test_broken_image_stops_before_training(tmp_path, keras):
    import tensorflow as tf

    root = _png_tree(tmp_path, tf)
    (root / "cat" / "9.png").write_bytes(b"\x89PNG garbage")
    path = write_spec(tmp_path, "{source: image_dir, path: imgs}", shape="[8, 8, 3]", units=2)
    err = _train_error(path)
    assert "9.png cannot be decoded" in err.message


# -- bad data stops before training -------------------------------------------------------------


def _train_error(path, *extra):
    """Run ``netspec train`` in-process; it must fail with exit 1 and leave no run directory."""
    import contextlib
    import io

    run = path.parent / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["train", str(path), "--run-dir", str(run), *extra]) == 1
    assert not run.exists(), "the run started"
    try:
        train(netspec.load(path), run_dir=run, check_only=True)
    except netspec.NetspecError as e:
        assert str(e) in err.getvalue()
        return e
    raise AssertionError("the API accepted what the CLI refused")


BAD = [
    # id, arrays in d.npz, spec kwargs, message fragment, (line, col), hint fragment
    ("wrong_shape", {"x": np.zeros((5, 8, 8)), "y": np.zeros(5, int)}, {},
     "array 'x' of d.npz has shape (5, 8, 8); input 'image' (line 3) expects (None, 8, 8, 1)", (8, 9),
     "no trailing channel axis"),
    ("wrong_dtype", {"x": np.zeros((5, 8, 8, 1), np.float32), "y": np.zeros(5, int)}, {"dtype": "int32"},
     "array 'x' of d.npz has dtype float32; input 'image' (line 3) is int32", (8, 9), "integer inputs"),
    ("string_data", {"x": np.full((5, 8, 8, 1), "a"), "y": np.zeros(5, int)}, {},
     "has dtype <U1; input 'image' (line 3) is float32", (8, 9), None),
    ("nan", {"x": np.full((5, 8, 8, 1), np.nan), "y": np.zeros(5, int)}, {}, "NaN or infinite value in sample 0",
     (8, 9), None),
    ("label_out_of_range", {"x": np.zeros((5, 8, 8, 1)), "y": np.array([0, 3, 10, 2, 1])}, {},
     "label 10 in sample 2 of array 'y' of d.npz is out of range: output 'probs' (node 'probs', line 6) has 10 "
     "classes (labels 0..9)", (8, 9), None),
    ("negative_label", {"x": np.zeros((5, 8, 8, 1)), "y": np.array([0, -1, 1, 2, 1])}, {},
     "label -1 in sample 1", (8, 9), None),
    ("float_labels", {"x": np.zeros((5, 8, 8, 1)), "y": np.array([0, 1.5, 1, 2, 1])}, {},
     "non-integer label 1.5 in sample 1", (8, 9), None),
    ("one_hot_with_sparse_loss", {"x": np.zeros((5, 8, 8, 1)), "y": np.eye(10)[:5]}, {},
     "takes integer class labels of shape (None)", (8, 9), "categorical_crossentropy"),
    ("integer_labels_with_categorical_loss", {"x": np.zeros((5, 8, 8, 1)), "y": np.arange(5)},
     {"loss": "categorical_crossentropy"}, "array 'y' of d.npz has shape (5); output 'probs'", (8, 9),
     "sparse_categorical_crossentropy"),
    ("lengths_differ", {"x": np.zeros((5, 8, 8, 1)), "y": np.zeros(4, int)}, {},
     "array 'y' of d.npz has 4 samples; the other arrays have 5", (8, 18), None),
    ("binary_labels_out_of_range", {"x": np.zeros((5, 8, 8, 1)), "y": np.array([[0], [2], [1], [0], [1]])},
     {"loss": "binary_crossentropy", "units": 1}, "labels in 0..2; BinaryCrossentropy takes labels in 0..1",
     (8, 9), None),
]


@pytest.mark.parametrize("arrays, kwargs, fragment, where, hint", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_data_stops_before_training(tmp_path, keras, arrays, kwargs, fragment, where, hint):
    npz(tmp_path, **arrays)
    path = write_spec(tmp_path, "{source: npz, path: d.npz}", **kwargs)
    err = _train_error(path)
    assert fragment in err.message, str(err)
    assert err.file == str(path) and (err.line, err.column) == where, str(err)
    if hint:
        assert err.hint and hint in err.hint, str(err)


def test_error_points_at_the_key_that_chose_the_data(tmp_path, keras):
    npz(tmp_path, pixels=np.zeros((5, 8, 8)), y=np.zeros(5, int))
    path = write_spec(tmp_path, "{source: npz, path: d.npz,\n          x: pixels}")
    err = _train_error(path)
    assert (err.line, err.column) == (9, 6) and err.json_path == "$.train.data.x"
    assert str(err).startswith(f"{path}:9:6: $.train.data.x: array 'pixels' of d.npz has shape (5, 8, 8)")


def test_missing_file_stops_before_tensorflow(tmp_path):
    path = write_spec(tmp_path, "{source: npz, path: missing.npz}")
    err = _train_error(path)
    assert "data file 'missing.npz' does not exist" in err.message and (err.line, err.column) == (8, 29)
