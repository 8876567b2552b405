"""The metadata mapping every artifact carries (netspec's version, the resolved spec and its hash, the
contract, the target and gate), and strict JSON for reading it from strangers' files. Re-exported by
:mod:`netspec.contract`."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from ..errors import ArtifactError, NetspecError, short

# The netspec metadata of one artifact (version, resolved spec, its hash, target, contract, gate): the spec
# loader caps a spec at 1 MiB, so its resolved form and the contract fit with room to spare.
MAX_METADATA_BYTES = 16 << 20
MAX_METADATA_ENTRIES = 256
MAX_METADATA_KEY = 200


class DuplicateKey(ValueError):
    """A JSON object with a key twice (``json`` keeps the last one silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``json.loads``'s ``object_pairs_hook`` for untrusted JSON: a key given twice raises :class:`DuplicateKey`."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


# -- the metadata mapping every artifact carries ------------------------------------------------------


def spec_stamp(data: Any, params: Mapping[str, Any], source: str | None) -> dict[str, str]:
    """netspec's version, the resolved spec (as written, plus its params after overrides), its SHA-256 and
    its file: the entries every artifact made from a spec carries (export adds its target and gate)."""
    from ..version import __version__

    resolved = json.dumps({"spec": data, "params": dict(params)}, sort_keys=True, default=str, separators=(",", ":"))
    return {"netspec.version": __version__, "netspec.spec": resolved,
            "netspec.spec_sha256": hashlib.sha256(resolved.encode()).hexdigest(), "netspec.source": source or "<text>"}



def read_spec_stamp(metadata: Mapping[str, str], where: str) -> tuple[dict, dict, str]:
    """The inverse of :func:`spec_stamp`: ``(spec as written, params, sha256)`` from an artifact's metadata,
    its hash checked (artifacts come from strangers: an entry may be missing, edited or not JSON).

    Raises:
        ArtifactError: no stored spec or hash, a spec that does not match its hash, or not netspec's JSON.
    """
    at = ("metadata", "netspec.spec")
    text, stored = metadata.get("netspec.spec"), metadata.get("netspec.spec_sha256")
    if text is None or stored is None:
        raise ArtifactError(f"{where} stores no resolved spec and hash (it was exported from a .keras file, or not "
                            "by netspec)", path=at)
    actual = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if actual != stored:
        raise ArtifactError(f"{where}: the stored spec does not match the stored hash: sha256 {actual[:16]}... does "
                            f"not match its netspec.spec_sha256 {short(stored, 70)}; the file was changed after "
                            "netspec wrote it", path=at)
    try:
        resolved = json.loads(text)
    except (ValueError, RecursionError):
        resolved = None
    if not isinstance(resolved, dict) or not isinstance(resolved.get("spec"), dict) \
            or not isinstance(resolved.get("params", {}), dict):
        raise ArtifactError(f"{where}: the stored spec is not netspec's JSON (a spec mapping and its params)", path=at)
    return resolved["spec"], resolved.get("params") or {}, stored


def metadata_json(metadata: Mapping[str, str]) -> bytes:
    """The form ``.keras`` (member ``netspec.json``) and LiteRT (metadata ``netspec.json``) store it in."""
    return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_metadata_json(raw: bytes, where: str, error: type[NetspecError] = ArtifactError) -> dict[str, str]:
    """The inverse of :func:`metadata_json` for untrusted bytes: a JSON object of strings, under the caps.

    Raises:
        NetspecError: ``error`` (an :class:`~netspec.errors.ArtifactError` unless told), naming ``where``.
    """
    if len(raw) > MAX_METADATA_BYTES:
        raise error(f"{where}: the netspec metadata is {len(raw):,} bytes, over the {MAX_METADATA_BYTES:,}-byte cap")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKey as e:
        raise error(f"{where}: the netspec metadata holds {short(e.key)} twice (which one is meant?)") from None
    except RecursionError:
        raise error(f"{where}: the netspec metadata is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise error(f"{where}: the netspec metadata is not valid JSON: {short(str(e), 120)}") from None
    return check_metadata(data, where, error)


def check_metadata(data: Any, where: str, error: type[NetspecError] = ArtifactError) -> dict[str, str]:
    """``data`` as a ``{str: str}`` mapping of at most :data:`MAX_METADATA_ENTRIES` entries and
    :data:`MAX_METADATA_BYTES` characters (ONNX ``metadata_props`` and the JSON forms alike)."""
    if not isinstance(data, dict):
        raise error(f"{where}: the netspec metadata must be a JSON object of strings. Received: {short(data)}")
    if len(data) > MAX_METADATA_ENTRIES:
        raise error(f"{where}: the netspec metadata has {len(data):,} entries, over the cap of {MAX_METADATA_ENTRIES}")
    total = 0
    for key, value in data.items():
        if not isinstance(key, str) or len(key) > MAX_METADATA_KEY or not isinstance(value, str):
            raise error(f"{where}: netspec metadata entry {short(key)} must map a name to a string. "
                        f"Received: {short(value)}")
        total += len(key) + len(value)
        if total > MAX_METADATA_BYTES:
            raise error(f"{where}: the netspec metadata is over the {MAX_METADATA_BYTES:,}-character cap")
    return dict(data)
