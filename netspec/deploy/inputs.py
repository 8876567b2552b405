"""What ``netspec predict`` reads: image files, ``.npy``/``.npz`` arrays and CSV rows, as samples for one input.

Every reader is bounded before it commits memory and names the file in its errors:

- images (PNG, JPEG, BMP, GIF, TIFF, WebP) are decoded with Pillow after their header's width x height is
  checked against a pixel cap set from the model's input (the declared size itself when the contract
  does not resize; :data:`MAX_IMAGE_PIXELS` when it does), with Pillow's decompression-bomb warning
  raised as an error and truncated files refused; then converted to the contract's ``color`` and
  resized to the input's height and width with its ``interpolation``;
- ``.npy`` headers are read (numpy's own parser, bounded) and costed before the data; object arrays are
  refused (nothing is unpickled); ``.npz`` members go through the training data gate
  (:func:`netspec.train.datafiles.read_npz`: zip directory, ratios and headers costed first);
- CSV rows are streamed through :class:`netspec.train.datafiles.CsvRows` (bounded lines), one sample a
  row, every field a finite number; a first row that is not numeric is a header.

A reader returns the raw samples as an array ``(n, *shape)``: images in the raw dtype (uint8),
arrays in their own dtype. Arrays are raw samples too (the values an image file would hold, in the
input's layout): :func:`to_model` then applies the contract through
:meth:`netspec.contract.Preprocess.feed`, the numeric steps, or only the cast to the raw dtype for an
artifact whose graph applies them (its stamped contract marks the preprocess ``included``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ContractError, DataError, format_bytes, short
from ..source.kerasfile import display as shown
from ..source.paths import PathRefused, names, open_regular
from ..train.datafiles import CsvRows, data_budget, read_npz

if TYPE_CHECKING:
    from ..contract import Preprocess

MAX_IMAGE_PIXELS = 40_000_000  # width x height of an image that is resized (a 40 MP photo)
MAX_IMAGE_BYTES = 256 << 20  # an image file on disk
MAX_CSV_ROWS = 1_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode, when the contract names no color
_COLOR_MODES = {"grayscale": "L", "rgb": "RGB", "bgr": "RGB"}


@dataclass(frozen=True)
class Port:
    """One input of an artifact: its name, shape without the batch axis (None: any size) and the dtype it is fed."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def describe(self) -> str:
        return f"input {self.name!r} of shape {shape_text(self.shape)} {self.dtype}"


def shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _name(path: str | Path) -> str:
    return shown(os.fsdecode(path))


def read_samples(path: str, port: Port, pre: Preprocess | None, *, key: str | None = None,
                 budget: int | None = None) -> np.ndarray:
    """The raw samples of one file for ``port``: an array ``(n, *shape)``.

    Args:
        path: an image, ``.npy``, ``.npz`` or ``.csv`` file.
        port: the input it feeds.
        pre: the input's preprocessing (its ``color``, ``resize`` and ``interpolation`` apply to images).
        key: the ``.npz`` array to read (default: the input's name, or the only array).
        budget: bytes the samples may take (default: the training data budget).

    Raises:
        DataError: the file is missing, unreadable, over a cap, or its samples do not fit ``port``;
            the message names the file (and row or key), what the input takes and what was received.
    """
    budget = data_budget() if budget is None else budget
    lower = path.lower()
    try:
        if lower.endswith(".npy"):
            arr = _read_npy(Path(path), budget)
        elif lower.endswith(".npz"):
            arr = _read_npz_key(Path(path), port, key, budget)
        elif lower.endswith(".csv"):
            return _read_csv(Path(path), port, budget)
        elif lower.endswith(IMAGE_SUFFIXES):
            return read_image(Path(path), port, pre)[None]
        else:
            raise DataError(f"{_name(path)}: netspec predict reads images ({', '.join(IMAGE_SUFFIXES)}), .npy, "
                            f".npz and .csv files. Received: a file named {_name(path)}")
    except PathRefused as e:
        raise DataError(str(e)) from None
    return fit_array(arr, port, _name(path) + (f" (array {short(key, 42)})" if key else ""))


