"""Read the netspec metadata an artifact carries, whatever its format, as untrusted data.

Where each format keeps the ``{str: str}`` mapping (written at export, build and train time):

=============  ==================================================================================
``.onnx``      the model's ``metadata_props`` (keys ``netspec.*``; others' keys are ignored)
``.keras``     the archive member ``netspec.json`` (a JSON object), read by the ``.keras`` gate
``.tflite``    the flatbuffer's ``metadata`` entry ``netspec.json`` (:mod:`netspec.export.litertmeta`)
``.xml``       OpenVINO IR ``rt_info``, read by ``netspec.export.openvino.read_metadata``
=============  ==================================================================================

Every reader bounds what it reads (file size before parsing, entry counts and sizes after) and turns
every failure into an :class:`~netspec.errors.ArtifactError` that names the file: artifacts come
from strangers.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable

from ..budget import format_bytes, headroom
from ..contract import MAX_METADATA_ENTRIES, Contract, check_metadata
from ..errors import ArtifactError, ModelFileError, NetspecError
from ..source.kerasfile import display

PREFIX = "netspec."  # netspec's keys in a metadata mapping
MAX_ONNX_BYTES = 2 << 30  # protobuf cannot parse more; larger models keep weights as external data
SUFFIXES = (".onnx", ".keras", ".tflite", ".xml")


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The netspec metadata ``path`` carries ({} when it carries none).

    Raises:
        ArtifactError: a missing file, an unknown suffix, a file that is not of its format, truncated
            or malformed, metadata over the caps (each names the file).
    """
    shown = display(path)
    reader = _reader(path, shown)
    return reader(path, shown)


def read_contract(path: str | os.PathLike) -> Contract | None:
    """The deployment contract stamped in ``path``; None when it carries none.

    Raises:
        ArtifactError: as :func:`read_metadata`.
        ContractError: the stamped contract is malformed (named after the file).
    """
    return Contract.from_metadata(read_metadata(path), display(path))


def kind(path: str | os.PathLike) -> str:
    """The artifact's format by its suffix: ``onnx``, ``keras``, ``litert`` or ``openvino``."""
    name = os.fsdecode(path)
    for suffix, what in zip(SUFFIXES, ("onnx", "keras", "litert", "openvino")):
        if name.endswith(suffix):
            return what
    raise ArtifactError(f"{display(path)}: not an artifact netspec reads (expected a file ending in "
                        f"{', '.join(SUFFIXES)})")


def _reader(path, shown: str) -> Callable[[Any, str], dict[str, str]]:
    what = kind(path)
    if not os.path.isfile(path):
        raise ArtifactError(f"no such file: {shown}")
    return {"onnx": _onnx, "keras": _keras, "litert": _litert, "openvino": _openvino}[what]


def load_onnx(path: str | os.PathLike, shown: str):
    """The ``ModelProto`` of an ``.onnx`` file, parsed after checking its size (external data is not loaded)."""
    import onnx

    size = os.path.getsize(path)
    room = headroom()
    cap = min(MAX_ONNX_BYTES, room.bytes // 4)  # protobuf parsing holds the bytes and the message at once
    if size > cap:
        raise ArtifactError(f"{shown}: {format_bytes(size)} is over the {format_bytes(cap)} an ONNX model may "
                            f"take to read here ({'the protobuf limit' if cap == MAX_ONNX_BYTES else room.source})")
    try:
        return onnx.load(os.fspath(path), load_external_data=False)
    except (MemoryError, RecursionError):
        raise ArtifactError(f"{shown}: the ONNX model could not be parsed within memory and stack limits") from None
    except Exception as e:  # protobuf's DecodeError and friends: a truncated or non-ONNX file
        raise ArtifactError(f"{shown}: not a readable ONNX model (truncated or malformed: "
                            f"{type(e).__name__})") from None


def onnx_metadata(proto, shown: str) -> dict[str, str]:
    """The ``netspec.*`` entries of a parsed model's ``metadata_props``, checked."""
    props = proto.metadata_props
    if len(props) > 4 * MAX_METADATA_ENTRIES:
        raise ArtifactError(f"{shown}: metadata_props has {len(props):,} entries, over {4 * MAX_METADATA_ENTRIES:,}")
    ours: dict[str, str] = {}
    for p in props:
        if p.key.startswith(PREFIX):
            if p.key in ours:
                raise ArtifactError(f"{shown}: metadata_props holds {p.key} twice (which one is meant?)")
            ours[p.key] = p.value
    return check_metadata(ours, f"{shown}: metadata_props")


def _onnx(path, shown: str) -> dict[str, str]:
    return onnx_metadata(load_onnx(path, shown), shown)


def _keras(path, shown: str) -> dict[str, str]:
    from ..source.kerasfile import open_archive

    try:
        return open_archive(path).netspec
    except ModelFileError as e:  # the .keras gate's own message, as an artifact error
        raise ArtifactError(e.message, hint=e.hint) from None


def _litert(path, shown: str) -> dict[str, str]:
    from ..export.litertmeta import read

    return read(path, shown)


def _openvino(path, shown: str) -> dict[str, str]:
    """OpenVINO IR: ``netspec.export.openvino.read_metadata`` (the OpenVINO target's module) reads ``rt_info``."""
    if importlib.util.find_spec("netspec.export.openvino") is None:
        raise ArtifactError(f"{shown}: this netspec has no OpenVINO support to read it with")
    from ..export import openvino  # type: ignore[attr-defined,unused-ignore]

    try:
        data = openvino.read_metadata(path)
    except NetspecError:
        raise
    except Exception as e:  # OpenVINO's own parse errors have many types
        raise ArtifactError(f"{shown}: not a readable OpenVINO IR model ({type(e).__name__})") from None
    return check_metadata({k: v for k, v in dict(data).items() if str(k).startswith(PREFIX)}, f"{shown}: rt_info")
