"""``netspec import``: a functional Keras model to a readable spec (flat graph, then folded into blocks)."""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import short
from .folding import fold
from .importargs import ModelImportError, _allows_int, _single
from .importgraph import _NAME, InputInfo, _Flattener  # noqa: F401  (InputInfo re-exported)
from .specwriter import SpecText, write_spec


@dataclass
class Source:
    """What was imported: the model and a one-line description of where it came from."""

    model: Any
    origin: str


@dataclass
class Imported:
    """The result of an import: the spec text and what it holds."""

    text: str
    name: str
    layers: int            # Keras layers and operations imported
    blocks: dict[str, int]  # block name -> instances
    names: dict[str, str]   # Keras layer name -> the spec's flat node name
    lines: int = 0
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Sources.


def keras_app_names() -> list[str]:
    """The model functions in ``keras.applications`` (ResNet50, MobileNetV2, ...)."""
    import keras

    return sorted(n for n in dir(keras.applications)
                  if n[:1].isupper() and inspect.isfunction(getattr(keras.applications, n)))


def keras_app(name: str, **kwargs) -> Source:
    """Build ``keras.applications.<name>(weights=None)`` without allocating its weights.

    Raises:
        ModelImportError: unknown application name (with the closest names).
    """
    import keras
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope

    names = keras_app_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else "one of: " + ", ".join(names)
        raise ModelImportError(f"keras.applications has no model {short(name)}", hint=hint)
    try:
        with StatelessScope(initialize_variables=False):  # shapes only: nothing to allocate
            model = getattr(keras.applications, name)(weights=None, **kwargs)
    finally:
        global_state.set_global_attribute("uninitialized_variables", [])
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return Source(model, f"keras.applications.{name}(weights=None{args})")


def load_keras_file(path: str) -> Source:
    """Load a ``.keras`` file with ``safe_mode=True`` (it is untrusted input).

    Raises:
        ModelImportError: not a .keras file, unreadable, or refused by safe mode.
    """
    import os

    import keras

    if not str(path).endswith(".keras"):
        raise ModelImportError(f"expected a .keras model file. Received: {short(str(path))}")
    if not os.path.isfile(path):
        raise ModelImportError(f"model file not found: {path}")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:
        text = " ".join(str(e).split())
        if "safe_mode" in text or "Lambda" in text:
            text = text.split(" If you trust")[0]  # Keras goes on to suggest safe_mode=False: never
            raise ModelImportError(
                f"{path}: Keras refused to load the model in safe mode: {text[:300]}",
                hint="a model with Lambda layers runs arbitrary Python code; netspec never loads it "
                     "unsafely. Rewrite the Lambda as an `expr:` node in the spec") from None
        raise ModelImportError(f"{path}: cannot load the model: {type(e).__name__}: {text[:300]}") from None
    return Source(model, f"{os.path.basename(path)}")


# ---------------------------------------------------------------------------------------------
# The whole import.


def _defaults(catalog):
    """``(type, key) -> (known, default)`` from the schema (the constructor defaults, in spec form)."""
    def default_of(type_name: str, key: str):
        if type_name not in catalog.core:
            return False, None
        prop = catalog.layer_schema(type_name).get("properties", {}).get(key, {})
        default = prop.get("default")
        if _single(default) is not None and _allows_int(prop):
            default = _single(default)  # strides: [1, 1] -> 1, as the arguments are written
        return ("default" in prop), default
    return default_of


def import_model(source: Source | Any, *, name: str | None = None, fold_blocks: bool = True,
                 schema_ref: str | None = None, plugins: list[str] | None = None, catalog=None) -> Imported:
    """A spec from a functional (or Sequential) Keras model.

    Args:
        source: a :class:`Source` (see :func:`keras_app`, :func:`load_keras_file`) or a model.
        name: the spec's ``name`` (default: the model's name, made a valid name).
        fold_blocks: fold repeated structures into blocks (``False``: one node per layer).
        schema_ref: the schema path for the editor modeline (``None``: no modeline).
        plugins: modules or spec-relative .py files to list under ``plugins:`` (user layers).
        catalog: the layer catalogue (default: the installed schema).

    Returns:
        The spec text (validated by ``netspec.load``) and what it holds.

    Raises:
        ModelImportError: a layer or operation has no spec form (the error names it).
    """
    from .catalog import Catalog
    from .spec import load

    if not isinstance(source, Source):
        source = Source(source, f"the Keras model {getattr(source, 'name', '')!r}")
    catalog = catalog or Catalog()
    flat = _Flattener(catalog)
    outputs = flat.model(source.model)
    model_name = name or re.sub(r"\W", "_", source.model.name or "model")
    if not _NAME.match(model_name):
        model_name = "model_" + model_name
    ops, blocks = (fold(flat.ops, outputs, [i.name for i in flat.inputs], _defaults(catalog)) if fold_blocks
                   else (flat.ops, {}))
    n_layers = len(flat.ops)
    description = (f"Imported by `netspec import` from {source.origin}: {n_layers} layers"
                   + (f", folded into {len(blocks)} block{'s' * (len(blocks) != 1)}" if blocks else "") + ".")
    written: SpecText = write_spec(model_name, description, flat.inputs, blocks, ops, outputs,
                                   schema_ref=schema_ref, plugins=plugins or [])
    try:
        load(written.text, trust_plugins=True)  # plugins listed are the ones the user just ran
    except Exception as e:  # the writer made a spec netspec refuses: a bug, reported as such
        raise RuntimeError(f"netspec import wrote a spec that does not load: {e}\n{written.text}") from e
    names = {k: written.flat_names.get(v, v) for k, v in flat.names.items()}
    return Imported(written.text, model_name, n_layers, written.instances, names,
                    written.text.count("\n"), flat.notes)
