"""The ``train.data`` section checked without reading the data: sources, files, npz keys, csv columns.

Runs in ``netspec validate`` (no TensorFlow): a missing file, key or column is reported at the YAML
line that names it, before anything heavy starts. Every path goes through
:func:`netspec.source.paths.confine` (the spec's tree, ``--data-root``, netspec's shipped data), every
file through the :mod:`netspec.train.datafiles` gate (npz members costed from their headers, CSV headers
read as bounded UTF-8 lines, image headers checked for size), and messages quote at most
:data:`~netspec.source.paths.MAX_NAMES` bounded names from inside those roots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .datafiles import MAX_IMAGES, csv_header, image_size, npz_cost, npz_keys
from ..source.paths import PathRefused, Roots, confine, inside_roots, names, roots_for, shown
from ..errors import DataError, hint_for, short

# Datasets shipped with netspec: name -> (file under netspec/datasets/, x key, y key, description).
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


@dataclass(frozen=True)
class DataConfig:
    """One data source (``train.data`` or its ``validation``)."""

    source: str
    path: Path | None  # resolved against the spec's directory
    name: str | None
    x: Any  # None, a key/column (list), or a mapping input name -> key/columns
    y: Any
    classes: tuple | None
    delimiter: str
    shuffle: bool | None
    cache: bool
    where: tuple  # the JSON path of this data mapping

    def at(self, *keys: str | int) -> tuple:
        """The JSON path of a key inside this data mapping (``at("x", "image")``)."""
        return self.where + keys


def data_dir() -> Path:
    """The directory of shipped datasets: ``netspec/datasets/``, package data (``data/`` in a checkout links to it)."""
    return Path(__file__).resolve().parent.parent / "datasets"


def spec_roots(spec) -> Roots:
    """Where the spec's data may come from: its directory, its ``data_root`` (``--data-root``), shipped data."""
    return roots_for(spec.path, getattr(spec, "data_root", None), data_dir())


def data_config(spec, data: dict) -> tuple[DataConfig, DataConfig | None, float | None]:
    """The training source, the validation source (or None) and the validation split (or None).

    Raises:
        DataError: a source lacks a field it needs, has one it cannot use, names a path outside
            the data roots, or a missing or unreadable file, npz key, csv column or class folder.
    """
    where = ("train", "data")
    base = spec_roots(spec)
    main = _source(spec, data, where, base, None)
    split, val = data.get("validation_split"), data.get("validation")
    if split is not None and val is not None:
        raise _error(spec, "give validation_split or validation, not both", where + ("validation",), at_key=True)
    validation = _source(spec, val, where + ("validation",), base, main) if val is not None else None
    return main, validation, split


def _error(spec, message: str, path: tuple, *, hint: str | None = None, at_key: bool = False) -> DataError:
    src = spec.document.source
    return DataError(message, path=path, location=src.key(path) if at_key else src.value(path), hint=hint)


