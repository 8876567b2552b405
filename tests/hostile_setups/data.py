"""Setups of the ``path_`` and ``data_`` hostile cases: data files, FIFOs, symlinks and bombs in the case's
temp dir. Each function takes (tmp, spec, *args) and returns None or a new spec path."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

HEADER = "a,b,label\n"


# -- npz ------------------------------------------------------------------------------------------


def _npy_header(shape: tuple, descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _raw_zip(path: Path, name: str, data: bytes, *, file_size: int, crc: int, method: int = 8) -> None:
    """A one-member zip written by hand, so the member's declared size is whatever the case needs."""
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), file_size, len(fname), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), file_size,
                          len(fname), 0, 0, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(local + fname + data)
        cd_offset = f.tell()
        f.write(central + fname)
        cd_size = f.tell() - cd_offset
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_size, cd_offset, 0))


def _with_labels(path: Path, n: int = 4) -> None:
    """Append a legal ``labels`` member to a hand-written zip (so only ``images`` is hostile)."""
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("labels.npy", _npy(np.zeros(n, np.int64)))


def _zero_deflate(header: bytes, zeros: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``header`` + ``zeros`` zero bytes, built from one repeated block (fast)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = 1 << 24
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(zeros, chunk)
    again = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    assert again == block  # a full flush resets the window: every block compresses alike
    tail = c.compress(bytes(rest)) + c.flush()
    crc = zlib.crc32(header)
    zero = bytes(chunk)
    for _ in range(n):  # the real crc, so the member is a valid bomb (netspec must refuse it unread)
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return head + block * n + tail, crc & 0xFFFFFFFF


def npz_bomb(tmp: Path, spec: Path, gib: str = "1") -> None:
    """d.npz whose ``images`` member is ``gib`` GiB of zeros deflated to ~1 MB per GiB."""
    size = int(float(gib) * (1 << 30))
    header = _npy_header((size // 8,))
    data, crc = _zero_deflate(header, size)
    _raw_zip(tmp / "d.npz", "images.npy", data, file_size=len(header) + size, crc=crc)
    _with_labels(tmp / "d.npz")


def npz_declared_size(tmp: Path, spec: Path, gib: str = "3") -> None:
    """d.npz whose zip directory says ``images`` unpacks to ``gib`` GiB (the stream holds a few bytes)."""
    header = _npy_header((10,))
    data = zlib.compress(header + bytes(80))[2:-4]
    _raw_zip(tmp / "d.npz", "images.npy", data, file_size=int(float(gib) * (1 << 30)), crc=0)
    _with_labels(tmp / "d.npz")


def npz_header_shape(tmp: Path, spec: Path) -> None:
    """d.npz whose ``images`` header declares shape (10**6, 10**6) float64 (8 TB) over 16 bytes of data."""
    raw = _npy_header((10**6, 10**6)) + bytes(16)
    with zipfile.ZipFile(tmp / "d.npz", "w") as z:
        z.writestr("images.npy", raw)
        z.writestr("labels.npy", _npy(np.zeros(4, np.int64)))


def npz_short_member(tmp: Path, spec: Path) -> None:
    """d.npz whose ``images`` header declares (100, 8, 8, 1) float64 but holds 64 bytes of data."""
    with zipfile.ZipFile(tmp / "d.npz", "w") as z:
        z.writestr("images.npy", _npy_header((100, 8, 8, 1)) + bytes(64))
        z.writestr("labels.npy", _npy(np.zeros(100, np.int64)))


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npz_object(tmp: Path, spec: Path) -> None:
    """d.npz whose ``images`` is an object array (its data is a pickle)."""
    images = np.empty(4, dtype=object)
    images[:] = [{"a": 1}, [2], "x", None]
    with zipfile.ZipFile(tmp / "d.npz", "w") as z:
        z.writestr("images.npy", _npy(images))
        z.writestr("labels.npy", _npy(np.zeros(4, np.int64)))


def npz_ok(tmp: Path, spec: Path, n: str = "64", name: str = "d.npz") -> None:
    """A small legal npz: ``images`` (n, 8, 8, 1) float32 and ``labels`` 0..9."""
    rng = np.random.default_rng(0)
    n = int(n)
    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp / name, images=rng.random((n, 8, 8, 1), dtype=np.float32), labels=np.arange(n) % 10)


def npz_truncated(tmp: Path, spec: Path) -> None:
    """d.npz cut in half (its zip directory is gone)."""
    npz_ok(tmp, spec, "200")
    data = (tmp / "d.npz").read_bytes()
    (tmp / "d.npz").write_bytes(data[: len(data) // 2])


def npz_bad_crc(tmp: Path, spec: Path) -> None:
    """d.npz with a flipped byte inside the (stored) ``images`` data: headers fine, CRC wrong."""
    npz_ok(tmp, spec, "200")
    data = bytearray((tmp / "d.npz").read_bytes())
    data[2000] ^= 0xFF
    (tmp / "d.npz").write_bytes(bytes(data))


def npz_member_name(tmp: Path, spec: Path, name: str = "../../evil.npy") -> None:
    """d.npz with a member whose name is a path (``../../evil.npy``) besides legal members."""
    with zipfile.ZipFile(tmp / "d.npz", "w") as z:
        z.writestr("images.npy", _npy(np.zeros((4, 8, 8, 1), np.float32)))
        z.writestr("labels.npy", _npy(np.zeros(4, np.int64)))
        z.writestr(name, _npy(np.zeros(4)))


def npz_bzip2(tmp: Path, spec: Path) -> None:
    """d.npz whose members are bzip2-compressed (numpy never writes that; bzip2 bombs reach 1e6:1)."""
    with zipfile.ZipFile(tmp / "d.npz", "w", compression=zipfile.ZIP_BZIP2) as z:
        z.writestr("images.npy", _npy(np.zeros((4, 8, 8, 1), np.float32)))
        z.writestr("labels.npy", _npy(np.zeros(4, np.int64)))


def garbage(tmp: Path, spec: Path, name: str = "d.npz", size: str = "4096") -> None:
    """A file of pseudo-random bytes."""
    (tmp / name).write_bytes(np.random.default_rng(1).integers(0, 256, int(size), dtype=np.uint8).tobytes())


# -- csv ------------------------------------------------------------------------------------------


def _rows(n: int) -> str:
    return "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(n))


def csv_bad_utf8(tmp: Path, spec: Path, at: str = "102400") -> None:
    """d.csv of valid rows, then an invalid UTF-8 byte near byte ``at`` (after the first read chunk)."""
    text = HEADER + _rows(int(at) // 6)
    data = text.encode()[: int(at)]
    data = data[: data.rfind(b"\n") + 1] + b"1,\xff\xfe,0\n" + _rows(100).encode()
    (tmp / "d.csv").write_bytes(data)


def csv_big_field(tmp: Path, spec: Path, where: str = "body", size: str = "204800") -> None:
    """d.csv with a field of ``size`` characters in the header or on line 3."""
    big = "9" * int(size)
    if where == "header":
        text = f"a,b{big},label\n" + _rows(10)
    else:
        text = HEADER + _rows(1) + f"1,{big},0\n" + _rows(10)
    (tmp / "d.csv").write_text(text, encoding="utf-8")


def csv_long_line(tmp: Path, spec: Path, mib: str = "20", line: str = "2") -> None:
    """d.csv whose line ``line`` (1: the header) is ``mib`` MiB of text with no line break."""
    with open(tmp / "d.csv", "w", encoding="utf-8") as f:
        if line != "1":
            f.write(HEADER)
        f.write('"' + "x" * (int(mib) << 20))


def csv_text(tmp: Path, spec: Path, text: str, name: str = "d.csv") -> None:
    """``name`` (d.csv) with ``text`` (``\\n`` escapes are line breaks)."""
    (tmp / name).write_text(text.replace("\\n", "\n"), encoding="utf-8")


def hidden_link(tmp: Path, spec: Path) -> None:
    """.secrets/token (a dotfolder inside the tree) and d.csv -> .secrets/token."""
    (tmp / ".secrets").mkdir()
    (tmp / ".secrets" / "token").write_text("label,TOKEN=hunter2\n", encoding="utf-8")
    os.symlink(".secrets/token", tmp / "d.csv")


def csv_wide_header(tmp: Path, spec: Path, columns: str = "5000", width: str = "120") -> None:
    """d.csv whose header has ``columns`` names of ``width`` characters (none of them 'label')."""
    names = [f"c{i}_" + "w" * int(width) for i in range(int(columns))]
    (tmp / "d.csv").write_text(",".join(names) + "\n" + ",".join("0" * len(names)) + "\n", encoding="utf-8")


def csv_ok(tmp: Path, spec: Path, rows: str = "40") -> None:
    (tmp / "d.csv").write_text(HEADER + _rows(int(rows)), encoding="utf-8")


# -- special files and links --------------------------------------------------------------------------


def fifo(tmp: Path, spec: Path, name: str = "d.csv") -> None:
    """A FIFO named ``name`` (opening it for reading would block forever)."""
    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(tmp / name)


def symlink(tmp: Path, spec: Path, name: str, target: str) -> None:
    """A symlink ``name`` -> ``target`` (``{tmp}`` in target is the case's temp dir)."""
    link = tmp / name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target.replace("{tmp}", str(tmp)), link)


def linked_npz(tmp: Path, spec: Path) -> None:
    """data/real.npz and a symlink d.npz -> data/real.npz (inside the tree: legal)."""
    npz_ok(tmp, spec, "32", "data/real.npz")
    os.symlink("data/real.npz", tmp / "d.npz")


def outside_root(tmp: Path, spec: Path) -> Path:
    """The spec moved to {tmp}/spec/, its data in {tmp}/outside/d.npz (reached as ../outside/d.npz)."""
    (tmp / "spec").mkdir()
    moved = tmp / "spec" / spec.name
    shutil.move(str(spec), moved)
    npz_ok(tmp, moved, "32", "outside/d.npz")
    return moved


# -- images ---------------------------------------------------------------------------------------


def _png_bytes(width: int, height: int, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = idat or zlib.compress(bytes(1 + 3 * min(width, 64)) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def image_tree(tmp: Path, spec: Path, n: str = "3") -> None:
    """imgs/cat and imgs/dog with ``n`` small real PNGs each (and a notes.txt, which is skipped)."""
    from PIL import Image

    for label, name in enumerate(("cat", "dog")):
        folder = tmp / "imgs" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(int(n)):
            Image.new("RGB", (10 + i, 12), (40 * label + i, 0, 0)).save(folder / f"{i}.png")
    (tmp / "imgs" / "dog" / "notes.txt").write_text("not an image", encoding="utf-8")


def image_fake(tmp: Path, spec: Path, name: str = "cat/9.png") -> None:
    """The image tree plus a text file named like a PNG."""
    image_tree(tmp, spec)
    (tmp / "imgs" / name).write_text("MY_SECRET=hunter2\nnot an image\n", encoding="utf-8")


def image_bomb(tmp: Path, spec: Path, width: str = "50000", height: str = "50000") -> None:
    """The image tree plus a tiny PNG whose header declares ``width`` x ``height`` pixels."""
    image_tree(tmp, spec)
    (tmp / "imgs" / "cat" / "bomb.png").write_bytes(_png_bytes(int(width), int(height)))


def image_special(tmp: Path, spec: Path, kind: str = "fifo") -> None:
    """The image tree plus cat/x.png that is a FIFO, or a symlink to /etc/passwd, or a class folder link."""
    image_tree(tmp, spec)
    target = tmp / "imgs" / "cat" / "x.png"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "link":
        os.symlink("/etc/passwd", target)
    elif kind == "class_link":
        os.symlink("/etc", tmp / "imgs" / "etc")
    else:
        raise ValueError(kind)
