"""The one gate every data file is read through: sizes costed before memory is committed, every
failure an :class:`Unreadable` that names the file (and line), never a traceback.

- ``.npz``: member names checked, each member's declared size and compression ratio costed from the
  zip directory, then its ``.npy`` header read (without the data) and its shape x dtype costed
  against the budget; object arrays are refused (``allow_pickle=False`` always).
- CSV: read as a stream of bounded lines (UTF-8 checked line by line, fields under the csv module's
  limit), never the whole file at once.
- Images: each file's header (format, width x height) read before anything decodes it.

Used by ``netspec.train.datacheck`` (validate time: names, headers) and ``netspec.train.data`` (train time).
"""

from __future__ import annotations

import ast
import csv
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, cast

from ..budget import machine_memory
from ..source.paths import PathRefused, names, open_regular, shown
from ..errors import format_bytes, short

GIB = 1 << 30
MAX_NPZ_MEMBERS = 10_000
MAX_RATIO = 1_000  # deflate tops out near 1032:1; a larger member at this ratio is a bomb, not data
RATIO_FLOOR = 16 << 20  # members smaller than this are not ratio-checked (small constant arrays are fine)
MAX_LINE_CHARS = 16 << 20  # one CSV line
MAX_IMAGE_PIXELS = 40_000_000  # width x height of one image (a 40 MP photo); PIL's own default is 89.5 M
MAX_IMAGES = 1_000_000  # image files in one image_dir source
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class Unreadable(PathRefused):
    """A data file that cannot be read within the rules; the message names the file (and line)."""


