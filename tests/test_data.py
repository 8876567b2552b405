"""Data sources (npz, csv, image folders, the shipped dataset), ``load_arrays`` for the export stage,
and bad data stopped before training with the spec line and the data named."""

from __future__ import annotations

import os
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


# -- data paths stay inside the spec's tree (netspec.source.paths) ------------------------------------

from hostile_setups import data as hostile  # noqa: E402

from netspec.train.datacheck import data_dir  # noqa: E402
from netspec.train.datafiles import CsvRows, image_size, npz_cost, read_npz  # noqa: E402
from netspec.source.paths import PathRefused, confine, names, roots_for  # noqa: E402


def _tree(tmp_path):
    """spec/ (the spec's directory, with d.npz, sub/e.npz and links) and outside/ (o.npz)."""
    (tmp_path / "spec" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    for name in ("spec/d.npz", "spec/sub/e.npz", "outside/o.npz"):
        hostile.npz_ok(tmp_path, None, "4", name)
    os.symlink("sub/e.npz", tmp_path / "spec" / "inside.npz")
    os.symlink(tmp_path / "outside" / "o.npz", tmp_path / "spec" / "escape.npz")
    os.symlink(tmp_path / "outside", tmp_path / "spec" / "outdir")
    os.mkfifo(tmp_path / "spec" / "fifo.npz")
    (tmp_path / "spec" / ".ssh").mkdir()
    for name in (".env", ".ssh/id_rsa"):
        (tmp_path / "spec" / name).write_text("SECRET=hunter2\n", encoding="utf-8")
    os.symlink(".env", tmp_path / "spec" / "dotlink.csv")
    return tmp_path / "spec" / "s.yaml"


PATHS = [
    # id, path as written, --data-root (relative to tmp), kind, error fragment (None: allowed)
    ("plain", "d.npz", None, "file", None),
    ("subdir", "sub/e.npz", None, "file", None),
    ("dotdot_inside", "sub/../d.npz", None, "file", None),
    ("symlink_inside", "inside.npz", None, "file", None),
    ("directory", "sub", None, "dir", None),
    ("shipped_absolute", str(DIGITS), None, "file", None),
    ("absolute", "/etc/passwd", None, "file", "is absolute"),
    ("absolute_in_spec_dir", "TMP/spec/d.npz", None, "file", "is absolute"),
    ("proc", "/proc/self/environ", None, "file", "is absolute"),
    ("dotdot_escape", "../outside/o.npz", None, "file", "leads outside the spec's directory"),
    ("dotdot_deep", "../../../../../../../../etc/passwd", None, "file", "leads outside"),
    ("symlink_escape", "escape.npz", None, "file", "leads outside"),
    ("symlink_dir_escape", "outdir/o.npz", None, "file", "leads outside"),
    ("data_root_relative", "../outside/o.npz", "outside", "file", None),
    ("data_root_absolute", "TMP/outside/o.npz", "outside", "file", None),
    ("data_root_symlink", "escape.npz", "outside", "file", None),
    ("data_root_slash_proc", "/proc/self/environ", "/", "file", "a pseudo-filesystem"),
    ("data_root_dev", "/dev/zero", "/dev", "file", "a pseudo-filesystem"),
    ("fifo", "fifo.npz", None, "file", "is a FIFO, not a regular file"),
    ("hidden_file", ".env", None, "file", "names a hidden file or folder"),
    ("hidden_folder", ".ssh/id_rsa", None, "file", "names a hidden file or folder"),
    ("link_to_hidden", "dotlink.csv", None, "file", "leads (through a symlink) to a hidden file"),
    ("dir_for_file", "sub", None, "file", "is a directory, not a regular file"),
    ("file_for_dir", "d.npz", None, "dir", "is a file, not a directory"),
    ("missing", "nope.npz", None, "file", "data file 'nope.npz' does not exist"),
    ("not_a_string", 3, None, "file", "is not a usable path"),
    ("nul", "d\x00.npz", None, "file", "is not a usable path"),
    ("empty", "", None, "file", "is not a usable path"),
    ("long", "a/" * 600, None, "file", "is not a usable path"),
]


@pytest.mark.parametrize("text, root, kind, fragment", [c[1:] for c in PATHS], ids=[c[0] for c in PATHS])
def test_confine(tmp_path, text, root, kind, fragment):
    spec = _tree(tmp_path)
    if isinstance(text, str):
        text = text.replace("TMP", str(tmp_path))
    roots = roots_for(spec, None if root is None else tmp_path / root, data_dir())
    if fragment is None:
        assert confine(text, roots, kind=kind).exists()
        return
    with pytest.raises(PathRefused) as e:
        confine(text, roots, kind=kind)
    assert fragment in str(e.value)
    assert str(tmp_path / "outside") not in str(e.value)  # the place outside the tree is never named


def test_shipped_data_is_reachable_from_the_shipped_specs():
    roots = roots_for(ROOT / "specs" / "digits.yaml", None, data_dir())
    assert confine("../data/digits.npz", roots) == DIGITS.resolve()  # specs/digits.yaml's own path


def test_text_spec_needs_a_data_root(tmp_path):
    hostile.npz_ok(tmp_path, None, "8")
    text = write_spec(tmp_path, "{source: npz, path: d.npz, x: images, y: labels}").read_text()
    with pytest.raises(netspec.NetspecError, match="a spec given as text has no directory: name the data's "
                                                   "directory with --data-root"):
        load_arrays(netspec.load(text))
    assert len(load_arrays(netspec.load(text, data_root=tmp_path))) == 8


def test_cli_data_root(tmp_path, capsys):
    spec = tmp_path / "spec" / "s.yaml"
    spec.parent.mkdir()
    hostile.npz_ok(tmp_path, None, "8", "outside/d.npz")
    write_spec(spec.parent, "{source: npz, path: ../outside/d.npz, x: images, y: labels}")
    assert main(["validate", str(spec)]) == 1
    assert "leads outside the spec's directory" in capsys.readouterr().err
    assert main(["validate", str(spec), "--data-root", str(tmp_path / "outside")]) == 0


def test_names_are_bounded():
    text = names([f"col{i}" + "x" * 100 + "\n" for i in range(50)])
    assert text.count(", ") == 10 and text.endswith("(50 in all)") and "\n" not in text and len(text) < 600


# -- the reader gate (netspec.train.datafiles) -----------------------------------------------------------


def _npz_cost(path):
    return npz_cost(path, ["images", "labels"])


def _npz_read(path):
    return read_npz(path, ["images", "labels"])


def _csv_rows(path):
    return sum(1 for _ in CsvRows(path, ","))


def _images(path):
    for f in sorted((path.parent / "imgs").rglob("*.png")):
        image_size(f)


READERS = [
    # id, setup function (and args), reader, file, error fragment
    ("npz_header_shape", ("npz_header_shape",), _npz_cost, "d.npz", "declares shape (1000000, 1000000) of <f8"),
    ("npz_bomb", ("npz_bomb", "0.25"), _npz_cost, "d.npz", "a compression bomb"),
    ("npz_declared_size", ("npz_declared_size", "3"), _npz_cost, "d.npz", "unpacks to 3.0 GiB, over the data budget of"),
    ("npz_object", ("npz_object",), _npz_cost, "d.npz", "holds Python objects"),
    ("npz_short_member", ("npz_short_member",), _npz_cost, "d.npz", "the file is truncated or corrupt"),
    ("npz_truncated", ("npz_truncated",), _npz_cost, "d.npz", "is not a readable .npz file"),
    ("npz_bad_crc", ("npz_bad_crc",), _npz_read, "d.npz", "array 'images' is corrupt (Bad CRC-32"),
    ("npz_traversal", ("npz_member_name",), _npz_cost, "d.npz", "has a member named '../../evil.npy'"),
    ("npz_absolute_member", ("npz_member_name", "/abs.npy"), _npz_cost, "d.npz", "has a member named '/abs.npy'"),
    ("npz_bzip2", ("npz_bzip2",), _npz_cost, "d.npz", "uses zip compression method 12"),
    ("npz_garbage", ("garbage",), _npz_cost, "d.npz", "d.npz is not a readable .npz file"),
    ("npz_missing_key", ("npz_ok",), lambda p: npz_cost(p, ["nope"]), "d.npz", "has no array 'nope'"),
    ("npz_fifo", ("fifo", "d.npz"), _npz_cost, "d.npz", "is a FIFO"),
    ("csv_bad_utf8", ("csv_bad_utf8", "102400"), _csv_rows, "d.csv", "d.csv line 17067 is not UTF-8 text (byte 0xff at offset 102,402)"),
    ("csv_big_field", ("csv_big_field",), _csv_rows, "d.csv", "d.csv line 3: field larger than field limit"),
    ("csv_long_line", ("csv_long_line", "17"), _csv_rows, "d.csv", "line 2 is longer than 16,777,216 characters"),
    ("image_fake", ("image_fake",), _images, "x", "image 9.png cannot be decoded"),
    ("image_bomb", ("image_bomb",), _images, "x", "declares over 178,956,970 pixels"),
    ("image_large", ("image_bomb", "9000", "9000"), _images, "x", "declares 9,000 x 9,000 pixels"),
    ("image_fifo", ("image_special", "fifo"), _images, "x", "is a FIFO"),
]


@pytest.mark.parametrize("setup, reader, file, fragment", [c[1:] for c in READERS], ids=[c[0] for c in READERS])
def test_reader_gate(tmp_path, setup, reader, file, fragment):
    getattr(hostile, setup[0])(tmp_path, None, *setup[1:])
    with pytest.raises(PathRefused) as e:
        reader(tmp_path / file)
    assert fragment in str(e.value), str(e.value)
    assert len(str(e.value)) < 400 and "hunter2" not in str(e.value)


def test_reader_gate_reads_legal_files(tmp_path):
    hostile.npz_ok(tmp_path, None, "16")
    assert {k: m.nbytes for k, m in _npz_cost(tmp_path / "d.npz").items()} == {"images": 16 * 64 * 4,
                                                                               "labels": 16 * 8}
    assert _npz_read(tmp_path / "d.npz")["images"].shape == (16, 8, 8, 1)
    hostile.csv_ok(tmp_path, None, "40")
    assert _csv_rows(tmp_path / "d.csv") == 41
    hostile.image_tree(tmp_path, None)
    assert image_size(tmp_path / "imgs" / "cat" / "2.png") == (12, 12)


def test_csv_rows_over_the_budget(tmp_path, monkeypatch):
    import netspec.train.data as data_module

    monkeypatch.setattr(data_module, "data_budget", lambda: 8 * 3 * 10)  # 10 rows of 3 used columns
    hostile.csv_ok(tmp_path, None, "11")
    err = _train_error(write_spec(tmp_path, "{source: csv, path: d.csv, y: label}", shape="[2]"))
    assert "d.csv has more than 10 rows of 3 used columns, over the data budget" in err.message


def test_image_count_is_bounded(tmp_path, monkeypatch):
    import netspec.train.datacheck as datacheck

    monkeypatch.setattr(datacheck, "MAX_IMAGES", 5)
    hostile.image_tree(tmp_path, None, "3")
    spec = netspec.load(write_spec(tmp_path, "{source: image_dir, path: imgs}", shape="[8, 8, 3]", units=2))
    with pytest.raises(netspec.NetspecError, match="imgs holds more than 5 images; netspec reads at most 5"):
        spec.validate()
