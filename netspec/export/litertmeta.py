"""netspec's metadata inside a LiteRT (``.tflite``) file: written after conversion, read back untrusted.

A LiteRT model is a flatbuffer whose ``Model`` table has a ``metadata`` vector of ``(name, buffer)``
entries; the converter itself stores ``min_runtime_version`` and ``CONVERSION_METADATA`` there, and
runtimes ignore names they do not know. netspec adds one entry, ``netspec.json``, whose buffer holds
:func:`netspec.contract.metadata_json` (the same ``{str: str}`` mapping ONNX keeps in ``metadata_props``).

Both directions use the LiteRT package's own generated schema (``ai_edge_litert.schema_py_generated``,
and its ``tools.flatbuffer_utils`` to rewrite the model); no flatbuffer code of ours. Writing unpacks the
model into objects and packs it again (measured: 4 ms for a 5 KB model, 0.14 s for MobileNetV2's
13 MiB). Reading never unpacks the model (0.5 ms for MobileNetV2): it walks the ``metadata`` vector of
the file mapped read-only, with every count and length checked, since the file may come from anyone.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Any, Mapping

from ..contract import MAX_METADATA_BYTES, metadata_json, read_metadata_json
from ..errors import ArtifactError

ENTRY = "netspec.json"  # the metadata entry's name
MAX_ENTRIES = 1024  # metadata entries scanned (the converter writes two)
MAX_NAME = 256  # bytes of an entry's name
IDENTIFIER = b"TFL3"  # the flatbuffer file identifier of the LiteRT schema
# flatbuffers raises these on offsets and lengths that point outside the buffer.
_FLATBUFFER_ERRORS = (IndexError, ValueError, TypeError, OverflowError, AttributeError, UnicodeDecodeError,
                      struct.error)


def stamp(data: bytes, metadata: Mapping[str, str]) -> bytes:
    """``data`` (a LiteRT model netspec just converted) with ``metadata`` as its ``netspec.json`` entry."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    model.metadata = [m for m in (model.metadata or []) if m.name not in (ENTRY, ENTRY.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_json(metadata), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = ENTRY
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read(path: str | os.PathLike, shown: str) -> dict[str, str]:
    """The ``netspec.json`` metadata of a ``.tflite`` file ({} when it has none).

    Raises:
        ArtifactError: not a LiteRT flatbuffer, a truncated or malformed one, an entry over the caps.
    """
    with open(path, "rb") as f, _mapped(f, shown) as buf:
        model = root(buf, shown)
        raw = _entry(model, buf, shown)
    return {} if raw is None else read_metadata_json(raw, f"{shown}: metadata {ENTRY}")


