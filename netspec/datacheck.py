"""The ``train.data`` section checked without reading the data: sources, files, npz keys, csv columns.

Runs in ``netspec validate`` (no TensorFlow, no numpy): a missing file, key or column is reported at
the YAML line that names it, before anything heavy starts.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

from .errors import NetspecError, hint_for, short

# Datasets shipped with netspec: name -> (file under data/, x key, y key, description).
DATASETS = {
    "digits": ("digits.npz", "images", "labels",
               "UCI optical digits, 1,797 8x8x1 uint8 images (0..16) and labels 0..9; CC BY 4.0"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_SOURCE_KEYS = {
    "npz": {"path", "x", "y"},
    "csv": {"path", "x", "y", "delimiter"},
    "image_dir": {"path", "classes"},
    "dataset": {"name"},
}
_COMMON = {"source", "shuffle", "cache", "validation_split", "validation"}


class DataError(NetspecError):
    """The data does not exist or does not fit the model."""

    kind = "data"


def data_dir() -> Path:
    """The directory of shipped datasets: ``data/`` beside the package (source tree) or inside it."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "data", here / "data"):
        if candidate.is_dir():
            return candidate
    return here.parent / "data"


def data_config(spec, data: dict, base: Path):
    """The training source, the validation source (or None) and the validation split (or None).

    Raises:
        DataError: a source lacks a field it needs, has one it cannot use, or names a missing
            file, npz key, csv column or class folder.
    """
    where = ("train", "data")
    main = _source(spec, data, where, base, None)
    split, val = data.get("validation_split"), data.get("validation")
    if split is not None and val is not None:
        raise _error(spec, "give validation_split or validation, not both", where + ("validation",), at_key=True)
    validation = _source(spec, val, where + ("validation",), base, main) if val is not None else None
    return main, validation, split


def _error(spec, message: str, path: tuple, *, hint: str | None = None, at_key: bool = False) -> DataError:
    src = spec.document.source
    return DataError(message, path=path, location=src.key(path) if at_key else src.value(path), hint=hint)


def _source(spec, data: dict, where: tuple, base: Path, parent):
    from .trainconfig import DataConfig

    source = data.get("source", parent.source if parent else None)
    if source is None:
        raise _error(spec, "validation data needs a source", where)
    allowed = _SOURCE_KEYS[source]
    for key in data:
        if key not in allowed | _COMMON:
            raise _error(spec, f"{key!r} does not apply to source: {source} (it takes: "
                         f"{', '.join(sorted(allowed))})", where + (key,), at_key=True)
    inputs = [d.name for d in spec.graph.inputs]
    outputs = [name for name, _ in spec.graph.outputs]
    path = name = None
    x = data.get("x")
    y = data.get("y")
    if source == "dataset":
        name = data.get("name")
        if name not in DATASETS:
            raise _error(spec, f"unknown dataset {short(name)}; netspec ships: {', '.join(DATASETS)}",
                         where + (("name",) if name is not None else ()), hint=hint_for(name, DATASETS))
        file, x, y, _ = DATASETS[name]
        path = data_dir() / file
        if not path.is_file():
            raise _error(spec, f"the shipped dataset file {path} is missing; reinstall netspec", where + ("name",))
    else:
        if "path" not in data:
            raise _error(spec, f"source: {source} needs a path (relative to the spec)", where)
        path = _existing(spec, data["path"], where + ("path",), base, directory=source == "image_dir")
    if source == "image_dir":
        if len(inputs) != 1 or len(outputs) != 1:
            raise _error(spec, "source: image_dir feeds a model with one input and one output; this one has "
                         f"{len(inputs)} inputs and {len(outputs)} outputs", where + ("source",))
        classes = _classes(spec, path, data.get("classes"), where)
        return DataConfig(source, path, None, {inputs[0]: None}, {outputs[0]: None}, classes, ",",
                          data.get("shuffle"), data.get("cache", True), where)
    delimiter = data.get("delimiter", ",")
    xs = _by_name(spec, x, inputs, "x", "input", where, source)
    ys = _by_name(spec, y, outputs, "y", "output", where, source)
    if source in ("npz", "dataset"):
        xs = xs or _default_keys(inputs, "x")
        ys = ys or _default_keys(outputs, "y")
        _check_npz(spec, path, xs, ys, where, data)
    else:
        if not ys:
            raise _error(spec, "source: csv needs y: the label column(s)", where)
        header = _csv_header(spec, path, delimiter, where)
        used = set()
        for kind, mapping in (("y", ys), ("x", xs or {})):
            for key, cols in mapping.items():
                for col in [cols] if isinstance(cols, str) else cols:
                    if col not in header:
                        raise _error(spec, f"column {short(col)} is not in {path.name} (its columns: "
                                     f"{_few(header)})", _where(where, kind, key, data), hint=hint_for(col, header))
                    used.add(col)
        if not xs:
            if len(inputs) != 1:
                raise _error(spec, "with several inputs, x maps each input name to its columns", where)
            xs = {inputs[0]: [c for c in header if c not in used]}
    return DataConfig(source, path, name, xs, ys, None, delimiter, data.get("shuffle"), data.get("cache", True),
                      where)