def data_budget() -> int:
    """Bytes of data one source may hold in memory: 2 GiB, or a quarter of the machine's memory
    (``netspec.budget.machine_memory``: physical, or ``ulimit -v`` when smaller) if that is less."""
    return min(2 * GIB, max(machine_memory().bytes // 4, 64 << 20))


size_text = format_bytes  # the one byte formatter of netspec's messages


def _name(path: Path) -> str:
    return shown(path.name)


# -- npz ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member of an ``.npz`` file, costed from its header."""

    key: str
    shape: tuple
    dtype: str
    nbytes: int


def npz_keys(path: Path) -> list[str]:
    """The array names of an ``.npz`` file (its ``*.npy`` members), from the zip directory only.

    Raises:
        Unreadable: not a zip file, too many members, or a member name that is not a plain name.
    """
    with _zip(path) as z:
        return [info.filename[:-4] for info in _members(path, z)]


def npz_cost(path: Path, keys: list[str], budget: int | None = None) -> dict[str, Member]:
    """The members ``keys`` costed from the zip directory and their ``.npy`` headers, no data read.

    Raises:
        Unreadable: a member is missing, a compression bomb, over the budget, truncated, or holds
            Python objects; or the file is not a readable zip.
    """
    budget = data_budget() if budget is None else budget
    out: dict[str, Member] = {}
    with _zip(path) as z:
        infos = {info.filename[:-4]: info for info in _members(path, z)}
        total = 0
        for key in dict.fromkeys(keys):
            if key not in infos:
                raise Unreadable(f"{_name(path)} has no array {short(key, 42)}; its arrays: {names(infos)}")
            member = _cost(path, z, infos[key], budget - total)
            total += member.nbytes
            out[key] = member
    return out


def read_npz(path: Path, keys: list[str], budget: int | None = None) -> dict:
    """The arrays ``keys`` of an ``.npz`` file, each costed (:func:`npz_cost`) before it is read.

    Raises:
        Unreadable: as :func:`npz_cost`, or the data is corrupt (bad CRC, truncated stream).
    """
    import numpy as np

    npy = np.lib.format
    costed = npz_cost(path, keys, budget)
    out = {}
    with _zip(path) as z:
        for key, member in costed.items():
            try:
                with z.open(key + ".npy") as f:
                    arr = npy.read_array(f, allow_pickle=False)
            except MemoryError:
                raise Unreadable(f"{_name(path)}: array {short(key, 42)} ({size_text(member.nbytes)}) does not fit "
                                 "in memory") from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as e:
                raise Unreadable(f"{_name(path)}: array {short(key, 42)} is corrupt ({_reason(e)})") from None
            out[key] = arr
    return out


class _zip:
    """``zipfile.ZipFile`` on a file opened through :func:`open_regular`, errors as :class:`Unreadable`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> zipfile.ZipFile:
        self.f = open_regular(self.path)
        try:
            self.z = zipfile.ZipFile(self.f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
                MemoryError) as e:
            self.f.close()
            raise Unreadable(f"{_name(self.path)} is not a readable .npz file ({_reason(e)})") from None
        return self.z

    def __exit__(self, *exc) -> None:
        self.z.close()
        self.f.close()


def _members(path: Path, z: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = z.infolist()
    if len(infos) > MAX_NPZ_MEMBERS:
        raise Unreadable(f"{_name(path)} has {len(infos):,} members; netspec reads at most {MAX_NPZ_MEMBERS:,}")
    out = []
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if (name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts)
                or any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name) > 255):
            raise Unreadable(f"{_name(path)} has a member named {short(name, 42)}; member names must be plain "
                             "names (no '..', no absolute paths, no control characters)")
        if name.endswith(".npy"):
            out.append(info)
    return out


def _cost(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> Member:
    key = info.filename[:-4]
    what = f"{_name(path)}: array {short(key, 42)}"
    if info.compress_type not in _COMPRESSIONS:
        raise Unreadable(f"{what} uses zip compression method {info.compress_type}; netspec reads stored or "
                         "deflated members (as numpy writes them)")
    if info.file_size > budget:
        raise Unreadable(f"{what} unpacks to {size_text(info.file_size)}, over the data budget of "
                         f"{size_text(max(budget, 0))}")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise Unreadable(f"{what} unpacks {size_text(info.compress_size)} into {size_text(info.file_size)} (ratio "
                         f"over {MAX_RATIO}:1): a compression bomb, not data")
    try:
        with z.open(info) as f:
            shape, descr, offset = _npy_header(f)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as e:
        raise Unreadable(f"{what} cannot be read ({_reason(e)})") from None
    except _BadHeader as e:
        raise Unreadable(f"{what} has no valid .npy header ({e})") from None
    kind, itemsize = _itemsize(descr)
    if kind == "O":
        raise Unreadable(f"{what} holds Python objects (dtype {short(descr, 42)}); netspec never unpickles data: "
                         "store numbers or strings")
    if kind is None:
        raise Unreadable(f"{what} has dtype {short(descr, 42)}; netspec reads plain arrays of numbers or strings")
    count = math.prod(shape)
    nbytes = count * itemsize
    if max(nbytes, count) > budget:
        raise Unreadable(f"{what} declares shape {_shape(shape)} of {descr} ({size_text(max(nbytes, count))}), over "
                         f"the data budget of {size_text(max(budget, 0))}")
    if nbytes > info.file_size - offset:
        raise Unreadable(f"{what} declares shape {_shape(shape)} of {descr} ({size_text(nbytes)}) but holds "
                         f"{size_text(max(info.file_size - offset, 0))}: the file is truncated or corrupt")
    return Member(key, tuple(shape), descr, nbytes)


class _BadHeader(Exception):
    pass


_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 10_000  # numpy's own max_header_size
_DESCR = re.compile(r"[<>|=]?([biufcSUVMmO])(\d*)(\[[a-zA-Z0-9]+\])?")


def _npy_header(f) -> tuple[tuple, str, int]:
    """(shape, dtype descr, data offset) of a ``.npy`` stream, parsed without numpy (``netspec validate``
    stays numpy-free) and without trusting it: the header is a bounded literal, read by ``ast.literal_eval``."""
    start = f.read(8)
    if len(start) != 8 or start[:6] != _MAGIC or start[6] not in (1, 2, 3):
        raise _BadHeader("not a .npy array")
    size_bytes = 2 if start[6] == 1 else 4
    raw = f.read(size_bytes)
    if len(raw) != size_bytes:
        raise _BadHeader("it ends inside the header")
    length = int.from_bytes(raw, "little")
    if length > _MAX_HEADER:
        raise _BadHeader(f"a header of {length:,} bytes; numpy reads at most {_MAX_HEADER:,}")
    text = f.read(length)
    if len(text) != length:
        raise _BadHeader("it ends inside the header")
    try:
        header = ast.literal_eval(text.decode("latin1" if start[6] < 3 else "utf-8"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise _BadHeader("the header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise _BadHeader("the header lacks descr, fortran_order or shape")
    shape, descr = header["shape"], header["descr"]
    if not isinstance(shape, tuple) or len(shape) > 64 or not all(
            type(d) is int and 0 <= d < 1 << 63 for d in shape):
        raise _BadHeader("its shape is not a tuple of sizes")
    if not isinstance(descr, str):  # a structured dtype (a list of fields)
        return shape, "structured", 8 + size_bytes + length
    return shape, descr, 8 + size_bytes + length


def _itemsize(descr: str) -> tuple[str | None, int]:
    """(kind, bytes per element) of a simple dtype descr such as ``<f8``, ``|u1``, ``<U5``; (None, 0) otherwise."""
    m = _DESCR.fullmatch(descr)
    if m is None:
        return None, 0
    kind, digits = m.group(1), m.group(2)
    if kind == "O":
        return "O", 8
    if not digits or len(digits) > 6:
        return None, 0
    n = int(digits)
    return kind, n * 4 if kind == "U" else n


def _shape(shape) -> str:
    text = "(" + ", ".join(str(d) for d in shape[:8]) + (", ..." if len(shape) > 8 else "") + ")"
    return text if len(text) <= 80 else text[:77] + "..."


def _reason(e: BaseException) -> str:
    """An exception's message, bounded and on one line (it may quote bytes of the file)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 80 else text[:77] + "..."


# -- csv ----------------------------------------------------------------------------------------


class CsvRows:
    """The rows of a UTF-8 CSV file, streamed: ``for row in CsvRows(path, ","):``; ``.line`` is the
    file line the last row ended on. Raises :class:`Unreadable` naming the file and line."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self.path = path
        self.delimiter = delimiter
        self.line = 0

    def _lines(self, raw: BinaryIO) -> Iterator[str]:
        """Lines decoded one at a time, so a decoding error names its own line and byte."""
        offset = 0
        while True:
            try:
                line = raw.readline(MAX_LINE_CHARS)
            except (OSError, MemoryError) as e:
                raise Unreadable(f"{_name(self.path)} line {self.line + 1} cannot be read ({_reason(e)})") from None
            if not line:
                return
            self.line += 1
            if len(line) >= MAX_LINE_CHARS and not line.endswith(b"\n"):
                raise Unreadable(f"{_name(self.path)} line {self.line} is longer than {MAX_LINE_CHARS:,} characters")
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Unreadable(f"{_name(self.path)} line {self.line} is not UTF-8 text (byte 0x{line[e.start]:02x} "
                                 f"at offset {offset + e.start:,})") from None
            offset += len(line)

    def __iter__(self) -> Iterator[list[str]]:
        with open_regular(self.path) as raw:
            reader = csv.reader(self._lines(raw), delimiter=self.delimiter)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    raise Unreadable(f"{_name(self.path)} line {self.line}: {_reason(e)}") from None
                yield row


def csv_header(path: Path, delimiter: str) -> list[str]:
    """The first row of a CSV file (stripped), read as :class:`CsvRows` reads it; [] for an empty file."""
    for row in CsvRows(path, delimiter):
        return [h.strip() for h in row]
    return []


# -- images -------------------------------------------------------------------------------------


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image file's header, checked against :data:`MAX_IMAGE_PIXELS`.

    Raises:
        Unreadable: not a PNG, JPEG, GIF or BMP image, or more pixels than the limit.
    """
    import warnings

    from PIL import Image

    formats = ("PNG", "JPEG", "GIF", "BMP")
    try:
        with open_regular(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f, formats=formats) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        # cast: Pillow raises this only while its MAX_IMAGE_PIXELS is set (None turns the check off)
        limit = cast(int, Image.MAX_IMAGE_PIXELS)
        raise Unreadable(f"image {_name(path)} declares over {2 * limit:,} pixels (a decompression "
                         "bomb, or an image to shrink first)") from None
    except PathRefused:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.UnidentifiedImageError):
        raise Unreadable(f"image {_name(path)} cannot be decoded (not a PNG, JPEG, GIF or BMP image)") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise Unreadable(f"image {_name(path)} declares {width:,} x {height:,} pixels, over the limit of "
                         f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or an image to shrink first)")
    return width, height