def fit_array(arr: np.ndarray, port: Port, what: str) -> np.ndarray:
    """``arr`` as a batch for ``port``: one sample (``shape``) gains a batch axis; dtypes must cast safely.

    Raises:
        DataError: the shape or dtype does not fit (both named).
    """
    want = port.shape
    if arr.ndim == len(want) and _fits(arr.shape, want):
        arr = arr[None]
    elif not (arr.ndim == len(want) + 1 and _fits(arr.shape[1:], want)):
        raise DataError(f"{what}: the array does not fit {port.describe()}: it takes one sample of shape "
                        f"{shape_text(want)} or a batch (n, {shape_text(want)[1:]}. Received: shape "
                        f"{shape_text(arr.shape)} {arr.dtype}")
    if arr.shape[0] == 0:
        raise DataError(f"{what} holds no samples (shape {shape_text(arr.shape)})")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what}: dtype {arr.dtype} is not numbers ({port.describe()}). Received: dtype {arr.dtype}")
    return arr  # values an integer input cannot hold are refused by to_model, after the contract


def _fits(shape: tuple, want: tuple) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want))


# -- images -------------------------------------------------------------------------------------


def pixel_cap(port: Port, pre: Preprocess | None) -> int:
    """The most pixels an image for ``port`` may declare: its own size unless the contract resizes."""
    h, w = (port.shape[0], port.shape[1]) if len(port.shape) == 3 else (None, None)
    if pre is not None and pre.resize or h is None or w is None:
        return MAX_IMAGE_PIXELS
    return h * w


