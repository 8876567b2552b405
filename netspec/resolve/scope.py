"""One scope of the resolver (the model or a block instance): node names, repeat counts, dependency order."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from ..errors import NetspecError, ResolveError, hint_for, short
from ..graph import Ref, Value
from ..expressions.interp import UNKNOWN
from ..source.loader import SourceMap
from .chain import scope_chain
from .structure import MAX_REPEAT

# Used with fullmatch only: a ref is the whole string (``x\n`` is no ref to ``x``).
REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))?")


def snake_case(name: str) -> str:
    """Keras's own rule for default layer names: ``Conv2D`` -> ``conv2d``, ``ReLU`` -> ``re_lu``."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``, ... : the first not in ``taken``."""
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    return out


@dataclass
class Ctx:
    """One scope: the model's top level or one block instance."""

    names: Mapping[str, Any]
    bindings: dict[str, Value]
    prefix: str
    scope: tuple[str, ...]
    nodes_path: tuple
    default_in: Value | None
    stack: tuple[str, ...] = ()
    note: str | None = None
    # Repeated nodes of this scope and their counts, for "down_9 is out of range" errors.
    counts: dict[str, int] = field(default_factory=dict)
    # Repeats with `chain:`: node name -> its instances' names; instance name -> (its whole output, or
    # None when `when:` left it out, and its chained output). `down.skip` reads every instance's.
    chained: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, tuple[Value | None, Value]] = field(default_factory=dict)


class Resolving(Protocol):
    """What naming, ordering and block expansion need of the resolver (``resolver.Resolver`` is one).

    Attributes:
        src: the document's source map, to locate errors.
        blocks: the spec's ``blocks:`` definitions by name.
    """

    src: SourceMap
    blocks: dict

    @property
    def spec_params(self) -> Mapping[str, Any]:
        """The spec's resolved params (overrides included)."""
        ...

    def error(self, message: str, path: tuple, *, key: bool = False, hint: str | None = None,
              ctx: Ctx | None = None, cls: type[NetspecError] = ResolveError) -> NetspecError:
        """A located error (not raised), with the scope's note appended to ``message``."""
        ...

    def value(self, raw: Any, path: tuple, names: Mapping[str, Any], ctx: Ctx | None,
              *, allow_deferred: bool = False) -> Any:
        """``raw`` with its ``$name``/``${...}`` interpolated in ``names``."""
        ...

    def lookup(self, text: Any, ctx: Ctx, path: tuple) -> Value:
        """The Value a ref names in ``ctx``."""
        ...

    def expand_scope(self, ctx: Ctx, raw_nodes: list) -> Value | None:
        """Expand a list of nodes in ``ctx``; the Value of its last node."""
        ...


@dataclass
class Entry:
    """One written node of a scope, before expansion."""

    index: int
    raw: dict
    path: tuple
    name: str
    count: int | None  # repeat count, None when not repeated
    deps: list[int] = field(default_factory=list)


def name_entries(res: Resolving, ctx: Ctx, raw_nodes: list) -> list[Entry]:
    """The scope's nodes with their names (written or generated) and repeat counts; clashes are errors."""
    entries: list[Entry] = []
    counters: dict[str, int] = {}
    taken: dict[str, tuple] = {name: () for name in ctx.bindings}
    for k, raw in enumerate(raw_nodes):
        path = ctx.nodes_path + (k,)
        written = raw.get("name")
        if written is None:
            base = snake_case(raw.get("type") or raw.get("block") or ("expr" if "expr" in raw else "share"))
            n = counters.get(base, 0)
            counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
        else:
            name = written
        count = None
        if "repeat" in raw:
            count = res.value(raw["repeat"], path + ("repeat",), scope_chain({"in_shape": UNKNOWN}, ctx.names), ctx)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
                raise res.error(f"repeat must be an integer from 0 to {MAX_REPEAT}. Received: repeat={short(count)}",
                                path + ("repeat",), ctx=ctx)
        if count is not None:
            ctx.counts[name] = count
        names = [name] + ([f"{name}_{i}" for i in range(count)] if count else [])
        for each in names:
            if each in taken:
                first = taken[each]
                where = "an input" if not first else f"the node at line {res.src.value(first).line}"
                what = f"the name {each!r}" if each == written else f"the generated name {each!r} of this node"
                raise res.error(f"{what} is already used by {where}"
                                + ("" if written else "; give this node a name"),
                                path + (("name",) if written else ()), ctx=ctx)
            taken[each] = path
        entries.append(Entry(k, raw, path, name, count))
    return entries


