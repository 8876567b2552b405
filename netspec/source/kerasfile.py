"""An untrusted ``.keras`` archive opened before Keras sees it: zip limits, ``config.json`` read under a cap.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` and ``model.weights.h5`` (or ``.npz``),
plus optional ``assets/``, and, when netspec wrote it, ``netspec.json`` (netspec's metadata: version,
resolved spec and hash, deployment contract; a JSON object of strings, read into :attr:`Archive.netspec`). Every number a zip declares is checked here before anything is read or
extracted: the member count (from the end-of-central-directory record, before ``zipfile`` builds its
table), each member's name (no absolute paths, ``..``, backslashes or control characters), its declared
size (``config.json`` at most :data:`MAX_CONFIG_BYTES`), and its compression ratio (a zip bomb is a
member that declares far more than it stores). The config is then parsed (size-capped, nesting caught)
for :mod:`netspec.source.kerascost` to cost before ``keras.saving.load_model`` builds anything.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO

from ..contract import MAX_METADATA_BYTES as MAX_NETSPEC_METADATA, check_metadata
from ..errors import ModelFileError, short

MAX_MEMBERS = 4096               # a saved model has 3 members, plus its assets
MAX_CONFIG_BYTES = 32 << 20      # config.json: the biggest keras.applications config is ~2 MiB
MAX_METADATA_BYTES = 1 << 20     # metadata.json: a few dozen bytes in practice
MAX_NETSPEC_BYTES = MAX_NETSPEC_METADATA  # netspec.json: the resolved spec and the contract
MAX_RATIO = 200                  # declared / stored bytes above which a big member is a zip bomb
RATIO_FLOOR = 1 << 20            # members declaring less than this are never called bombs
WEIGHTS_MEMBERS = ("model.weights.h5", "model.weights.npz")
# netspec's own metadata (version, resolved spec and hash, deployment contract) as a JSON object of
# strings; Keras ignores members it does not know. Written by netspec.build.saving.stamp_keras.
NETSPEC_MEMBER = "netspec.json"
_JSON_CAPS = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES,
              NETSPEC_MEMBER: MAX_NETSPEC_BYTES}


@dataclass(frozen=True)
class Archive:
    """What the zip declares: its parsed config, and the declared sizes of its members."""

    file: str
    config: dict
    sizes: dict[str, int]
    netspec: dict[str, str] = field(default_factory=dict)  # the netspec.json member (empty: none)

    @property
    def shown(self) -> str:
        """The file name as messages show it."""
        return display(self.file)

    @property
    def weights_bytes(self) -> int | None:
        """The declared size of the weights member (None: there is none)."""
        for name in WEIGHTS_MEMBERS:
            if name in self.sizes:
                return self.sizes[name]
        return None


def display(path: str | os.PathLike) -> str:
    """A file name as messages show it: bounded, control characters escaped (``repr`` minus quotes)."""
    text = os.fsdecode(path)
    shown = short(text, 200)
    return shown[1:-1] if shown[:1] in "'\"" and shown[-1:] == shown[:1] else shown


def _member_count(fp: BinaryIO) -> int | None:
    """Entries the end-of-central-directory record declares (None: no record; zipfile will say so)."""
    try:
        # The stdlib's own EOCD reader (reads at most 64 KiB); private, so typeshed has no stub for it.
        end = zipfile._EndRecData(fp)  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return None
    total = zipfile._ECD_ENTRIES_TOTAL  # type: ignore[attr-defined]  # private, as above
    return None if end is None else int(end[total])


def _bad_name(name: str) -> str | None:
    """Why a member name is refused (None: fine)."""
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if "\\" in name:
        return "a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a control character"
    if ".." in name.split("/"):
        return "a '..' component"
    if len(name) > 512:
        return "over 512 characters"
    return None


def open_archive(path: str | os.PathLike) -> Archive:
    """Check the zip structure of a ``.keras`` file and parse its ``config.json``.

    Args:
        path: the ``.keras`` file (untrusted).

    Returns:
        The parsed config and the members' declared sizes.

    Raises:
        ModelFileError: not a zip, too many members, a member with a bad name, a duplicate, an
            encrypted member, a zip bomb, a missing or oversized ``config.json``, or JSON that does
            not parse (each message names the file and the member).
    """
    shown = display(path)
    try:
        with open(path, "rb") as fp:
            count = _member_count(fp)
            if count is not None and count > MAX_MEMBERS:
                raise ModelFileError(f"{shown}: the archive declares {count:,} members; a .keras file has a "
                                     f"handful (at most {MAX_MEMBERS:,} are read)")
            try:
                zf = zipfile.ZipFile(fp)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
                raise ModelFileError(f"{shown}: not a .keras archive (not a readable zip file: "
                                     f"{short(str(e), 100)})") from None
            with zf:
                sizes = _check_members(zf, shown)
                config = _read_json(zf, "config.json", MAX_CONFIG_BYTES, shown, sizes)
                if "metadata.json" in sizes:
                    _read_json(zf, "metadata.json", MAX_METADATA_BYTES, shown, sizes)
                stamped = _read_json(zf, NETSPEC_MEMBER, MAX_NETSPEC_BYTES, shown, sizes) \
                    if NETSPEC_MEMBER in sizes else {}
    except OSError as e:
        raise ModelFileError(f"{shown}: cannot read the file: {e.strerror or type(e).__name__}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{shown}: config.json is not a JSON object (Keras writes one model object)")
    netspec = check_metadata(stamped, f"{shown}: {NETSPEC_MEMBER}", ModelFileError)
    return Archive(os.fsdecode(path), config, sizes, netspec)


def _check_members(zf: zipfile.ZipFile, shown: str) -> dict[str, int]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{shown}: the archive has {len(infos):,} members, over {MAX_MEMBERS:,}")
    sizes: dict[str, int] = {}
    for info in infos:
        name = info.filename
        why = _bad_name(name)
        if why:
            raise ModelFileError(f"{shown}: archive member {short(name, 80)} has {why}; refusing the file")
        if name in sizes:
            raise ModelFileError(f"{shown}: archive member {short(name, 80)} appears twice (which one would "
                                 "Keras read?); refusing the file")
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{shown}: archive member {short(name, 80)} is encrypted")
        cap = _JSON_CAPS.get(name)
        if cap is not None and info.file_size > cap:
            raise ModelFileError(f"{shown}: {name} declares {info.file_size:,} bytes, over the {cap:,}-byte cap "
                                 "for a model description; refusing the file")
        stored = max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * stored:
            raise ModelFileError(f"{shown}: archive member {short(name, 80)} declares {info.file_size:,} bytes "
                                 f"stored in {info.compress_size:,} (a compression bomb); refusing the file")
        sizes[name] = info.file_size
    return sizes


def _read_json(zf: zipfile.ZipFile, member: str, cap: int, shown: str, sizes: dict[str, int]):
    if member not in sizes:
        raise ModelFileError(f"{shown}: not a .keras archive (it has no {member})")
    if sizes[member] > cap:
        raise ModelFileError(f"{shown}: {member} declares {sizes[member]:,} bytes, over the {cap:,}-byte cap "
                             "for a model description; refusing the file")
    try:
        with zf.open(member) as f:
            raw = f.read(cap + 1)  # the declared size bounds zipfile's read; this bounds ours
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise ModelFileError(f"{shown}: cannot read {member}: {short(str(e), 100)}") from None
    if len(raw) > cap:
        raise ModelFileError(f"{shown}: {member} is over the {cap:,}-byte cap; refusing the file")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ModelFileError(f"{shown}: {member} is nested too deeply to be a model description") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFileError(f"{shown}: {member} is not valid JSON: {short(str(e), 120)}") from None
