"""Data sources for training: read npz / csv / image folders / shipped datasets, check them against the
model's inputs and outputs, and feed them through a ``tf.data`` pipeline.

Every check runs before training starts and fails with a ``DataError`` that names the spec line
that chose the data, the data itself (file, key, sample) and what the model expects. Files are read
only through the :mod:`netspec.train.datafiles` gate (costed against :func:`~netspec.train.datafiles.data_budget`
before memory is committed), at paths :mod:`netspec.source.paths` confined when the spec was checked.
"""

from __future__ import annotations

import math
import os
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .config import SpecView, TrainConfig, train_config
from .datacheck import IMAGE_SUFFIXES, DataConfig, spec_roots
from .datafiles import CsvRows, data_budget, read_npz, size_text
from ..source.paths import PathRefused, inside_roots, shown
from ..errors import DataError, short


@dataclass
class Arrays:
    """Samples in memory: ``x`` maps input name -> array, ``y`` output name -> array (None: no labels)."""

    x: dict
    y: dict | None

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))

    def take(self, index) -> "Arrays":
        return Arrays({k: v[index] for k, v in self.x.items()},
                      None if self.y is None else {k: v[index] for k, v in self.y.items()})


@dataclass
class Files:
    """An image folder: file paths and their class labels (decoded lazily by the pipeline)."""

    paths: list
    labels: np.ndarray
    input_name: str
    output_name: str
    shape: tuple  # (height, width, channels) of the model input

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index) -> "Files":
        idx = np.arange(len(self.paths))[index]
        return Files([self.paths[i] for i in idx], self.labels[idx], self.input_name, self.output_name, self.shape)


def load_arrays(spec: SpecView, part: Literal["train", "validation"] = "train") -> Arrays:
    """The spec's training or validation data as numpy arrays, checked against the model's inputs.

    For the export stage's int8 calibration and held-out accuracy. Image folders are decoded and
    resized to the input's height and width. ``x`` values have the inputs' dtypes.

    Args:
        spec: a loaded :class:`netspec.Spec` with a ``train.data`` section.
        part: ``"train"`` (the training samples, without the validation split) or ``"validation"``
            (``validation_split``'s samples, or the ``validation`` source).

    Returns:
        An :class:`Arrays` with ``.x`` (input name -> array) and ``.y`` (output name -> array).

    Raises:
        TrainError, DataError: the train section is invalid, the data is missing or does not fit
            the inputs, or ``part`` is ``"validation"`` and the spec has no validation data.
    """
    if part not in ("train", "validation"):
        raise ValueError(f"part must be 'train' or 'validation'. Received: part={part!r}")
    config = train_config(spec)
    train, val = read_split(spec, config)
    chosen = train if part == "train" else val
    if chosen is None:
        raise DataError("the spec has no validation data (train.data.validation_split or train.data.validation)",
                        path=config.data.where, location=spec.document.source.value(config.data.where))
    if isinstance(chosen, Files):
        return _decode_all(chosen)
    dtypes = {d.name: d.dtype for d in spec.graph.inputs if d.dtype not in ("string", "bfloat16")}
    return Arrays({k: v.astype(dtypes[k], copy=False) if k in dtypes else v for k, v in chosen.x.items()}, chosen.y)


def read_split(spec: SpecView, config: TrainConfig) -> tuple[Arrays | Files, Arrays | Files | None]:
    """(training data, validation data or None), read and checked against the model's inputs.

    Args:
        spec: a loaded :class:`netspec.Spec`.
        config: its checked train section (:func:`netspec.train.config.train_config`).

    Returns:
        The training data and the validation data (the ``validation`` source, the last
        ``validation_split`` part of the training source, or None), as :class:`Arrays` or, for an
        image folder, :class:`Files`.

    Raises:
        DataError: a file is missing, unreadable, over the data budget, or does not fit the inputs,
            or ``validation_split`` leaves no training or no validation samples.
    """
    data = read(spec, config.data)
    if config.validation is not None:
        return data, read(spec, config.validation)
    if config.validation_split is None:
        return data, None
    n = len(data)
    cut = int(math.ceil(n * (1.0 - config.validation_split)))  # as Keras's validation_split: the last part
    if cut == 0 or cut == n:
        path = config.data.where + ("validation_split",)
        raise DataError(f"validation_split {config.validation_split} of {n} samples leaves "
                        f"{'no training' if cut == 0 else 'no validation'} samples", path=path,
                        location=spec.document.source.value(path))
    return data.take(slice(0, cut)), data.take(slice(cut, n))


