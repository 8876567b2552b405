"""Where a spec's data files may be: every data path a spec names is confined here, before it is opened.

A spec is untrusted; the files it names are not. A path resolves (symlinks followed) to a place
inside one of the *roots*: the spec file's own directory tree, a directory the user names with
``--data-root`` (``data_root=`` in the API), or netspec's shipped ``data/`` directory. Absolute paths
are refused unless they lie inside ``--data-root`` or the shipped data; ``..`` may move within the
roots but never out of them; pseudo-filesystems (``/proc``, ``/sys``, ``/dev``) are refused whatever
the roots; hidden names (``.env``, ``.ssh/``) are refused; and only regular files (or directories,
where a folder is expected) pass: a FIFO is never opened (it would block), nor a device or a socket.

Messages quote the path as the spec wrote it (bounded), never the resolved place outside the roots.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Literal

from ..errors import short

MAX_PATH_CHARS = 1024
MAX_NAMES = 10  # names quoted in one message
MAX_NAME_CHARS = 40  # characters of each quoted name
_PSEUDO = ("/proc", "/sys", "/dev")


class PathRefused(Exception):
    """A data path the roots do not allow; the message quotes the path as written (bounded)."""


@dataclass(frozen=True)
class Roots:
    """The directories data may come from.

    Attributes:
        spec_dir: the spec file's directory (None for a spec given as text).
        data_root: the user's ``--data-root`` (None when not given).
        shipped: netspec's own ``data/`` directory.
    """

    spec_dir: Path | None
    data_root: Path | None
    shipped: Path | None

    def real(self) -> list[Path]:
        """The roots that are set, with symlinks resolved."""
        return [Path(os.path.realpath(p)) for p in (self.spec_dir, self.data_root, self.shipped) if p is not None]

    def base(self) -> Path | None:
        """What a relative path is relative to: the spec's directory, else ``--data-root``."""
        return self.spec_dir if self.spec_dir is not None else self.data_root


def roots_for(spec_path: str | os.PathLike | None, data_root: str | os.PathLike | None,
              shipped: Path | None) -> Roots:
    """The :class:`Roots` of a spec at ``spec_path`` (None: given as text) with the user's ``data_root``."""
    spec_dir = Path(os.path.abspath(spec_path)).parent if spec_path else None
    return Roots(spec_dir, Path(os.path.abspath(data_root)) if data_root is not None else None, shipped)


def confine(text: object, roots: Roots, *, kind: Literal["file", "dir"] = "file") -> Path:
    """The resolved path of a data path written in a spec, refused unless it stays inside ``roots``.

    Args:
        text: the path as the spec wrote it.
        roots: where data may come from.
        kind: ``"file"`` (a regular file) or ``"dir"`` (a directory).

    Returns:
        The resolved absolute path (symlinks followed).

    Raises:
        PathRefused: the path is not a string, absolute outside ``--data-root``, escapes the roots
            (``..`` or a symlink), is under /proc, /sys or /dev, is missing, or has the wrong type.
    """
    written = short(text, MAX_NAME_CHARS + 2)
    if not isinstance(text, str) or not text or len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise PathRefused(f"data path {written} is not a usable path")
    path = Path(text)
    allowed = roots.real()
    if path.is_absolute():
        outside = [r for r in (roots.data_root, roots.shipped) if r is not None]
        if not _inside(Path(os.path.realpath(path)), [Path(os.path.realpath(r)) for r in outside]):
            raise PathRefused(f"data path {written} is absolute; give a path relative to the spec's directory, or "
                              "name a directory the data may come from with --data-root DIR")
        resolved = Path(os.path.realpath(path))
    else:
        base = roots.base()
        if base is None:
            raise PathRefused(f"data path {written} is relative, and a spec given as text has no directory: "
                              "name the data's directory with --data-root DIR (data_root= in Python)")
        resolved = Path(os.path.realpath(base / path))
    if _pseudo(resolved) and _inside(resolved, allowed):
        raise PathRefused(f"data path {written} leads into {_pseudo(resolved)}, a pseudo-filesystem of the running "
                          "system; netspec reads no data from /proc, /sys or /dev")
    if not _inside(resolved, allowed):
        where = "the spec's directory" + (" or --data-root" if roots.data_root is not None else "")
        raise PathRefused(f"data path {written} leads outside {where} (after following '..' and symlinks); "
                          "data files must stay inside it" +
                          ("" if roots.data_root is not None else ", or inside a directory named with --data-root DIR"))
    if _hidden(path) or _hidden_below(resolved, allowed):
        how = "names" if _hidden(path) else "leads (through a symlink) to"
        raise PathRefused(f"data path {written} {how} a hidden file or folder (a name starting with '.'); "
                          "netspec reads no dotfiles (.env, .ssh, .git ...) as data")
    check_type(resolved, written, kind)
    return resolved


def check_type(resolved: Path, written: str, kind: Literal["file", "dir"]) -> os.stat_result:
    """``os.stat`` of ``resolved`` (never opens it), refused unless a regular file / a directory."""
    try:
        st = os.stat(resolved)
    except FileNotFoundError:
        raise PathRefused(f"data {'directory' if kind == 'dir' else 'file'} {written} does not exist") from None
    except OSError as e:
        raise PathRefused(f"data path {written} cannot be read ({e.strerror})") from None
    if kind == "dir" and not stat.S_ISDIR(st.st_mode):
        raise PathRefused(f"data directory {written} is {_what(st.st_mode)}, not a directory")
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"data file {written} is {_what(st.st_mode)}, not a regular file")
    return st


def inside_roots(path: Path, roots: Roots) -> bool:
    """Whether ``path`` (resolved) lies inside the roots, and not in a pseudo-filesystem."""
    resolved = Path(os.path.realpath(path))
    return _pseudo(resolved) is None and _inside(resolved, roots.real())


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading in binary, checked to be a regular file on the open descriptor.

    ``O_NONBLOCK`` keeps a FIFO swapped in after :func:`confine` checked the path from blocking the
    open; the descriptor's own ``fstat`` then refuses it.

    Raises:
        PathRefused: the file cannot be opened or is not a regular file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise PathRefused(f"data file {shown(path.name)} cannot be opened ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise PathRefused(f"data file {shown(path.name)} is {_what(st.st_mode)}, "
                          "not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def names(items: Iterable[object], n: int = MAX_NAMES, width: int = MAX_NAME_CHARS) -> str:
    """At most ``n`` names, each a bounded repr of ``width`` characters, for a message; ``... (K in all)``."""
    items = list(items)
    shown = ", ".join(short(x, width + 2) for x in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def shown(name: str) -> str:
    """A file name for a message: as is when short and printable, else a bounded repr."""
    plain = len(name) <= MAX_NAME_CHARS and name.isprintable() and not any(c in name for c in "'\"\\")
    return name if plain and name.strip() == name and name else short(name, MAX_NAME_CHARS + 2)


def _hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def _hidden_below(resolved: Path, roots: list[Path]) -> bool:
    """Whether the resolved path is hidden below the deepest root holding it (a link to a dotfile)."""
    holders = [r for r in roots if resolved == r or r in resolved.parents]
    return bool(holders) and _hidden(resolved.relative_to(max(holders, key=lambda r: len(r.parts))))


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _pseudo(path: Path) -> str | None:
    text = str(path)
    return next((p for p in _PSEUDO if text == p or text.startswith(p + os.sep)), None)


def _what(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISREG, "a file")):
        if test(mode):
            return name
    return "not a file"
