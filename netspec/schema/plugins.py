"""Load user layer plugins: installed entry points, and spec-listed modules/files only when trusted."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import PluginError, short
from ..source.loader import Document

ENTRY_POINT_GROUP = "netspec.layers"
_loaded_entry_points = False


def load_entry_points() -> None:
    """Import the ``netspec.layers`` entry points of installed packages (trusted by being installed)."""
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken installed plugin must say which one
            raise PluginError(f"installed plugin {ep.name!r} ({ep.value}) failed to load: {e}") from e


def _targets(doc: Document) -> list[tuple[str, Path | None, tuple]]:
    base = Path(doc.source.file).resolve().parent if doc.source.file else Path.cwd()
    out = []
    for k, item in enumerate(doc.data.get("plugins") or []):
        path = ("plugins", k)
        if item.endswith(".py"):
            out.append((item, (base / item).resolve(), path))
        else:
            out.append((item, None, path))
    return out


def load_plugin_targets(items: list[str], base: Path | None = None) -> None:
    """Import modules and .py files the user named (command line); errors are PluginErrors."""
    base = base or Path.cwd()
    for item in items:
        file = (base / item).resolve() if item.endswith(".py") else None
        _import(item, file, None, None)


def load_spec_plugins(doc: Document, trust: bool) -> None:
    """Import the modules and files a spec lists under ``plugins:``.

    Raises:
        PluginError: when ``trust`` is false (saying what would be loaded and how to allow it), or
            when a plugin cannot be found or fails while loading.
    """
    targets = _targets(doc)
    if not targets:
        return
    if not trust:
        what = ", ".join(str(p) if p else f"module {name}" for name, p, _ in targets)
        raise PluginError(
            f"this spec loads Python code ({what}); netspec runs it only when you trust the spec",
            path=targets[0][2], location=doc.source.value(targets[0][2]),
            hint="pass --trust-plugins (CLI) or trust_plugins=True (Python API) if you trust this code",
        )
    for name, file, path in targets:
        _import(name, file, path, doc)


def _import(name: str, file: Path | None, path: tuple | None, doc: Document | None) -> None:
    at = path or ()
    location = doc.source.value(path) if doc is not None and path else None
    try:
        if file is None:
            if "/" in name or "\\" in name:
                raise PluginError(f"plugin {short(name)} is neither a .py file nor a module name (modules are "
                                  "written pkg.module; --plugins splits its value at commas)", path=at,
                                  location=location)
            with contextlib.redirect_stdout(sys.stderr):  # a plugin's prints must not corrupt --format json
                module = importlib.import_module(name)  # the user said they trust this code
            if getattr(module, "__file__", None) is None:
                raise PluginError(f"plugin {short(name)} is a directory without __init__.py: it defines nothing",
                                  path=at, location=location)
            return
        if not file.is_file():
            raise PluginError(f"plugin file {name!r} not found (looked at {file})", path=at, location=location)
        mod_name = f"netspec_plugin_{file.stem}_{abs(hash(str(file))) % 10**8}"
        if mod_name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(mod_name, file)
        if spec is None or spec.loader is None:  # the .py name resolved (a symlink) to a file no loader takes
            raise PluginError(f"plugin file {name!r} is not Python source (it resolves to {file})",
                              path=at, location=location)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            with contextlib.redirect_stdout(sys.stderr):
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[mod_name]
            raise
    except PluginError:
        raise
    except ModuleNotFoundError as e:
        if file is None and e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise PluginError(f"plugin module {short(name)} not found: {e}", path=at, location=location) from e
        what = f"it imports {e.name!r}, which is not installed" if e.name else f"ModuleNotFoundError: {e}"
        raise PluginError(f"plugin {short(name)} failed while loading: {what}", path=at, location=location) from e
    except SystemExit as e:  # a module written as a script: its exit must not end netspec without a word
        raise PluginError(f"plugin {short(name)} called sys.exit({short(e.code)}) while loading", path=at,
                          location=location, hint="a plugin should only define and register layer classes") from None
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # GeneratorExit and the like, too: the user's code, reported, never a traceback
        raise PluginError(f"plugin {short(name)} failed while loading: {type(e).__name__}: {e}", path=at,
                          location=location) from e