def _where(where: tuple, kind: str, key: str, data: dict) -> tuple:
    if kind in data:
        return where + (kind, key) if isinstance(data[kind], dict) else where + (kind,)
    return where + ("source",)


def _few(names: list[str], n: int = 12) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _existing(spec, text: str, path: tuple, base: Path, *, directory: bool) -> Path:
    resolved = (base / text).resolve()
    if directory and not resolved.is_dir():
        what = "is a file, not a directory" if resolved.exists() else "does not exist"
        raise _error(spec, f"data directory {short(text)} {what} (looked for {resolved})", path)
    if not directory and not resolved.is_file():
        what = "is a directory, not a file" if resolved.exists() else "does not exist"
        raise _error(spec, f"data file {short(text)} {what} (looked for {resolved})", path)
    return resolved


def _by_name(spec, value: Any, names: list[str], key: str, what: str, where: tuple, source: str) -> dict | None:
    """``x``/``y`` as a mapping model input/output name -> npz key or csv column(s)."""
    if value is None:
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            if name not in names:
                raise _error(spec, f"{short(name)} is not an {what} of the model; its {what}s are: {', '.join(names)}",
                             where + (key, name), hint=hint_for(name, names), at_key=True)
        out = dict(value)
    else:
        if len(names) != 1:
            raise _error(spec, f"the model has {len(names)} {what}s ({', '.join(names)}): give {key} as a mapping "
                         f"{what} name -> {'npz key' if source != 'csv' else 'columns'}", where + (key,))
        out = {names[0]: value}
    if source != "csv":
        for name, item in out.items():
            if not isinstance(item, str):
                p = where + (key, name) if isinstance(value, dict) else where + (key,)
                raise _error(spec, f"an npz array is named by one key. Received: {short(item)}", p)
    return out


def _default_keys(names: list[str], fallback: str) -> dict:
    if len(names) == 1:
        return {names[0]: fallback}
    return {n: n for n in names}


def _check_npz(spec, path: Path, xs: dict, ys: dict, where: tuple, data: dict) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as e:
        raise _error(spec, f"{path.name} is not a readable .npz file ({e})", where + ("path",)) from None
    for kind, mapping in (("x", xs), ("y", ys)):
        for name, key in mapping.items():
            if key not in keys:
                explicit = kind in data
                msg = f"{path.name} has no array {key!r}"
                if not explicit:
                    msg += f" ({kind} defaults to {key!r}; name the key with {kind}:)"
                raise _error(spec, f"{msg}; its arrays: {_few(keys)}", _where(where, kind, name, data),
                             hint=hint_for(key, keys))


def _csv_header(spec, path: Path, delimiter: str, where: tuple) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f, delimiter=delimiter), None)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise _error(spec, f"cannot read {path.name} as UTF-8 CSV ({e})", where + ("path",)) from None
    if not header:
        raise _error(spec, f"{path.name} is empty; a csv source needs a header row of column names", where + ("path",))
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise _error(spec, f"{path.name} names column {dup!r} twice", where + ("path",))
    return header


def _classes(spec, path: Path, classes, where: tuple) -> tuple:
    found = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        if not found:
            raise _error(spec, f"{path} has no class folders (image_dir expects one folder of images per class)",
                         where + ("path",))
        classes = found
    for i, name in enumerate(classes):
        if name not in found:
            raise _error(spec, f"class folder {short(name)} is not in {path} (it has: {_few(found)})",
                         where + ("classes", i), hint=hint_for(name, found))
    for name in classes:
        if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in (path / name).iterdir()):
            raise _error(spec, f"class folder {name!r} in {path} has no images ({', '.join(IMAGE_SUFFIXES)})",
                         where + ("path",))
    return tuple(classes)