def _source(spec, data: dict, where: tuple, base: Roots, parent):
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
            raise _error(spec, f"unknown dataset {short(name)}; netspec ships: {names(DATASETS)}",
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
        classes = _classes(spec, path, data.get("classes"), where, base)
        return DataConfig(source, path, None, {inputs[0]: None}, {outputs[0]: None}, classes, ",",
                          data.get("shuffle"), data.get("cache", True), where)
    delimiter = data.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        raise _error(spec, f"delimiter must be one character (not a quote or a line break). Received: "
                     f"{short(delimiter)}", where + ("delimiter",) if "delimiter" in data else where)
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
                        raise _error(spec, f"column {short(col)} is not in {_file(path)} (its columns: "
                                     f"{names(header)})", _where(where, kind, key, data),
                                     hint=_bounded_hint(col, header))
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


def _file(path: Path) -> str:
    return shown(path.name)


def _bounded_hint(name: Any, candidates: list[str]) -> str | None:
    """did-you-mean over names read from a file: only short names, and only a bounded number of them."""
    hint = hint_for(name, [c for c in candidates[:1000] if len(c) <= 40])
    return hint if hint is None or hint.isprintable() else None


def _existing(spec, text: str, path: tuple, base: Roots, *, directory: bool) -> Path:
    try:
        return confine(text, base, kind="dir" if directory else "file")
    except PathRefused as e:
        raise _error(spec, str(e), path) from None


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
    """Every array the source uses exists, and its .npy header is costed (no data is read)."""
    try:
        keys = npz_keys(path)
    except PathRefused as e:
        raise _error(spec, str(e), where + ("path",)) from None
    for kind, mapping in (("x", xs), ("y", ys)):
        for name, key in mapping.items():
            if key not in keys:
                explicit = kind in data
                msg = f"{_file(path)} has no array {short(key)}"
                if not explicit:
                    msg += f" ({kind} defaults to {key!r}; name the key with {kind}:)"
                raise _error(spec, f"{msg}; its arrays: {names(keys)}", _where(where, kind, name, data),
                             hint=_bounded_hint(key, keys))
    try:
        npz_cost(path, [*xs.values(), *ys.values()])
    except PathRefused as e:
        raise _error(spec, str(e), where + ("path",)) from None


def _csv_header(spec, path: Path, delimiter: str, where: tuple) -> list[str]:
    try:
        header = csv_header(path, delimiter)
    except PathRefused as e:
        raise _error(spec, str(e), where + ("path",)) from None
    if not header:
        raise _error(spec, f"{_file(path)} is empty; a csv source needs a header row of column names",
                     where + ("path",))
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise _error(spec, f"{_file(path)} names column {short(h, 42)} twice", where + ("path",))
        seen.add(h)
    return header


def _classes(spec, path: Path, classes, where: tuple, roots: Roots) -> tuple:
    """The class folders (given, or every visible folder), each inside the roots and holding images
    whose headers are checked; at most :data:`MAX_IMAGES` images in all."""
    at = where + ("path",)
    found = sorted(e.name for e in _entries(spec, path, at) if not e.name.startswith(".") and _is_dir(e))
    if classes is None:
        if not found:
            raise _error(spec, f"{_file(path)} has no class folders (image_dir expects one folder of images per "
                         "class)", at)
        classes = found
    for i, name in enumerate(classes):
        if name not in found:
            raise _error(spec, f"class folder {short(name, 42)} is not in {_file(path)} (it has: {names(found)})",
                         where + ("classes", i), hint=_bounded_hint(name, found))
    count = 0
    for name in classes:
        folder = path / name
        if not inside_roots(folder, roots):
            raise _error(spec, f"class folder {short(name, 42)} leads outside the spec's directory (a symlink); data "
                         "files must stay inside it", at)
        images = 0
        for entry in _entries(spec, folder, at):
            if os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            count += 1
            if count > MAX_IMAGES:
                raise _error(spec, f"{_file(path)} holds more than {MAX_IMAGES:,} images; netspec reads at most "
                             f"{MAX_IMAGES:,} from one image_dir", at)
            image = folder / entry.name
            if not inside_roots(image, roots):
                raise _error(spec, f"image {shown(entry.name)} in class folder {shown(name)} leads outside "
                             "the spec's directory (a symlink); data files must stay inside it", at)
            try:
                image_size(image)  # a header read: format and pixel count, before anything decodes it
            except PathRefused as e:
                raise _error(spec, f"{e} (class folder {shown(name)})", at) from None
            images += 1
        if not images:
            raise _error(spec, f"class folder {short(name, 42)} in {_file(path)} has no images "
                         f"({', '.join(IMAGE_SUFFIXES)})", at)
    return tuple(classes)


def _entries(spec, folder: Path, at: tuple) -> list:
    """A folder's entries (sorted by name), refused past :data:`MAX_IMAGES` before they are all listed."""
    out = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                out.append(entry)
                if len(out) > MAX_IMAGES:
                    raise _error(spec, f"{_file(folder)} holds more than {MAX_IMAGES:,} entries; netspec reads at "
                                 f"most {MAX_IMAGES:,} from one image_dir", at)
    except OSError as e:
        raise _error(spec, f"{_file(folder)} cannot be listed ({e.strerror})", at) from None
    return sorted(out, key=lambda e: e.name)


def _is_dir(entry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