def read(spec: SpecView, dc: DataConfig) -> Arrays | Files:
    """One source, read and checked against the model's inputs (shapes and dtypes)."""
    if dc.source == "image_dir":
        return _image_files(spec, dc)
    reader = _read_csv if dc.source == "csv" else _read_npz
    x, y = reader(spec, dc)
    arrays = Arrays(x, y)
    _check_inputs(spec, dc, arrays)
    return arrays


def _error(spec, dc, message: str, keys: tuple = (), hint: str | None = None) -> DataError:
    path = dc.at(*keys)
    written = spec.document.source.values
    while path not in written and len(path) > len(dc.where):  # point at what the spec wrote
        path = path[:-1]
    return DataError(message, path=path, location=spec.document.source.value(path), hint=hint)


# -- readers --------------------------------------------------------------------------------


def _read_npz(spec, dc):
    keys = [*dc.x.values(), *dc.y.values()]
    try:
        arrays = read_npz(dc.path, keys)
    except PathRefused as e:  # missing, corrupt, over the budget, a bomb, or object arrays (never unpickled)
        raise _error(spec, dc, str(e), ("path",)) from None
    return ({name: arrays[key] for name, key in dc.x.items()}, {name: arrays[key] for name, key in dc.y.items()})


def _read_csv(spec, dc):
    """The used columns of a CSV file as float64 arrays, streamed row by row (8 bytes per used cell)."""
    uses = [(kind, name, [cols] if isinstance(cols, str) else list(cols))
            for kind, mapping in (("x", dc.x), ("y", dc.y)) for name, cols in mapping.items()]
    wanted = list(dict.fromkeys(col for _, _, cols in uses for col in cols))
    owner = {}
    for kind, name, cols in uses:
        for col in cols:
            owner.setdefault(col, (kind, name))
    values = [array("d") for _ in wanted]
    max_rows = data_budget() // (8 * max(len(wanted), 1))
    file = shown(dc.path.name)
    header = index = None
    rows = CsvRows(dc.path, dc.delimiter)
    n = 0
    try:
        for row in rows:
            if header is None:
                header = [h.strip() for h in row]
                missing = [col for col in wanted if col not in header]  # the file changed since validation
                if missing:
                    raise _error(spec, dc, f"column {short(missing[0], 42)} is not in {file}", ("path",))
                index = [header.index(col) for col in wanted]
                continue
            if not row:
                continue
            if len(row) != len(header):
                raise _error(spec, dc, f"{file} line {rows.line} has {len(row)} fields; the header has "
                             f"{len(header)}", ("path",))
            n += 1
            if n > max_rows:
                raise _error(spec, dc, f"{file} has more than {max_rows:,} rows of {len(wanted)} used columns, over "
                             f"the data budget of {size_text(data_budget())}", ("path",))
            for j, k in enumerate(index):
                try:
                    values[j].append(float(row[k]))
                except ValueError:
                    raise _error(spec, dc, f"{file} line {rows.line}, column {short(wanted[j], 42)}: "
                                 f"{short(row[k], 42)} is not a number", owner[wanted[j]]) from None
    except PathRefused as e:  # not UTF-8, a field over the csv limit, an endless line
        raise _error(spec, dc, str(e), ("path",)) from None
    if header is None:
        raise _error(spec, dc, f"{file} is empty; a csv source needs a header row of column names", ("path",))
    column = {col: np.frombuffer(values[j], dtype=np.float64) for j, col in enumerate(wanted)}

    def columns(name: str, cols, kind: str):
        cols = [cols] if isinstance(cols, str) else list(cols)
        out = np.stack([column[c] for c in cols], axis=1) if cols else np.empty((n, 0), np.float64)
        if kind == "y" and len(cols) == 1:
            out = out[:, 0]
        if np.all(np.isfinite(out)) and np.all(out == np.round(out)) and kind == "y":
            return out.astype(np.int64)
        return out

    x = {name: columns(name, cols, "x") for name, cols in dc.x.items()}
    y = {name: columns(name, cols, "y") for name, cols in dc.y.items()}
    # A flat row feeds a multi-dimensional input when the sizes agree (64 pixel columns -> 8x8x1).
    for decl in spec.graph.inputs:
        arr = x.get(decl.name)
        if arr is not None and len(decl.shape) > 1 and None not in decl.shape \
                and math.prod(decl.shape) == arr.shape[1]:
            x[decl.name] = arr.reshape((len(arr),) + tuple(decl.shape))
    return x, y


