"""The resolved graph: plain dataclasses passed from the resolver to the compiler and reporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from .errors import Location

NODE_KEYS = frozenset({"name", "in", "repeat", "when", "else", "input_spec", "output_shape", "type", "block", "expr", "share"})
# A layer node's own keys: `output_shape` belongs to expr nodes, so for a layer it is an argument
# (EinsumDense requires one).
LAYER_NODE_KEYS = NODE_KEYS - {"output_shape"}


class Lazy:
    """A value known only once shapes are inferred; evaluating it before then raises Deferred."""


@dataclass(frozen=True)
class Ref:
    """One tensor (``index``) or all outputs (``index=None``) of a flat node or input."""

    node: str
    index: int | None = None

    def __str__(self) -> str:
        return self.node if self.index is None else f"{self.node}.{self.index}"


@dataclass(frozen=True, eq=False)
class DeferredArg(Lazy):
    """A value that needs shapes: its raw YAML value and the scope to evaluate it in at build time."""

    raw: Any
    names: Mapping[str, Any]
    refs: Mapping[str, Any]  # the scope's ref bindings (name -> Value), for shape(ref)
    path: tuple


def has_deferred(value: Any) -> bool:
    """Whether a (nested list/mapping) argument value holds a :class:`DeferredArg` anywhere."""
    if isinstance(value, DeferredArg):
        return True
    if isinstance(value, list):
        return any(has_deferred(v) for v in value)
    if isinstance(value, dict):
        return any(has_deferred(v) for v in value.values())
    return False


@dataclass(frozen=True, eq=False)
class ShapeOf(Lazy):
    """``in_shape``: the static shape of ``ref``, known once shapes are inferred."""

    ref: Ref | None


@dataclass(frozen=True)
class Value:
    """What a ref names: one or more tensors, each with an optional output name."""

    items: tuple[tuple[str | None, Ref], ...]
    listed: bool = False  # written as a list in an `in:` mapping: a keyword gets a list even of one tensor

    @property
    def refs(self) -> list[Ref]:
        """The tensors, without their output names."""
        return [ref for _, ref in self.items]


@dataclass(frozen=True)
class InputDecl:
    """A model input: ``keras.Input`` arguments plus where it was declared."""

    name: str
    shape: tuple
    dtype: str
    batch_size: int | None
    sparse: bool
    optional: bool
    path: tuple
    location: Location
    example_shape: tuple | None = None  # a concrete shape to feed unknown dims at (export's gate and calibration)
    preprocess: Any = None  # its netspec.contract.Preprocess (``preprocess:``); None: none declared


@dataclass
class Node:
    """One Keras layer application in the flat graph.

    ``kind`` is ``layer`` (a new layer of ``type``), ``expr`` (an expression layer) or ``share``
    (``share_of``'s layer applied again). ``inputs`` is a list (positional) or a mapping
    (keyword call arguments / expression variables).
    """

    name: str
    kind: Literal["layer", "expr", "share"]
    type: str | None
    args: dict[str, Any]
    inputs: list[Ref] | dict[str, Ref | list[Ref]]
    path: tuple
    location: Location
    scope: tuple[str, ...] = ()
    share_of: str | None = None
    expr: str | None = None
    expr_names: Mapping[str, Any] | None = None
    output_shape: Any = None
    input_spec: dict | None = None
    instance_note: str | None = None
    # A `when:` that reads shapes, decided at build time; when false the node passes through
    # `else_ref` (or its single input) and makes no layer.
    when: DeferredArg | None = None
    else_ref: Ref | None = None

    def input_refs(self) -> list[Ref]:
        """The node's inputs as a list, in call order (mapping values for keyword inputs)."""
        if isinstance(self.inputs, dict):  # a keyword bound to a list (initial_state) gives each of its refs
            return [r for v in self.inputs.values() for r in (v if isinstance(v, list) else [v])]
        return list(self.inputs)


@dataclass(frozen=True)
class LabelDecl:
    """An output's class labels (``outputs: {name: {from: ref, labels: ...}}``) and where they were written."""

    labels: tuple[str, ...]
    path: tuple
    location: Location


@dataclass
class Graph:
    """A spec after resolution: inputs, flat nodes in build order, and named outputs."""

    name: str
    description: str | None
    inputs: list[InputDecl]
    nodes: list[Node]
    outputs: list[tuple[str, Ref]]
    output_form: Literal["single", "list", "mapping"]
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    labels: dict[str, LabelDecl] = field(default_factory=dict)  # by output name (``labels:`` in ``outputs:``)

    def node(self, name: str) -> Node | None:
        """The node named ``name``, or None."""
        for n in self.nodes:
            if n.name == name:
                return n
        return None


def graph_depth(graph: Graph) -> int:
    """The longest input-to-node path, in layers (iterative; nodes are in build order)."""
    depth: dict[str, int] = {d.name: 0 for d in graph.inputs}
    for node in graph.nodes:
        depth[node.name] = 1 + max((depth.get(r.node, 0) for r in node.input_refs()), default=0)
    return max(depth.values(), default=0)


def unreachable(graph: Graph) -> list[str]:
    """Warnings for layers and inputs that do not reach any output."""
    used: set[str] = set()
    by_name = {n.name: n for n in graph.nodes}
    stack = [ref.node for _, ref in graph.outputs]
    while stack:
        name = stack.pop()
        if name in used:
            continue
        used.add(name)
        node = by_name.get(name)
        if node is not None:
            stack.extend(r.node for r in node.input_refs())
            if node.else_ref is not None:
                stack.append(node.else_ref.node)
            if node.share_of:
                stack.append(node.share_of)
    notes = [f"node {n.name!r} (line {n.location.line}) does not reach any output; it is left out of the model"
             for n in graph.nodes if n.name not in used and n.kind != "share"]
    notes += [f"input {d.name!r} (line {d.location.line}) is not used by any output" for d in graph.inputs if d.name not in used]
    return notes
