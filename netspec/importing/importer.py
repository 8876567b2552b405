"""``netspec import``: a functional Keras model to a readable spec (flat graph, then folded into blocks)."""

from __future__ import annotations

import difflib
import inspect
import os
from dataclasses import dataclass, field
from typing import Any

from .. import kerasapi
from ..errors import ModelImportError, NetspecError, short
from .folding import fold
from .regroup import regroup
from .nesting import nest_once
from .stamped import stamped_groups
from ..spec import BUILT_FROM
from .args import allows_int, single_int
from .foldgraph import is_name, spec_name
from .graph import InputInfo, Flattener  # noqa: F401  (InputInfo re-exported)
from .specwriter import SpecText, write_spec


@dataclass
class Source:
    """What was imported: the model and a one-line description of where it came from."""

    model: Any
    origin: str
    example_size: int | None = None  # keras_app: the application's default image size, for unknown dimensions
    # netspec's metadata of a model netspec built (the .keras file's netspec.json, or the attribute
    # netspec.spec.BUILT_FROM): the spec it was built from, read only once proved (stamped.py)
    metadata: dict[str, str] | None = None


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
    spec: Any = None        # the spec loaded back (no plugin trust): what compare() builds


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

    names = keras_app_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else "one of: " + ", ".join(names)
        raise ModelImportError(f"keras.applications has no model {short(name)}", hint=hint)
    from keras.src.applications import imagenet_utils

    sizes: list[int] = []
    obtain = imagenet_utils.obtain_input_shape

    def spy(*args, **kw):  # the application's own default size, as it passes it on
        sizes.append(kw.get("default_size", args[1] if len(args) > 1 else None))
        return obtain(*args, **kw)

    imagenet_utils.obtain_input_shape = spy
    try:
        with kerasapi.symbolic_build():  # shapes only: nothing to allocate
            model = getattr(keras.applications, name)(weights=None, **kwargs)
    finally:
        imagenet_utils.obtain_input_shape = obtain
    # MobileNetV3 does not call obtain_input_shape: its input is (None, None, 3) and 224 is the one
    # size its weights were trained at (it warns for any other).
    size = next((s for s in sizes if isinstance(s, int)), APP_DEFAULT_SIZE)
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return Source(model, f"keras.applications.{name}(weights=None{args})", size)


APP_DEFAULT_SIZE = 224


def load_keras_file(path: str) -> Source:
    """Load a ``.keras`` file through :func:`netspec.build.saving.load_model` (checked, costed, ``safe_mode``).

    The one loader every entry point shares: the archive and config are checked and costed before
    Keras builds anything, and a refusal (a Lambda layer, an unregistered class, a tampered stored
    expression, a model over the budget) keeps its own reason here.

    Raises:
        ModelImportError: not a .keras file, unreadable, over the budget, or refused (the reason and
            the file name in the message; the ``expr:`` hint only for a Lambda layer).
    """
    from ..build.saving import load_model

    from ..source.kerasfile import open_archive

    try:
        model = load_model(path)
        stamped = open_archive(path).netspec  # checked and capped; proved against the model before any use
    except NetspecError as e:
        raise ModelImportError(e.message, hint=e.hint) from None
    return Source(model, os.path.basename(os.fsdecode(path)), metadata=stamped or None)


# ---------------------------------------------------------------------------------------------
# The whole import.


def _defaults(catalog):
    """``(type, key) -> (known, default)`` from the schema (the constructor defaults, in spec form)."""
    def default_of(type_name: str, key: str):
        if type_name not in catalog.core:
            return False, None
        prop = catalog.layer_schema(type_name).get("properties", {}).get(key, {})
        default = prop.get("default")
        if single_int(default) is not None and allows_int(prop):
            default = single_int(default)  # strides: [1, 1] -> 1, as the arguments are written
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
        plugins: modules or spec-relative .py files to list under ``plugins:`` (user layers): the
            plugins the user named, and already imported. The written spec is checked to list
            exactly these, and is loaded back with ``trust_plugins=False`` (see
            :func:`netspec.importing.check.load_generated`).
        catalog: the layer catalogue (default: the installed schema).

    Returns:
        The spec text (validated by ``netspec.load``) and what it holds.

    Raises:
        ModelImportError: a layer or operation has no spec form (the error names it), ``name`` is not
            a valid name, or the written spec lists plugins other than ``plugins``.
    """
    from ..schema.catalog import Catalog
    from .check import load_generated

    if name is not None and not is_name(name):
        raise ModelImportError(f"the spec name (--name) must be a name: letters, digits and _, not starting "
                               f"with a digit. Received: {short(name)}")
    if not isinstance(source, Source):
        built_from = getattr(source, BUILT_FROM, None)  # a model netspec.Spec.build() made
        source = Source(source, f"the Keras model {short(getattr(source, 'name', ''), 80)}",
                        metadata=built_from if isinstance(built_from, dict) else None)
    catalog = catalog or Catalog()
    flat = Flattener(catalog)
    outputs = flat.model(source.model)
    if source.example_size:  # unknown image dimensions: proven at the application's default size
        for info in flat.inputs:
            if None in info.shape:
                info.example_shape = [source.example_size if d is None else d for d in info.shape]
    model_name = name or spec_name(source.model.name or "model", "model")
    input_names = [i.name for i in flat.inputs]
    taken = input_names + sorted(flat.reserved)  # names a folded block instance must not take
    n_layers = len(flat.ops)  # calls, before shared runs become blocks
    ops, made = flat.ops, {}
    if fold_blocks:  # nested models called once, then shared runs, then repeated runs become blocks
        groups = list(flat.groups)
        if source.metadata:
            found, note = stamped_groups(source.model, source.metadata, source.origin)
            groups += found
            flat.notes += [note] if note else []
        made = nest_once(ops, outputs, groups)
        ops, shared = regroup(ops, outputs, taken, made)
        made.update(shared)
    ops, blocks = (fold(ops, outputs, taken, _defaults(catalog), made) if fold_blocks
                   else (ops, made))
    # The origin (a file name) is data: the writer's emitter quotes it, and it reads back exactly.
    description = (f"Imported by `netspec import` from {source.origin} ({n_layers} layers"
                   + (f", folded into {len(blocks)} block{'s' * (len(blocks) != 1)}" if blocks else "") + ").")
    plugins = list(plugins or [])
    if flat.output_keys is not None:  # the refs, renamed by folding, under the model's output names
        outputs = dict(zip(flat.output_keys, outputs))  # type: ignore[assignment]
    written: SpecText = write_spec(model_name, description, flat.inputs, blocks, ops, outputs,
                                   schema_ref=schema_ref, plugins=plugins, params=flat.params)
    bare = write_spec(model_name, description, flat.inputs, blocks, ops, outputs, schema_ref=schema_ref,
                      params=flat.params).text
    spec = load_generated(written.text, plugins, bare)
    names = {k: written.flat_names.get(v, v) for k, v in flat.names.items()}
    return Imported(written.text, model_name, n_layers, written.instances, names,
                    written.text.count("\n"), flat.notes, spec)
