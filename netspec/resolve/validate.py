"""Validate a loaded document against the JSON Schema, reporting the best issue at its YAML position."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ResolveError, SchemaError
from ..source.loader import Document
from .resolver import MAX_NODES

if TYPE_CHECKING:
    from ..schema.catalog import Catalog

# Schema issues collected before one is reported: a spec with 400,000 misspelled arguments (a list of
# aliases of one bad node) reports the best of the first ones and "more than N other errors".
MAX_ISSUES = 1_000

_KINDS = ("type", "block", "expr", "share")


def _node_lists(data: dict) -> Iterator[tuple[tuple, list[Any]]]:
    """The ``nodes`` lists of the model and of every block, with their paths."""
    if isinstance(data.get("nodes"), list):
        yield ("nodes",), data["nodes"]
    blocks = data.get("blocks")
    if isinstance(blocks, dict):
        for name, block in blocks.items():
            if isinstance(block, dict) and isinstance(block.get("nodes"), list):
                yield ("blocks", name, "nodes"), block["nodes"]


def _check_node_kinds(doc: Document, core: set[str]) -> None:
    """Clearer messages than the schema's for a node's kind: exactly one of type/block/expr/share,
    and never a layer class that specs may not use."""
    for base, nodes in _node_lists(doc.data):
        for k, node in enumerate(nodes):
            if not isinstance(node, dict):
                continue
            path = base + (k,)
            kinds = [key for key in _KINDS if key in node]
            if len(kinds) != 1:
                found = f"; this one has {' and '.join(repr(x) for x in kinds)}" if kinds else ""
                raise SchemaError(f"a node needs exactly one of 'type', 'block', 'expr', 'share'{found}",
                                  path=path, location=doc.source.value(path))
            layer_type = node.get("type")
            if isinstance(layer_type, str) and layer_type not in core and layer_type in _excluded():
                raise SchemaError(f"{layer_type} cannot be used in a spec: {_excluded()[layer_type]}",
                                  path=path + ("type",), location=doc.source.value(path + ("type",)))


def _check_node_count(doc: Document) -> None:
    """A nodes list over the layer cap fails before the schema pass (which would take seconds on it)."""
    nodes = doc.data.get("nodes")
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        path = ("nodes", MAX_NODES)
        raise ResolveError(f"the graph has more than {MAX_NODES} layers", path=path, location=doc.source.value(path),
                           hint=f"netspec builds graphs of up to {MAX_NODES} layers")


def _excluded() -> dict[str, str]:
    from ..schema.derive.classes import EXCLUDED_LAYERS

    return EXCLUDED_LAYERS


def _renamed_hint(data: Any, path: tuple) -> str | None:
    """The hint for an unknown key that is a Keras 2 name of a layer argument (``LeakyReLU.alpha``)."""
    from ..schema.catalog import renamed_arg_hint

    parent = data
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return None
    if not isinstance(parent, dict):
        return None
    return renamed_arg_hint(parent.get("type"), path[-1], parent.get(path[-1]))


def validate_document(doc: Document, catalog: Catalog) -> None:
    """Check ``doc`` against the schema.

    Args:
        doc: the loaded document.
        catalog: the layer catalogue; its validator checks the document.

    Raises:
        SchemaError: the best-ranked of the first MAX_ISSUES issues, located at the offending key or
            value, with the count of other issues (a lower bound past MAX_ISSUES).
    """
    if not isinstance(doc.data, dict):
        raise SchemaError("a spec is a mapping with netspec, name, inputs and nodes",
                          location=doc.source.value(()))
    _check_node_count(doc)
    _check_node_kinds(doc, catalog.core)
    validator = catalog.validator
    issues = list(islice(validator.iter_issues(doc.data), MAX_ISSUES + 1))
    if not issues:
        return
    bounded = len(issues) > MAX_ISSUES
    best = validator.best(issues[:MAX_ISSUES])
    assert best is not None  # issues is not empty
    path = tuple(best.path)
    location = doc.source.key(path) if best.at_key else doc.source.value(path)
    # Only the reported issue's did-you-mean hint is computed (Issue.hint is lazy).
    hint = _renamed_hint(doc.data, path) if best.keyword == "additionalProperties" else None
    raise SchemaError(best.message, path=path, location=location, hint=hint or best.hint,
                      more=MAX_ISSUES - 1 if bounded else len(issues) - 1, more_at_least=bounded)
