"""Model files: written atomically (beside the target, then renamed), loaded only with ``safe_mode``."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

if TYPE_CHECKING:
    import keras

    from ..source.kerascost import Cost
    from ..source.kerasfile import Archive


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a component too long or unreadable counts as missing (checked by the caller)."""
    try:
        return path.exists()
    except OSError:
        return False


def check_writable(target: str | os.PathLike) -> Path:
    """``target`` as a path a file can be written to, checked before any work that would be lost.

    Missing directories above it are allowed (:func:`atomic_path` makes them, as for every file netspec
    writes); a directory at ``target``, a file where a directory must be, a name too long for the file
    system, or a directory netspec may not write in is refused.

    Raises:
        OutputError: what is in the way, naming ``target``. Nothing is written.
    """
    from ..errors import OutputError

    target = Path(target)
    shown = str(target) if len(str(target)) <= 120 else str(target)[:120] + "..."

    def refuse(why: str) -> OutputError:
        return OutputError(f"{shown}: cannot write it: {why}. Nothing written")

    try:
        existing = next(d for d in (target.parent.absolute(), *target.parent.absolute().parents) if _exists(d))
        longest = os.pathconf(existing, "PC_NAME_MAX") if existing.is_dir() else 255
        tmp_name = f".{target.stem}.xxxxxxxx{target.suffix}"  # what atomic_path writes first
        if any(len(os.fsencode(part)) > longest for part in (*target.parts, tmp_name)):
            raise refuse(f"a name in it is longer than the file system takes ({longest} bytes)")
        if target.is_dir():
            raise refuse("it is a directory; give a file name")
        if not existing.is_dir():
            raise refuse(f"{existing} is a file, not a directory")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise refuse(f"netspec may not write in {existing} (permission denied)")
    except OSError as e:  # a path the file system refuses to even look at
        raise refuse(e.strerror or type(e).__name__) from None
    return target


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target``.

    ``target`` is checked first (:func:`check_writable`). On any exception the temporary file is removed
    and ``target`` is left as it was. A symbolic link at ``target`` is replaced by the file, not written
    through (the link's own target is left as it was).
    """
    from ..errors import OutputError

    target = check_writable(target)
    try:  # missing directories above the file are made, as for every file netspec writes (-o, --spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix or ".tmp", dir=target.parent)
    except OSError as e:  # a read-only or full disk, or a race with another writer
        raise OutputError(f"{str(target)[:120]}: cannot write it ({e.strerror or type(e).__name__}). "
                          "Nothing written") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp made it 0600; give it what a plain open() would
            os.chmod(tmp_path, 0o666 & ~_umask())
        try:
            os.replace(tmp_path, target)
        except OSError as e:  # the target became a directory meanwhile, or cannot be replaced
            raise OutputError(f"{target}: cannot write it ({e.strerror or type(e).__name__}). "
                              "Nothing written") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model: keras.Model, target: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """``model.save`` to a ``.keras`` file atomically, with netspec's ``metadata`` stamped in it.

    Args:
        metadata: netspec's metadata (version, resolved spec and hash, deployment contract), written
            as the archive member ``netspec.json`` (see :func:`add_keras_metadata`); None: none.
    """
    with atomic_path(target) as tmp:
        tmp.unlink()  # Keras refuses to overwrite silently in some versions; give it a fresh name
        model.save(tmp)
        if metadata:
            add_keras_metadata(tmp, metadata)


def add_keras_metadata(path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Add the member ``netspec.json`` to a ``.keras`` file Keras just wrote (not yet in its place).

    Keras ignores archive members it does not know, so the file still loads everywhere; netspec reads
    it back through :func:`netspec.source.kerasfile.open_archive` (size-capped, checked). Call it on the
    temporary file of an atomic write: appending to a finished file in place could leave half a zip.
    For a file that may already hold the member, use :func:`stamp_keras`.
    """
    import zipfile

    from ..contract import metadata_json
    from ..source.kerasfile import NETSPEC_MEMBER

    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        if NETSPEC_MEMBER in zf.namelist():
            raise ValueError(f"{os.fsdecode(path)} already holds {NETSPEC_MEMBER}; use stamp_keras")
        zf.writestr(NETSPEC_MEMBER, metadata_json(metadata))


def stamp_keras(path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Replace the ``netspec.json`` member of an existing ``.keras`` file, atomically.

    The archive is copied member by member (streamed, so memory stays flat) into a temporary file
    beside it, without its old ``netspec.json``, the new one is added, and the copy replaces the file.
    """
    import shutil
    import zipfile

    from ..contract import metadata_json
    from ..source.kerasfile import NETSPEC_MEMBER

    with atomic_path(path) as tmp, zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as out:
        for info in src.infolist():
            if info.filename == NETSPEC_MEMBER:
                continue
            with src.open(info) as fin, out.open(info, "w") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        out.writestr(zipfile.ZipInfo(NETSPEC_MEMBER), metadata_json(metadata), compress_type=zipfile.ZIP_DEFLATED)


def load_model(path: str | os.PathLike, *, plugins: tuple[str, ...] = (),
               max_params: int | None = None) -> keras.Model:
    """Load a ``.keras`` file, always with ``safe_mode=True``, after checking it as untrusted data.

    Every ``.keras`` file netspec reads comes through here (``import``, ``export`` of a model file,
    ``export --weights``, :func:`netspec.load_model`). Before Keras sees the file, its zip structure
    is checked and its ``config.json`` read under a cap (:mod:`netspec.source.kerasfile`), Lambda layers and
    classes nobody registered are refused, and the model is costed from the config against the
    compiler's parameter budget (:mod:`netspec.source.kerascost`): a small config asking for a huge model is
    refused in milliseconds, before Keras allocates anything.

    netspec's expression layer is registered first (``import netspec`` alone does not import
    Keras, so it cannot register it), and ``plugins`` (modules or ``.py`` files registering user
    layer classes; naming them is the caller's choice to run them) are imported.

    Args:
        path: the ``.keras`` file (an untrusted archive is fine: nothing in it runs).
        plugins: modules or ``.py`` files to import first.
        max_params: the parameter budget (default: ``netspec.build.compiler.DEFAULT_BUDGET.max_params``).

    Returns:
        The ``keras.Model`` (not compiled: netspec never deserializes a file's optimizer or losses).

    Raises:
        NetspecError: a :class:`netspec.errors.ModelFileError` naming the file: it is missing or not
            a Keras model, its archive or config is malformed or over a cap, it holds a Lambda or a
            class nobody registered, it is over the budget, or a stored expression was tampered with.
    """
    from ..errors import NetspecError, short
    from ..source.kerascost import check_objects
    from ..errors import ModelFileError

    name = os.fsdecode(path)
    archive, _cost = check_model_file(name, max_params=max_params)
    shown = archive.shown

    import keras

    from . import expression as expr
    from ..schema.plugins import load_entry_points, load_plugin_targets

    if plugins:
        load_plugin_targets(list(plugins))
    load_entry_points()
    check_objects(archive.config, shown, _registered)  # needs the registry the plugins just filled
    try:
        with warnings.catch_warnings():
            # Keras's advice to the model's author (name each Input as its dict key), with tensors printed in
            # full, on every command that loads the file; the model loads and is fed by key all the same
            warnings.filterwarnings("ignore", message="When providing `inputs` as a dict, all keys in the dict must "
                                    "match", category=UserWarning)
            return keras.saving.load_model(name, safe_mode=True, compile=False)
    except NetspecError as e:  # netspec's own refusal (a tampered expression): its reason, with the file
        raise ModelFileError(f"{shown}: {e.message}", hint=e.hint) from None
    except (MemoryError, RecursionError) as e:
        raise ModelFileError(f"{shown}: Keras ran out of {'memory' if isinstance(e, MemoryError) else 'stack'} "
                             "building the model; refusing the file") from None
    except Exception as e:  # Keras reports bad archives and unknown classes with many types
        text = " ".join(str(e).split())
        found = re.search(r"Could not locate class '([^']+)'", text)
        if found:
            raise ModelFileError(f"{shown} uses the layer class {short(found.group(1))}, which is not registered",
                                 hint="pass the plugin that registers it (netspec: --plugins; Python: "
                                 "load_model(path, plugins=[...]))") from None
        cause = re.search(r"Exception encountered: (.*)", text)
        raise ModelFileError(f"cannot load {shown}: {short((cause.group(1) if cause else text), 300)}") from None


def check_model_file(path: str | os.PathLike, *, max_params: int | None = None) -> tuple[Archive, Cost]:
    """The checks of :func:`load_model` that need no TensorFlow: the archive, its config, the cost.

    Commands call it before starting TensorFlow, so a hostile file is refused in milliseconds;
    :func:`load_model` calls it again (it is cheap) so that no caller can skip it.

    Args:
        path: the ``.keras`` file.
        max_params: the parameter budget (default: ``netspec.build.compiler.DEFAULT_BUDGET.max_params``).

    Returns:
        ``(archive, cost)``: the parsed :class:`netspec.source.kerasfile.Archive` and the
        :class:`netspec.source.kerascost.Cost` estimate.

    Raises:
        ModelFileError: the file is missing, not a ``.keras`` archive, malformed, over a cap or over
            the budget (the message names the file, and the layer where one is at fault).
    """
    from .compiler import DEFAULT_BUDGET
    from ..source.kerascost import check_objects, cost_config
    from ..errors import ModelFileError
    from ..source.kerasfile import display, open_archive

    name = os.fsdecode(path)
    shown = display(name)
    if not os.path.isfile(name):
        raise ModelFileError(f"no such model file: {shown}")
    if not name.endswith(".keras"):
        raise ModelFileError(f"expected a .keras model file. Received: {shown}")
    budget = DEFAULT_BUDGET.max_params if max_params is None else max_params
    origin = f" (from {DEFAULT_BUDGET.memory})" if max_params is None else " (as given)"
    archive = open_archive(name)
    cost = cost_config(archive.config, shown, budget, origin)  # first: it also caps the layer count
    check_objects(archive.config, shown, lambda *_: True)  # Lambda layers now; classes once plugins load
    _check_weights(archive, cost, shown, budget)
    return archive, cost


# A weights member this much smaller than the parameters need (1/2 byte each: int4) is not the
# model's: Keras would allocate the whole model before finding out.
_WEIGHTS_SLACK = 16 << 20


def _check_weights(archive, cost, shown: str, budget: int) -> None:
    from ..errors import ModelFileError

    declared = archive.weights_bytes
    if declared is None:
        raise ModelFileError(f"{shown}: not a .keras archive (it has no model.weights.h5)")
    if declared > 8 * budget + _WEIGHTS_SLACK:
        raise ModelFileError(f"{shown}: its weights member declares {declared:,} bytes, more than "
                             f"{budget:,} float64 parameters (the parameter budget) can fill; refusing the file")
    if cost.params // 2 > 4 * declared + _WEIGHTS_SLACK:
        count, layer, cls = cost.biggest
        raise ModelFileError(
            f"{shown}: the config describes {cost.params:,} parameters (layer {layer}, {cls}, has {count:,}) "
            f"but its weights member holds only {declared:,} bytes; the file is not a saved model, and "
            "netspec refuses it before Keras allocates the weights")


def _registered(registered_name: str | None, class_name: str) -> bool:
    """Whether Keras's serialization registry holds this class (netspec's own, or a plugin's)."""
    import keras

    if registered_name is None:
        return False
    return keras.saving.get_registered_object(registered_name) is not None
