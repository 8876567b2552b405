"""Where a netspec-built model's blocks used once were: read from the spec it was built from, once
that spec is proved to build this very model.

netspec builds a block instance flat (its layers ``<instance>_<node>``, no nested model), so the
model alone cannot say that ``encoder_conv2d`` ... ``encoder_dense`` were one instance of a block
used once; and reading name prefixes as blocks would group ``conv1_pad``, ``conv1_conv``, ... of every
``keras.applications`` model that netspec never built. What does say it is the spec, and a model
netspec built carries it:

- a ``.keras`` file netspec wrote (``netspec build -o``, :func:`netspec.build.saving.save_model`)
  holds it as the ``netspec.json`` member (:func:`netspec.contract.spec_stamp`), which survives the
  file; Keras's own ``model.save`` does not write it (the model then imports flat, as any model);
- a model :meth:`netspec.Spec.build` returned holds the same mapping in the attribute
  :data:`netspec.spec.BUILT_FROM` (Python only: a Keras model keeps no such attribute in a file).

Either may come from a stranger (a ``.keras`` file is an archive anyone can write), so the stamp is
never trusted as it is: its SHA-256 is checked (:func:`netspec.contract.read_spec_stamp`); the spec
is loaded as data (its ``plugins:`` entry is dropped, so no code runs: only classes already
registered resolve) and built symbolically (nothing allocated); and the model it builds must equal
the model being imported, in its functional config (every layer's class, arguments, name and wiring)
and its weights (names and shapes, in order). Only then are its block instances read, and only as
names of the model's own ops (:class:`netspec.importing.nesting.Group`): the stamp adds no layer
and no value. A stamp that fails any check is ignored with a note: the model imports as if it had
none.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import NetspecError, short
from .nesting import Group
from .values import plain_value

SPEC_KEY = "netspec.spec"


def stamped_groups(model: Any, metadata: Mapping[str, str], where: str) -> tuple[list[Group], str | None]:
    """The block instances used once in the spec stamped in ``metadata``, if it builds ``model``.

    Args:
        model: the model being imported.
        metadata: netspec's metadata mapping (the ``netspec.json`` member, or :data:`BUILT_FROM`).
        where: the model's origin, for the note.

    Returns:
        The groups (empty when there is no stamp or it is not used), and a note saying why a stamp
        was not used (None when it was, or there was none).
    """
    if SPEC_KEY not in metadata:
        return [], None
    from ..build.compiler import build_symbolic
    from ..contract import read_spec_stamp
    from ..spec import load

    try:
        data, params, _ = read_spec_stamp(metadata, where)
        data = {k: v for k, v in data.items() if k != "plugins"}  # never run code named by a stamp
        spec = load(json.dumps(data), params=params, trust_plugins=False)
        layers = layer_count(model)
        if len(spec.graph.nodes) > layers:  # every node builds one layer call at least: it cannot be this model
            # (checked before building: a 15 KB stamp of 40,000 nodes took 139 s to build symbolically)
            return [], _note(where, f"it has {len(spec.graph.nodes):,} nodes, the model {layers:,} layer calls")
        built, _ = build_symbolic(spec.graph, spec.catalog, spec.document.source)
    except NetspecError as e:
        return [], _note(where, short(e.message, 160))
    except (MemoryError, RecursionError, ValueError, TypeError) as e:  # Keras refusing the stamped spec
        return [], _note(where, f"it does not build ({type(e).__name__})")
    if not same_model(built, model):
        return [], _note(where, "it does not build this model (the layers, their arguments, wiring or weights differ)")
    return groups_of(spec.graph), None


def _note(where: str, why: str) -> str:
    return (f"the spec stamped in {short(where, 80)} was not used ({why}); nested blocks used once "
            "import inline")


def layer_count(model: Any) -> int:
    """The layer calls in ``model`` (a shared layer once per call), those inside nested models included: a spec
    node builds one call at least."""
    from ..kerasapi import inbound_nodes

    return sum(max(1, len(inbound_nodes(layer))) + (layer_count(layer) if hasattr(layer, "layers") else 0)
               for layer in model.layers)


def same_model(built: Any, model: Any) -> bool:
    """Whether two Keras models have the same functional config and the same weights (names and
    shapes, in order)."""
    try:
        if plain_value(built.get_config()) != plain_value(model.get_config()):
            return False
        return [(w.path, tuple(w.shape)) for w in built.weights] == [(w.path, tuple(w.shape)) for w in model.weights]
    except Exception:  # a model whose config Keras cannot write is not the one netspec built
        return False


def groups_of(graph: Any) -> list[Group]:
    """The top-level block instances of ``graph`` whose block is built nowhere else.

    A block's nodes carry their spec path (``blocks.<block>.nodes.<i>``) and the instance path
    (``scope``) they were built in: a block whose nodes were built in one scope only, a top-level
    one, was used once (not repeated, not shared, not inside another block). Its group is every
    node built under that instance, blocks nested in it included.
    """
    scopes: dict[str, set[tuple]] = {}
    for node in graph.nodes:
        path = tuple(node.path)
        if len(path) >= 2 and path[0] == "blocks" and node.scope:
            scopes.setdefault(str(path[1]), set()).add(tuple(node.scope))
    out = []
    for block, where in scopes.items():
        if len(where) != 1:
            continue
        (scope,) = where
        if len(scope) != 1:
            continue
        members = tuple(n.name for n in graph.nodes if tuple(n.scope[:1]) == scope)
        if any(n.kind == "share" for n in graph.nodes if n.name in members):
            continue
        out.append(Group(scope[0], block, members))
    return out
