"""Model files: written atomically (beside the target, then renamed), loaded only with ``safe_mode``."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); on success it replaces ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp made it 0600; give it what a plain open() would
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model, target: str | os.PathLike) -> None:
    """``model.save`` to a ``.keras`` file atomically."""
    with atomic_path(target) as tmp:
        tmp.unlink()  # Keras refuses to overwrite silently in some versions; give it a fresh name
        model.save(tmp)


def load_model(path: str | os.PathLike, *, plugins: tuple[str, ...] = ()):
    """Load a ``.keras`` file written by netspec, always with ``safe_mode=True``.

    netspec's expression layer is registered first (``import netspec`` alone does not import
    Keras, so it cannot register it), and ``plugins`` (modules or ``.py`` files registering user
    layer classes; naming them is the caller's choice to run them) are imported.

    Args:
        path: the ``.keras`` file (an untrusted archive is fine: nothing in it runs).
        plugins: modules or ``.py`` files to import first.

    Returns:
        The ``keras.Model``.

    Raises:
        NetspecError: the file is missing or not a Keras model, it uses a layer class nobody
            registered, or a stored expression was tampered with.
    """
    import keras

    from . import expr  # noqa: F401  (registers netspec>Expression)
    from .errors import NetspecError, short
    from .plugins import load_entry_points, load_plugin_targets

    name = os.fsdecode(path)
    if plugins:
        load_plugin_targets(list(plugins))
    load_entry_points()
    if not os.path.isfile(name):
        raise NetspecError(f"no such model file: {short(name, 200)}")
    if not name.endswith(".keras"):
        raise NetspecError(f"expected a .keras model file. Received: {short(name, 200)}")
    try:
        return keras.saving.load_model(name, safe_mode=True)
    except NetspecError as e:
        raise NetspecError(f"{short(name, 200)}: {e.message}", hint=e.hint) from None
    except Exception as e:  # Keras reports bad archives and unknown classes with many types
        text = " ".join(str(e).split())
        found = re.search(r"Could not locate class '([^']+)'", text)
        if found:
            raise NetspecError(f"{short(name, 200)} uses the layer class {found.group(1)!r}, which is not registered",
                               hint="pass the plugin that registers it (netspec: --plugins; Python: "
                               "load_model(path, plugins=[...]))") from None
        cause = re.search(r"Exception encountered: (.*)", text)
        raise NetspecError(f"cannot load {short(name, 200)}: {short((cause.group(1) if cause else text), 300)}") from None