def _image_files(spec, dc) -> Files:
    decl = spec.graph.inputs[0]
    shape = tuple(decl.shape)
    if len(shape) != 3 or shape[0] is None or shape[1] is None or shape[2] not in (1, 3, 4):
        raise _error(spec, dc, f"source: image_dir needs an input of shape [height, width, 1 | 3 | 4]; input "
                     f"{decl.name!r} (line {decl.location.line}) has shape {list(shape)}", ("source",))
    paths, labels = [], []
    roots = spec_roots(spec)
    for label, name in enumerate(dc.classes):
        folder = dc.path / name
        for entry in sorted(os.listdir(folder)):
            f = folder / entry
            if f.suffix.lower() in IMAGE_SUFFIXES:
                if not inside_roots(f, roots):  # checked at validate time; the folder may have changed since
                    raise _error(spec, dc, f"image {shown(entry)} in class folder {shown(name)} leads outside "
                                 "the spec's directory (a symlink)", ("path",))
                paths.append(str(f))
                labels.append(label)
    return Files(paths, np.asarray(labels, dtype=np.int64), decl.name, spec.graph.outputs[0][0], shape)


def decode_image(path, shape):
    """A TensorFlow op: read one image file, decode it with ``shape[2]`` channels, resize to ``shape[:2]``."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=shape[2], expand_animations=False)
    image = tf.image.resize(image, shape[:2])  # float32, 0..255 as keras.utils.image_dataset_from_directory
    image.set_shape(shape)
    return image


def _decode_all(files: Files) -> Arrays:
    import tensorflow as tf

    need = len(files.paths) * math.prod(files.shape) * 4  # float32, resized
    if need > data_budget():
        raise DataError(f"{len(files.paths):,} images of shape {list(files.shape)} take {size_text(need)} as "
                        f"float32, over the data budget of {size_text(data_budget())}")

    images = [decode_image(tf.constant(p), files.shape).numpy() for p in files.paths]
    return Arrays({files.input_name: np.stack(images)}, {files.output_name: files.labels})


def check_images(spec, dc, files: Files) -> None:
    """Decode every image once, so a broken file stops training before it starts, naming the file."""
    import tensorflow as tf

    for p in files.paths:
        try:
            decode_image(tf.constant(p), files.shape)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.ResourceExhaustedError) as e:
            reason = " ".join((e.message or "").split())[:80]
            raise _error(spec, dc, f"image {shown(Path(p).name)} cannot be decoded ({reason})", ("path",)) from None


# -- checks against the model -----------------------------------------------------------------


def _shape_text(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _data_name(dc, kind: str, name: str) -> str:
    mapping = dc.x if kind == "x" else dc.y
    key = mapping.get(name)
    if dc.source == "csv":
        cols = [key] if isinstance(key, str) else list(key)
        what = f"column {cols[0]!r}" if len(cols) == 1 else f"{len(cols)} columns ({cols[0]!r} ...)"
    else:
        what = f"array {key!r}"
    return f"{what} of {dc.path.name}"


def _check_inputs(spec, dc, arrays: Arrays) -> None:
    n = None
    for decl in spec.graph.inputs:
        arr = arrays.x.get(decl.name)
        if arr is None:
            raise _error(spec, dc, f"no data for input {decl.name!r} (line {decl.location.line}); map it in x",
                         ("x", decl.name))
        what = _data_name(dc, "x", decl.name)
        expected = (None,) + tuple(decl.shape)
        if arr.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, arr.shape)):
            hint = None
            if arr.ndim + 1 == len(expected) and expected[-1] == 1 and tuple(arr.shape[1:]) == tuple(decl.shape[:-1]):
                hint = f"the data has no trailing channel axis: store it as {_shape_text(arr.shape + (1,))}, or " \
                       f"declare the input's shape as {list(decl.shape[:-1])}"
            raise _error(spec, dc, f"{what} has shape {_shape_text(arr.shape)}; input {decl.name!r} (line "
                         f"{decl.location.line}) expects {_shape_text(expected)}", ("x", decl.name), hint=hint)
        _check_dtype(spec, dc, arr, decl, what)
        n = _same_length(spec, dc, n, arr, what)
    for name, arr in (arrays.y or {}).items():
        n = _same_length(spec, dc, n, arr, _data_name(dc, "y", name))


def _same_length(spec, dc, n, arr, what: str):
    if arr.ndim == 0:
        raise _error(spec, dc, f"{what} is a scalar; it needs one entry per sample", ("source",))
    if n is not None and len(arr) != n:
        raise _error(spec, dc, f"{what} has {len(arr)} samples; the other arrays have {n}", ("source",))
    return len(arr)


def _check_dtype(spec, dc, arr: np.ndarray, decl, what: str) -> None:
    want = np.dtype(decl.dtype) if decl.dtype not in ("string", "bfloat16") else None
    kind = arr.dtype.kind
    ok = True
    if decl.dtype == "string":
        ok = kind in "US"
    elif want is not None and want.kind == "f":
        ok = kind in "biuf"
    elif want is not None and want.kind in "iu":
        ok = kind in "biu"
    elif want is not None and want.kind == "b":
        ok = kind == "b"
    if not ok:
        raise _error(spec, dc, f"{what} has dtype {arr.dtype}; input {decl.name!r} (line {decl.location.line}) "
                     f"is {decl.dtype}", ("x", decl.name),
                     hint="integer inputs take integer data; cast the data, or declare the input's dtype"
                     if kind == "f" else None)
    if kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0][0])
        raise _error(spec, dc, f"{what} has a NaN or infinite value in sample {bad}", ("x", decl.name))


# The kind of label each loss expects.
_SPARSE = {"SparseCategoricalCrossentropy"}
_BINARY = {"BinaryCrossentropy", "BinaryFocalCrossentropy"}


def _loss_class(obj) -> str:
    from .names import LOSS_STRINGS

    return obj.name if obj.is_class else LOSS_STRINGS.get(obj.name, obj.name)


def check_labels(spec, config, dc, arrays, output_shapes: dict) -> None:
    """Labels against each output's shape and its loss: shape, dtype, class range.

    Args:
        output_shapes: output name -> shape without the batch dimension (from the built model).
    """
    y = arrays.y if isinstance(arrays, Arrays) else {arrays.output_name: arrays.labels}
    for out, shape in output_shapes.items():
        loss = config.losses.get(out)
        if loss is None:
            continue
        arr = y.get(out) if y else None
        where = ("y", out)
        line = _output_line(spec, out)
        if arr is None:
            raise _error(spec, dc, f"no labels for output {out!r}{line}; map it in y", where)
        what = _data_name(dc, "y", out) if dc.source != "image_dir" else f"the class folders of {dc.path.name}"
        kind = _loss_class(loss)
        shape = tuple(shape)
        got = tuple(arr.shape[1:])
        if arr.dtype.kind not in "biuf":
            raise _error(spec, dc, f"{what} has dtype {arr.dtype}; labels must be numbers", where)
        if kind in _SPARSE:
            classes = shape[-1]
            if got not in (shape[:-1], shape[:-1] + (1,)):
                hint = "one-hot labels go with loss: categorical_crossentropy" if got == shape else None
                raise _error(spec, dc, f"{what} has shape {_shape_text(arr.shape)}; with {kind}, output {out!r}"
                             f"{line} of shape {_shape_text((None,) + shape)} takes integer class labels of shape "
                             f"{_shape_text((None,) + shape[:-1])}", where, hint=hint)
            if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
                bad = int(np.argwhere(arr.reshape(len(arr), -1) != np.round(arr.reshape(len(arr), -1)))[0][0])
                raise _error(spec, dc, f"{what} has dtype {arr.dtype} and a non-integer label "
                             f"{arr.reshape(len(arr), -1)[bad][0].item()!r} in sample {bad}; {kind} takes class indices",
                             where)
            ignore = loss.args.get("ignore_class")
            flat = arr.reshape(len(arr), -1)
            bad_mask = ((flat < 0) | (flat >= classes)) & (flat != ignore if ignore is not None else True)
            if classes is not None and bad_mask.any():
                i = int(np.argwhere(bad_mask)[0][0])
                value = flat[i][np.argwhere(bad_mask[i])[0][0]]
                lo, hi = flat.min(), flat.max()
                raise _error(spec, dc, f"label {value.item()!r} in sample {i} of {what} is out of range: output "
                             f"{out!r}{line} has {classes} classes (labels 0..{classes - 1}); the labels span "
                             f"{lo.item()}..{hi.item()}", where)
            continue
        if got != shape and not (got == () and shape == (1,)):
            hint = None
            if got in ((), (1,)) and len(shape) == 1 and shape[0] > 1 and arr.dtype.kind in "iu":
                hint = "integer class labels go with loss: sparse_categorical_crossentropy"
            raise _error(spec, dc, f"{what} has shape {_shape_text(arr.shape)}; output {out!r}{line} has shape "
                         f"{_shape_text((None,) + shape)}", where, hint=hint)
        if kind in _BINARY and (arr.min() < 0 or arr.max() > 1):
            raise _error(spec, dc, f"{what} has labels in {arr.min().item()}..{arr.max().item()}; {kind} takes "
                         "labels in 0..1", where)


def _output_line(spec, out: str) -> str:
    for name, ref in spec.graph.outputs:
        if name == out:
            node = spec.graph.node(ref.node)
            if node is not None:
                return f" (node {node.name!r}, line {node.location.line})"
    return ""


# -- tf.data ------------------------------------------------------------------------------------


def structure(values: dict, names: tuple):
    """A single array for a single input/output, else the mapping (what Keras's fit takes)."""
    return values[names[0]] if len(names) == 1 else {n: values[n] for n in names}


def make_dataset(data, *, input_dtypes: dict, inputs: tuple, outputs: tuple, batch_size: int, shuffle: bool,
                 cache: bool, seed: int | None, drop_remainder: bool = False):
    """The tf.data pipeline: slices -> (decode) -> cache -> shuffle -> batch -> prefetch.

    Args:
        data: :class:`Arrays` or :class:`Files`.
        input_dtypes: input name -> dtype the arrays are cast to (once, up front).
        inputs / outputs: the model's input and output names, in order.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    if isinstance(data, Files):
        ds = tf.data.Dataset.from_tensor_slices((data.paths, data.labels))
        shape = data.shape
        ds = ds.map(lambda p, label: (decode_image(p, shape), label), num_parallel_calls=autotune)
    else:
        x = {k: np.asarray(v, dtype=input_dtypes.get(k)) if input_dtypes.get(k) else v for k, v in data.x.items()}
        y = {k: _label_array(v) for k, v in data.y.items()}
        ds = tf.data.Dataset.from_tensor_slices((structure(x, inputs), structure(y, outputs)))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(autotune)


def _label_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "iub":
        return arr.astype(np.int32) if arr.dtype.itemsize < 4 or arr.dtype.kind == "b" else arr
    return arr.astype(np.float32)