def io_shapes(path: str | os.PathLike, shown: str) -> dict[str, dict]:
    """``{"inputs": {name: {"shape", "dtype"}}, "outputs": {...}}`` of the first subgraph, read from the file."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with open(path, "rb") as f, _mapped(f, shown) as buf:
        model = root(buf, shown)
        try:
            # The first signature (serving_default) names the tensors as the model's inputs and outputs;
            # without one, the first subgraph's tensors under their own names.
            sig = model.SignatureDefs(0) if model.SignatureDefsLength() else None
            index = sig.SubgraphIndex() if sig is not None else 0
            if not 0 <= index < model.SubgraphsLength():
                raise ArtifactError(f"{shown}: the LiteRT model has no subgraph {index}")
            graph = model.Subgraphs(index)
            count = graph.TensorsLength()

            def signature(length: int, entry):
                return length, lambda j: (entry(j).Name(), entry(j).TensorIndex())

            def plain(length: int, entry):
                return length, lambda j: (None, entry(j))

            def tensors(length: int, at) -> dict[str, dict]:
                # Scalar accessors only: numpy views would pin the mapping (it could not be closed).
                out = {}
                for j in range(min(length, MAX_ENTRIES)):
                    name, i = at(j)
                    if not 0 <= i < count:
                        raise ArtifactError(f"{shown}: the LiteRT model names tensor {i} of {count}")
                    t = graph.Tensors(i)
                    if t.ShapeSignatureLength():
                        dims = [t.ShapeSignature(k) for k in range(min(t.ShapeSignatureLength(), 64))]
                    else:
                        dims = [t.Shape(k) for k in range(min(t.ShapeLength(), 64))]
                    out[(name or t.Name() or b"")[:MAX_NAME].decode("utf-8", "replace")] = {
                        "shape": [None if d < 0 else d for d in dims], "dtype": names.get(t.Type(), str(t.Type()))}
                return out

            if sig is not None:
                ins, outs = signature(sig.InputsLength(), sig.Inputs), signature(sig.OutputsLength(), sig.Outputs)
            else:
                ins, outs = plain(graph.InputsLength(), graph.Inputs), plain(graph.OutputsLength(), graph.Outputs)
            return {"inputs": tensors(*ins), "outputs": tensors(*outs)}
        except _FLATBUFFER_ERRORS as e:
            raise ArtifactError(f"{shown}: the LiteRT model is malformed ({type(e).__name__} reading its tensors)") from None


class _mapped:
    """The open file mapped read-only (an empty file cannot be mapped: it is refused here)."""

    def __init__(self, f, shown: str) -> None:
        self.f, self.shown = f, shown
        self.map: Any = None

    def __enter__(self):
        size = os.fstat(self.f.fileno()).st_size
        if size < 8:
            raise ArtifactError(f"{self.shown}: {size} bytes is too short for a LiteRT model (truncated?)")
        self.map = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        return self.map

    def __exit__(self, *exc) -> None:
        self.map.close()


def root(buf, shown: str):
    """The ``Model`` table of a mapped file, after checking the file identifier and the root offset."""
    from ai_edge_litert import schema_py_generated as schema

    if bytes(buf[4:8]) != IDENTIFIER:
        raise ArtifactError(f"{shown}: not a LiteRT model (no {IDENTIFIER.decode()} file identifier at byte 4)")
    if int.from_bytes(bytes(buf[0:4]), "little") >= len(buf):
        raise ArtifactError(f"{shown}: the LiteRT model's root offset points past its end (truncated?)")
    return schema.Model.GetRootAs(buf, 0)


def _entry(model, buf, shown: str) -> bytes | None:
    """The bytes of the ``netspec.json`` metadata entry, bounds-checked; None when there is none."""
    try:
        count = model.MetadataLength()
        if count > MAX_ENTRIES:
            raise ArtifactError(f"{shown}: the LiteRT model declares {count:,} metadata entries, over {MAX_ENTRIES:,}")
        buffers = model.BuffersLength()
        for i in range(count):
            entry = model.Metadata(i)
            name = entry.Name()
            if name is None or name[:MAX_NAME + 1] != ENTRY.encode():
                continue
            index = entry.Buffer()
            if not 0 <= index < buffers:
                raise ArtifactError(f"{shown}: metadata {ENTRY} points at buffer {index} of {buffers}")
            b = model.Buffers(index)
            if b.Offset() > 1:  # a large model keeps buffers after the flatbuffer, at (offset, size)
                start, size = b.Offset(), b.Size()
                if size > MAX_METADATA_BYTES or start + size > len(buf):
                    raise ArtifactError(f"{shown}: metadata {ENTRY} declares {size:,} bytes at offset {start:,}, "
                                        f"past the file's end or over the {MAX_METADATA_BYTES:,}-byte cap")
                return bytes(buf[start:start + size])
            size = b.DataLength()
            if size > MAX_METADATA_BYTES:
                raise ArtifactError(f"{shown}: metadata {ENTRY} is {size:,} bytes, over the {MAX_METADATA_BYTES:,}-byte cap")
            if not size:
                return b""
            view = b.DataAsNumpy()  # a view into the mapping: copied and dropped, so the mapping can close
            data = view.tobytes()
            del view
            return data
        return None
    except ArtifactError:
        raise
    except _FLATBUFFER_ERRORS as e:
        raise ArtifactError(f"{shown}: the LiteRT model is malformed ({type(e).__name__} reading its metadata; "
                            "truncated?)") from None
