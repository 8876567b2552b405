"""The graph folding works on: ops (nodes) per scope, block definitions, and where each op is last used."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, TypeVar

_INF = 1 << 30
# A spec name (node, block, param, input): ASCII, matched over the whole string (``fullmatch``:
# ``^...$`` with ``re.match`` also accepts a trailing newline).
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
MAX_NAME = 64  # longer model names are cut: a name is a label, not a place for data


def is_name(text: object) -> bool:
    """Whether ``text`` is a valid spec name, as a whole string."""
    return isinstance(text, str) and NAME.fullmatch(text) is not None


def spec_name(text: object, prefix: str = "n") -> str:
    """``text`` made a valid spec name: every other character becomes ``_``, a leading digit gets
    ``prefix``, and the result is at most :data:`MAX_NAME` characters (model names are untrusted)."""
    raw = text if isinstance(text, str) else ""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw[:MAX_NAME])
    if not is_name(name):
        name = f"{prefix}_{name}"
    return name[:MAX_NAME] if is_name(name[:MAX_NAME]) else prefix


@dataclass
class Op:
    """One node of a scope: a layer, an expression, a shared layer, or a block instance."""

    name: str
    kind: str                         # layer | expr | share | block
    type: str | None                  # layer type, or block name for kind "block"
    args: dict[str, Any]              # layer arguments, or block params
    inputs: list[str] | dict[str, str]
    share_of: str | None = None
    expr: str | None = None
    repeat: Any = None                # int, or "$param" in a block body
    foldable: bool = True
    origin: str | None = None         # the Keras name, for naming
    members: list[str] = field(default_factory=list)  # Keras names of everything it stands for

    def names(self) -> list[str]:
        return self.members or ([self.origin] if self.origin else [self.name])

    def block_used(self) -> str:
        """The block name of a block instance: an op of kind "block" always has one in ``type``."""
        assert self.kind == "block" and self.type is not None, self
        return self.type


@dataclass
class Block:
    """A block made by folding: its params and body, and how many nodes are instances of it."""

    name: str
    params: dict[str, Any]            # param -> default value, or "required"
    nodes: list[Op]
    instances: int = 0
    inputs: list[str] = field(default_factory=lambda: ["x"])  # its input names, in order
    outputs: list[str] | None = None  # its output refs, when not the last node's one output


def base(ref: str) -> str:
    """The op name of a ref (``conv.1`` -> ``conv``)."""
    return ref.split(".", 1)[0]


def op_refs(op: Op) -> list[str]:
    """The refs an op reads, in order (its inputs mapping's values, a keyword's list flattened, or its list)."""
    if isinstance(op.inputs, dict):
        return [r for v in op.inputs.values() for r in (v if isinstance(v, list) else [v])]
    return list(op.inputs)


def map_refs(inputs, fn):
    """``inputs`` (a list, or a mapping of refs and lists of refs) with ``fn`` applied to every ref."""
    if isinstance(inputs, dict):
        return {k: [fn(r) for r in v] if isinstance(v, list) else fn(v) for k, v in inputs.items()}
    return [fn(r) for r in inputs]


K = TypeVar("K", bound=Hashable)


def postorder(roots: Iterable[K], deps: Mapping[K, list[K]], on_cycle: Callable[[K], None] | None = None) -> list[K]:
    """Every key reachable from ``roots`` (in order), each after its ``deps`` (in order): an iterative
    depth-first walk, so a 10,000-layer chain does not hit Python's recursion limit. A root or dependency
    not in ``deps`` is skipped; a dependency already on the walk's path (a cycle) is passed to ``on_cycle``
    (which may raise), else skipped."""
    done: set = set()
    out: list[K] = []
    for root in roots:
        if root in done or root not in deps:
            continue
        stack = [(root, iter(deps[root]))]
        active = {root}
        while stack:
            key, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                active.discard(key)
                done.add(key)
                out.append(key)
            elif step not in done and step in deps:
                if step in active:
                    if on_cycle is not None:
                        on_cycle(step)
                    continue
                active.add(step)
                stack.append((step, iter(deps[step])))
    return out


def value_key(value: Any) -> str:
    """A hashable, order-independent key for a JSON-like value (to compare and count argument values)."""
    return json.dumps(value, sort_keys=True)


class Scope:
    """One list of ops being folded (the model's top level or a block body) and the refs it outputs.

    :meth:`index` records each op's position and the last position that reads it (``_INF`` for
    outputs), which tells whether a run of ops is used only through its last op.
    """

    def __init__(self, ops: list[Op], outputs: list[str], block: Block | None = None) -> None:
        self.ops, self.outputs, self.block = ops, outputs, block

    def index(self) -> None:
        self.pos = {op.name: i for i, op in enumerate(self.ops)}
        self.last_use = [-1] * len(self.ops)
        for j, op in enumerate(self.ops):
            for r in op_refs(op):
                i = self.pos.get(base(r))
                if i is not None:
                    self.last_use[i] = max(self.last_use[i], j)
        for r in self.outputs:
            if base(r) in self.pos:
                self.last_use[self.pos[base(r)]] = _INF
        if self.block is not None and self.ops:
            self.last_use[-1] = _INF

    def rename(self, old: str, new: str, start: int = 0) -> None:
        def sub(r: str) -> str:
            b, dot, part = r.partition(".")
            return new + dot + part if b == old else r

        for op in self.ops[start:]:
            op.inputs = map_refs(op.inputs, sub)
        for op in self.ops:
            if op.share_of == old:
                op.share_of = new
        self.outputs[:] = [sub(r) for r in self.outputs]