def order_entries(res: Resolving, ctx: Ctx, entries: list[Entry]) -> list[int]:
    """A topological order of the scope's entries (stable in list order); cycles are errors."""
    owner: dict[str, int] = {}
    for e in entries:
        owner[e.name] = e.index
        for i in range(e.count or 0):
            owner[f"{e.name}_{i}"] = e.index
    for e in entries:
        refs: list[tuple[Any, tuple]] = []
        if "in" in e.raw:
            refs += _refs_of(e.raw["in"], e.path + ("in",))
        elif e.index > 0:
            e.deps.append(e.index - 1)
        if "else" in e.raw:
            refs.append((e.raw["else"], e.path + ("else",)))
        if "share" in e.raw:
            refs.append((e.raw["share"], e.path + ("share",)))
        for raw_text, path in refs:
            for text in _instance_texts(res, ctx, e, raw_text, path):
                m = REF.fullmatch(text) if isinstance(text, str) else None
                if m and m.group(1) in owner:
                    if owner[m.group(1)] == e.index:
                        raise res.error(f"node {e.name!r} refers to itself", path, ctx=ctx)
                    e.deps.append(owner[m.group(1)])
                elif m and m.group(1) not in ctx.bindings:
                    raise unknown_ref(res, ctx, m.group(1), path, list(owner) + list(ctx.bindings))
                else:
                    res.lookup(text, ctx, path)  # an input ref: checks the .K / .name part
    users: dict[int, list[int]] = {e.index: [] for e in entries}
    missing = {e.index: len(set(e.deps)) for e in entries}
    for e in entries:
        for d in set(e.deps):
            users[d].append(e.index)
    ready = [k for k, n in missing.items() if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users[k]:
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(entries):
        raise _cycle(res, ctx, entries, {k for k, n in missing.items() if n > 0})
    return order


def _instance_texts(res: Resolving, ctx: Ctx, e: Entry, raw: Any, path: tuple) -> list[Any]:
    """A ref as written, evaluated for every instance of a repeated node when it uses ``${i}``
    (``skip: "down_${levels - 1 - i}.skip"``), else once."""
    if e.count is None or not (isinstance(raw, str) and "$" in raw) or path[len(e.path)] not in ("in", "else"):
        return [res.value(raw, path, ctx.names, ctx)]
    return [res.value(raw, path, scope_chain({"i": i}, ctx.names), ctx) for i in range(max(e.count, 1))]


INSTANCE = re.compile(r"(.+)_([0-9]+)")


def unknown_ref(res: Resolving, ctx: Ctx, base: str, path: tuple, known: list[str]) -> NetspecError:
    """The error for a ref name that is not bound: an instance past a repeat's count says so."""
    m = INSTANCE.fullmatch(base)
    if m and m.group(1) in ctx.counts:
        node, n = m.group(1), ctx.counts[m.group(1)]
        has = f"{n} instance{'s' * (n != 1)} ({node}_0 to {node}_{n - 1})" if n else "no instances (repeat: 0)"
        if n == 1:
            has = f"1 instance ({node}_0)"
        return res.error(f"{base!r} is out of range: {node!r} has {has}", path, ctx=ctx,
                         hint=f"instances are numbered from 0; the last is {node}_{n - 1}" if n else None)
    return res.error(f"unknown ref {base!r}", path, hint=hint_for(base, known), ctx=ctx)


def _refs_of(raw_in: Any, path: tuple) -> list[tuple[Any, tuple]]:
    """The ref strings written in an ``in`` value, with their paths."""
    if isinstance(raw_in, list):
        return [(v, path + (k,)) for k, v in enumerate(raw_in)]
    if isinstance(raw_in, dict):  # a keyword's value may be a list of refs (initial_state: [h, c])
        return [pair for k, v in raw_in.items() for pair in _refs_of(v, path + (k,))]
    return [(raw_in, path)]


def _cycle(res: Resolving, ctx: Ctx, entries: list[Entry], stuck: set[int]) -> NetspecError:
    start = min(stuck)
    seen: dict[int, int] = {}
    walk: list[int] = []
    k = start
    while k not in seen:  # every stuck entry has a stuck dependency, so this closes a loop
        seen[k] = len(walk)
        walk.append(k)
        k = next(d for d in entries[k].deps if d in stuck)
    loop = walk[seen[k]:] + [k]
    text = " -> ".join(entries[j].name for j in loop)
    first = entries[loop[0]]
    where = first.path + (("in",) if "in" in first.raw else ())
    return res.error(f"cycle in the graph: {text}", where, ctx=ctx)


def flatten(inputs) -> list[Ref] | dict[str, Ref | list[Ref]]:
    """An entry's input Values as refs: a list, or a mapping name -> one ref or a list of refs.

    A keyword bound to several tensors (a list, or a multi-output block) gets them as a list, which
    is how Keras takes ``initial_state=[h, c]``.
    """
    if isinstance(inputs, dict):
        out: dict[str, Ref | list[Ref]] = {}
        for key, value in inputs.items():
            out[key] = value.items[0][1] if len(value.items) == 1 and not value.listed else value.refs
        return out
    return [ref for value in inputs for ref in value.refs]


def first_ref(refs: list[Ref] | dict[str, Ref | list[Ref]]) -> Ref | None:
    """The first input ref (the one ``in_shape`` describes)."""
    if isinstance(refs, dict):
        first = next(iter(refs.values()), None)
        return (first[0] if first else None) if isinstance(first, list) else first
    return refs[0] if refs else None


def pass_through(res: Resolving, inputs, e: Entry, ctx: Ctx) -> Value:
    """What a node left out (``when: false``, ``repeat: 0``) passes on: its first input."""
    if isinstance(inputs, dict):
        return next(iter(inputs.values()))
    items = [item for v in inputs for item in v.items]
    if not items:
        raise res.error("node has no input to pass through", e.path, ctx=ctx)
    return Value((items[0],))
