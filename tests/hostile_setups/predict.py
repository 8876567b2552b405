"""Setups of the ``predict_`` hostile cases: hostile input files for ``netspec predict`` in the case's dir.

Each function takes (tmp, spec, *args), writes the file named by its last argument and returns None.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _zeros_deflated(n: int) -> bytes:
    c = zlib.compressobj(9)
    block = bytes(1 << 22)
    out = [c.compress(block) for _ in range(n // len(block))]
    return b"".join(out) + c.compress(bytes(n % len(block))) + c.flush()


def huge_png(tmp: Path, spec: Path, name: str) -> None:
    """A PNG header declaring 100,000 x 100,000 pixels (10 G) over a few bytes of data."""
    (tmp / name).write_bytes(_png(100_000, 100_000, zlib.compress(b"\x00" * 1024)))


def bomb_png(tmp: Path, spec: Path, name: str) -> None:
    """A real decompression bomb: 6,000 x 6,000 black pixels (36 MB) deflated to ~35 KB."""
    (tmp / name).write_bytes(_png(6000, 6000, _zeros_deflated(6000 * 6001)))


def ztxt_bomb_png(tmp: Path, spec: Path, name: str) -> None:
    """An 8 x 8 PNG whose zTXt text chunk inflates to 256 MB."""
    text = _chunk(b"zTXt", b"Comment\x00\x00" + _zeros_deflated(256 << 20))
    (tmp / name).write_bytes(_png(8, 8, zlib.compress(b"\x00" * 9 * 8), extra=text))


def truncated_png(tmp: Path, spec: Path, name: str) -> None:
    """A valid 8 x 8 PNG cut inside its image data."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 3).save(buf, format="PNG")
    data = buf.getvalue()
    (tmp / name).write_bytes(data[: data.index(b"IDAT") + 12])


def text_file(tmp: Path, spec: Path, name: str) -> None:
    """A text file with an image's name."""
    (tmp / name).write_text("this is not an image\n" * 100, encoding="utf-8")


def npy_shape(tmp: Path, spec: Path, name: str) -> None:
    """A .npy of shape (2, 9, 9, 1): not the model's (8, 8, 1)."""
    np.save(tmp / name, np.zeros((2, 9, 9, 1), np.float32))


def npy_pickle(tmp: Path, spec: Path, name: str) -> None:
    """A .npy of Python objects: loading it would unpickle (and could run code)."""
    arr = np.empty(1, dtype=object)
    arr[0] = {"payload": "open('/tmp/netspec_sentinel_x', 'w')"}
    np.save(tmp / name, arr, allow_pickle=True)


def npy_huge_header(tmp: Path, spec: Path, name: str) -> None:
    """A .npy header declaring 10^12 float32 values over 128 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (1_000_000_000_000, 8, 8, 1)})
    (tmp / name).write_bytes(buf.getvalue() + bytes(128))


def png_16bit(tmp: Path, spec: Path, name: str) -> None:
    """An 8 x 8 16-bit grayscale PNG (values up to 65,535) for a contract whose raw input is uint8."""
    from PIL import Image

    Image.fromarray((np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)).save(tmp / name)


def npy_int64_range(tmp: Path, spec: Path, name: str) -> None:
    """An int64 .npy holding 2**62 for a contract whose raw input is uint8 (float32 would round it silently)."""
    np.save(tmp / name, np.full((8, 8, 1), 2**62, np.int64))