def read_image(path: Path, port: Port, pre: Preprocess | None) -> np.ndarray:
    """One image as ``(height, width, channels)`` uint8 (uint16 for a 16-bit image when the contract's raw dtype
    is ``uint16``), converted and resized as the contract says.

    Raises:
        DataError: not an image, truncated, a decompression bomb, over the pixel cap, or (without
            ``resize``) not the input's size.
    """
    from PIL import Image

    if len(port.shape) != 3 or port.shape[2] is None or port.shape[2] not in _MODES:
        raise DataError(f"{_name(path)}: an image feeds an input of shape (height, width, 1, 3 or 4); "
                        f"{port.describe()} takes arrays (.npy, .npz or .csv)")
    h, w, c = port.shape[0], port.shape[1], int(port.shape[2])
    color = pre.color if pre is not None else None
    mode = _COLOR_MODES[color] if color else _MODES[c]
    if len(mode) != c:  # grayscale into 3 channels, rgb into 1
        raise ContractError(f"the contract converts images to {color} ({len(mode)} channel{'s' * (len(mode) > 1)}) "
                            f"but {port.describe()} takes {c}")
    cap = pixel_cap(port, pre)
    try:
        with open_regular(path) as f, warnings.catch_warnings():
            size = os.fstat(f.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                raise DataError(f"image {_name(path)} is {format_bytes(size)}; netspec predict reads images of "
                                f"at most {format_bytes(MAX_IMAGE_BYTES)}")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                _check_size(path, width, height, cap, port, pre)
                image.load()  # Pillow's LOAD_TRUNCATED_IMAGES is False: a truncated file raises
                raw = pre.dtype if pre is not None else "uint8"
                wide = _wide(path, image.mode, raw, mode, port)
                out = image.convert("I" if wide else mode)
                if pre is not None and pre.resize and w is not None and h is not None and (width, height) != (w, h):
                    out = out.resize((w, h), resample=_filter(pre.interpolation))
                arr = np.asarray(out).astype(np.uint16) if wide else np.asarray(out, dtype=np.uint8)
    except (DataError, ContractError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"image {_name(path)} declares more pixels than Pillow decodes safely (a decompression "
                        f"bomb); {port.describe()} takes {h} x {w}") from None
    except PathRefused:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{_name(path)} is not an image Pillow can read ({', '.join(IMAGE_FORMATS)}). Received: "
                        f"a file of {_file_size(path)}") from None
    except MemoryError:
        raise DataError(f"image {_name(path)} does not fit in memory when decoded") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as e:
        # Pillow: "image file is truncated", "broken data stream", zTXt over MAX_TEXT_CHUNK, bad chunks
        raise DataError(f"image {_name(path)} cannot be decoded: {_reason(e)}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if color == "bgr":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # Pillow's modes of more than 8 bits a channel


def _wide(path: Path, have: str, raw: str, mode: str, port: Port) -> bool:
    """Whether an image of Pillow mode ``have`` is read at 16 bits (True) or 8 (False).

    A 16-bit (or 32-bit integer, or float) image is never squashed to 8 bits: Pillow's conversion to
    ``L`` clips every value over 255 (most of a 16-bit range) without a word, so the model would see
    a white image. Scaling it down instead (a shift by 8) would guess what the file's values mean,
    and a depth map or a medical scan stored in 16 bits does not mean 0..65535 as light. A user whose
    contract says the raw input is ``uint8`` expects 8-bit images, so anything wider is refused with
    what to do; a contract whose raw dtype is ``uint16`` takes 16-bit grayscale images as they are.

    Raises:
        DataError: a wide image for an 8-bit contract, or one Pillow holds as 32-bit or float.
    """
    if have not in _WIDE_MODES:
        return False
    if raw == "uint16" and have.startswith("I;16") and mode == "L":
        return True
    bits = "16-bit" if have.startswith("I;16") else "32-bit integer" if have == "I" else "floating-point"
    takes = f"raw {raw} {'grayscale' if mode == 'L' else mode}" if raw != "uint16" else f"16-bit {mode}"
    raise DataError(f"image {_name(path)} is {bits} (Pillow mode {have}) but the contract of {port.describe()} "
                    f"takes {takes} images; netspec does not squash it to 8 bits (that clips every value over 255)",
                    hint="convert the image to 8 bits yourself with the scaling it needs, or declare "
                         "preprocess: {dtype: uint16} for 16-bit grayscale input")


def _check_size(path: Path, width: int, height: int, cap: int, port: Port, pre: Preprocess | None) -> None:
    h, w = port.shape[0], port.shape[1]
    if width * height > cap or width <= 0 or height <= 0:
        if cap == MAX_IMAGE_PIXELS:
            raise DataError(f"image {_name(path)} declares {width:,} x {height:,} pixels, over the limit of "
                            f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or an image to shrink first)")
    resize = pre is not None and pre.resize
    if not resize and h is not None and w is not None and (height, width) != (h, w):
        raise DataError(f"image {_name(path)} is {height} x {width} (height x width) but {port.describe()} "
                        f"takes {h} x {w}, and the contract does not resize (preprocess: resize: true does)")


def _filter(name: str):
    from PIL import Image

    return {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC}[name]


def _file_size(path: Path) -> str:
    try:
        return format_bytes(path.stat().st_size)
    except OSError:
        return "unknown size"


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 100 else text[:97] + "..."


# -- arrays -------------------------------------------------------------------------------------


def _read_npy(path: Path, budget: int) -> np.ndarray:
    """A ``.npy`` file: header parsed and costed first (numpy's parser, bounded), never unpickled."""
    npy = np.lib.format
    with open_regular(path) as f:
        try:
            version = npy.read_magic(f)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(f, max_header_size=10_000)
        except (ValueError, OSError, EOFError, SyntaxError) as e:
            raise DataError(f"{_name(path)} is not a .npy array ({_reason(e)})") from None
        if any(d < 0 for d in shape):  # numpy's parser takes any int; a negative size is a malformed file
            raise DataError(f"{_name(path)} is not a .npy array (its header declares shape {shape_text(shape)})")
        if dtype.hasobject:
            raise DataError(f"{_name(path)} holds Python objects (dtype {dtype}); netspec never unpickles data: "
                            "store numbers")
        if dtype.kind not in "biuf" or dtype.fields is not None:
            raise DataError(f"{_name(path)} has dtype {str(dtype)[:42]}; netspec predict reads arrays of numbers")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > budget:
            raise DataError(f"{_name(path)} declares shape {shape_text(shape)} of {dtype} ({format_bytes(nbytes)}), "
                            f"over the input budget of {format_bytes(budget)}")
        left = os.fstat(f.fileno()).st_size - f.tell()
        if nbytes > left:
            raise DataError(f"{_name(path)} declares shape {shape_text(shape)} of {dtype} ({format_bytes(nbytes)}) "
                            f"but holds {format_bytes(max(left, 0))}: the file is truncated")
        data = f.read(nbytes)
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return _finite(path, (arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)).copy())


def _finite(path: Path, arr: np.ndarray) -> np.ndarray:
    """``arr``, refused when it holds NaN or infinity (as CSV fields are): no model output means anything then."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise DataError(f"{_name(path)} holds {bad:,} NaN or infinite value{'s' if bad > 1 else ''}; "
                        "netspec predict feeds finite numbers")
    return arr


def _read_npz_key(path: Path, port: Port, key: str | None, budget: int) -> np.ndarray:
    from ..train.datafiles import Unreadable, npz_keys

    try:
        keys = npz_keys(path)
        if key is None:
            key = port.name if port.name in keys else keys[0] if len(keys) == 1 else None
        if key is None or key not in keys:
            raise DataError(f"{_name(path)} has no array {short(key or port.name, 42)} for {port.describe()}; its "
                            f"arrays: {names(keys) or 'none'}",
                            hint=f"store the samples under the input's name ({port.name}), or alone in the file")
        return _finite(path, read_npz(path, [key], budget)[key])
    except Unreadable as e:
        raise DataError(str(e)) from None


def _read_csv(path: Path, port: Port, budget: int) -> np.ndarray:
    """Numeric CSV rows, one sample each (``prod(shape)`` fields); a non-numeric first row is a header."""
    if any(d is None for d in port.shape):
        raise DataError(f"{_name(path)}: CSV rows feed inputs of a fixed shape; {port.describe()} has unknown sizes")
    width = math.prod(port.shape)  # type: ignore[arg-type]
    most = min(MAX_CSV_ROWS, max(1, budget // max(8 * width, 1)))
    rows: list[np.ndarray] = []
    reader = CsvRows(path, ",")
    try:
        for row in reader:
            if not row or all(not field.strip() for field in row):
                continue
            values = _numbers(row)
            if values is None:
                if reader.line == 1:
                    continue  # a header
                bad = next(i for i, v in enumerate(row) if _number(v) is None)
                raise DataError(f"{_name(path)} line {reader.line}, field {bad + 1}: {short(row[bad].strip(), 32)} "
                                f"is not a finite number")
            if len(values) != width:
                raise DataError(f"{_name(path)} line {reader.line} has {len(values)} fields but {port.describe()} "
                                f"takes {width} per row. Received: {len(values)} fields")
            if len(rows) >= most:
                raise DataError(f"{_name(path)} has more than {most:,} rows of {width} values; netspec predict "
                                f"reads at most that many (the input budget is {format_bytes(budget)})")
            rows.append(values)
    except PathRefused as e:
        raise DataError(str(e)) from None
    if not rows:
        raise DataError(f"{_name(path)} has no data rows")
    arr = np.stack(rows).reshape((len(rows), *port.shape))  # type: ignore[arg-type]
    return fit_array(arr, port, _name(path))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _numbers(row: list[str]) -> np.ndarray | None:
    values = [_number(v) for v in row]
    return None if any(v is None for v in values) else np.asarray(values, dtype=np.float64)


# -- the contract: raw samples -> what the artifact takes ----------------------------------------


def to_model(raw: np.ndarray, port: Port, pre: Preprocess | None, what: str = "the samples") -> np.ndarray:
    """Raw samples as the artifact takes them: :meth:`netspec.contract.Preprocess.feed` (the one
    implementation of raw -> model input: the numeric steps, or only the cast to the raw dtype when the
    artifact's graph applies them itself, ``included``), then cast to the dtype ``port`` is fed.

    Args:
        raw: samples from :func:`read_samples` (or the data ``evaluate`` was given).
        port: the input (its ``dtype`` is what the artifact is fed).
        pre: the input's preprocessing (None: the samples are already in the model's domain).
        what: the samples' source, for messages.

    Raises:
        DataError: values that an integer dtype on the way (the raw dtype of an ``included``
            preprocess, or the input's own) cannot hold exactly.
    """
    if pre is not None:
        # Raw samples are values of the contract's raw dtype: a uint8 image's pixels are 0..255, so an
        # int64 array of 2**62 is not one (and float32 would round it silently). Folded in, the cast in
        # feed must not change a value either, so fractions are refused too.
        _check_integral(raw, pre.dtype, port, what, whole=pre.included)
    x = pre.feed(raw) if pre is not None else raw
    _check_integral(x, port.dtype, port, what)
    return np.ascontiguousarray(np.asarray(x).astype(port.dtype, copy=False))


def _check_integral(x: np.ndarray, dtype: str, port: Port, what: str, whole: bool = True) -> None:
    """``x`` converts to ``dtype`` without changing a value (integer dtypes: whole numbers in range; with
    ``whole=False`` only the range is checked, for raw values the numeric steps take as floats)."""
    target = np.dtype(dtype)
    if target.kind not in "iu" or np.can_cast(x.dtype, target, "safe") or x.size == 0:
        return
    info = np.iinfo(target)
    if x.dtype.kind in "iu":  # compared as integers: float64 rounds int64 values near the bounds
        ok = bool(x.min() >= info.min and x.max() <= info.max)
    else:
        ok = bool(np.all((x >= info.min) & (x <= info.max) & ((x == np.round(x)) if whole else True)))
    if not ok:
        low, high = (int(x.min()), int(x.max())) if x.dtype.kind in "iu" else (f"{float(x.min()):g}", f"{float(x.max()):g}")
        kind = f"{dtype} integers" if whole else f"in the range of {dtype}"
        raise DataError(f"{what} for {port.describe()} hold values that are not {kind} "
                        f"({info.min}..{info.max}); it takes raw {dtype} values. Received: {x.dtype} values from "
                        f"{low} to {high}")
