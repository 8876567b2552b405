"""Resolve a validated document into a flat graph: params, blocks, repeat, when, refs, share, outputs."""

from __future__ import annotations

import heapq
import re
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ExpressionError, NetspecError, ResolveError, SchemaError, hint_for, short
from .exprcheck import check_expression
from .graph import LAYER_NODE_KEYS, NODE_KEYS, DeferredArg, Graph, InputDecl, Node, Ref, ShapeOf, Value, graph_depth
from .interp import UNKNOWN, Deferred, Scope, has_interpolation, interpolate
from .loader import Document, SourceMap
from .structure import MAX_REPEAT, check_block_recursion, check_size_floor

MAX_NODES = 50_000
MAX_BLOCK_DEPTH = 32
# Keras maps functional graphs recursively, a few Python frames per layer; past this depth a
# spec gets a clear error instead of a RecursionError.
MAX_GRAPH_DEPTH = 5_000

_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))?\Z")


def snake_case(name: str) -> str:
    """Keras's own rule for default layer names: ``Conv2D`` -> ``conv2d``, ``ReLU`` -> ``re_lu``."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class _Ctx:
    """One scope: the model's top level or one block instance."""

    names: Mapping[str, Any]
    bindings: dict[str, Value]
    prefix: str
    scope: tuple[str, ...]
    nodes_path: tuple
    default_in: Value | None
    stack: tuple[str, ...] = ()
    note: str | None = None


@dataclass
class _Entry:
    index: int
    raw: dict
    path: tuple
    name: str
    count: int | None  # repeat count, None when not repeated
    deps: list[int] = field(default_factory=list)


class _Share:
    """Share mode: layers made while re-expanding a target reuse the target's layers, in order."""

    def __init__(self, originals: list[Node]) -> None:
        self.originals = originals
        self.k = 0

    def next(self) -> Node:
        node = self.originals[self.k]
        self.k += 1
        return node


class Resolver:
    """Turns a validated document into a :class:`Graph`. Use :func:`resolve`."""

    def __init__(self, doc: Document, catalog, params: Mapping[str, Any] | None, max_nodes: int) -> None:
        self.doc = doc
        self.data = doc.data
        self.src: SourceMap = doc.source
        self.catalog = catalog
        self.overrides = dict(params or {})
        self.max_nodes = max_nodes
        self.blocks: dict = self.data.get("blocks") or {}
        self.nodes: list[Node] = []
        self.flat: dict[str, Node | InputDecl] = {}
        self.records: dict[int, list[Node]] = {}  # id(entry raw) + scope -> nodes made
        self.share: _Share | None = None

    # -- errors ---------------------------------------------------------------------------

    def error(self, message: str, path: tuple, *, key: bool = False, hint: str | None = None,
              ctx: _Ctx | None = None, cls=ResolveError) -> NetspecError:
        loc = self.src.key(path) if key else self.src.value(path)
        if ctx is not None and ctx.note:
            message = f"{message} ({ctx.note})"
        return cls(message, path=path, location=loc, hint=hint)

    def _expr_error(self, e: ExpressionError, path: tuple, raw: Any, ctx: _Ctx | None) -> NetspecError:
        offset = getattr(e, "offset", 0)
        loc = self.src.inside(path, offset) if isinstance(raw, str) else self.src.value(path)
        message = e.message + (f" ({ctx.note})" if ctx is not None and ctx.note else "")
        return ExpressionError(message, path=path, location=loc, hint=e.hint)

    # -- values -------------------------------------------------------------------------------

    def value(self, raw: Any, path: tuple, names: Mapping[str, Any], ctx: _Ctx | None,
              *, allow_deferred: bool = False) -> Any:
        """Interpolate ``$name``/``${...}`` in ``raw`` (recursively); shape-dependent parts defer."""
        if not _needs_interp(raw):
            return raw
        try:
            return self._interp(raw, path, names, ctx)
        except Deferred:
            if not allow_deferred:
                raise self.error("this value is needed before shapes are known, so it cannot use "
                                 "in_shape, shape() or values derived from them", path, ctx=ctx) from None
            return DeferredArg(raw, names, ctx.bindings if ctx else {}, path)

    def _interp(self, raw: Any, path: tuple, names: Mapping[str, Any], ctx: _Ctx | None) -> Any:
        # Nesting is bounded by the loader's depth cap, so this recursion is too.
        if isinstance(raw, str):
            if not has_interpolation(raw):
                return raw
            scope = Scope(names, self._shape_probe(ctx, path))
            try:
                return interpolate(raw, scope)
            except ExpressionError as e:
                raise self._expr_error(e, path, raw, ctx) from None
        if isinstance(raw, list):
            return [self._interp(v, path + (k,), names, ctx) for k, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self._interp(v, path + (k,), names, ctx) for k, v in raw.items()}
        return raw

    def _shape_probe(self, ctx: _Ctx | None, path: tuple):
        def probe(ref: str):
            if ctx is None:
                raise self.error("shape() is only available inside nodes", path)
            self.lookup(ref, ctx, path)  # a wrong ref is an error now, not at build time
            raise Deferred(ref)
        return probe

    # -- params ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        raw = self.data.get("params") or {}
        for key in self.overrides:
            if key not in raw:
                raise ResolveError(f"--set names an unknown param {key!r}", path=("params",),
                                   location=self.src.value(("params",)), hint=hint_for(key, raw))
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key in self.overrides:
                out[key] = self.overrides[key]
                continue
            try:
                out[key] = self.value(value, ("params", key), out, None)
            except NetspecError as e:
                later = [name for name in list(raw)[list(raw).index(key) + 1:] if f"'{name}'" in e.message]
                if later and e.hint is None:
                    e.hint = f"params are evaluated in order; move {later[0]!r} above {key!r}"
                raise
        return out

    # -- refs -----------------------------------------------------------------------------------

    def lookup(self, text: Any, ctx: _Ctx, path: tuple) -> Value:
        """The Value a ref names in ``ctx``."""
        m = _REF.match(text) if isinstance(text, str) else None
        if not m:
            raise self.error(f"expected a ref (name, name.K or name.output). Received: {short(text)}", path, ctx=ctx)
        base, part = m.group(1), m.group(2)
        if base not in ctx.bindings:
            raise self.error(f"unknown ref {base!r}", path, hint=hint_for(base, ctx.bindings), ctx=ctx)
        value = ctx.bindings[base]
        if part is None:
            return value
        if part.isdigit():
            k = int(part)
            if len(value.items) == 1 and value.items[0][1].index is None and value.items[0][0] is None:
                return Value(((None, Ref(value.items[0][1].node, k)),))
            if k >= len(value.items):
                raise self.error(f"{base!r} has {len(value.items)} outputs; index {k} is out of range", path, ctx=ctx)
            return Value((value.items[k],))
        for name, ref in value.items:
            if name == part:
                return Value(((name, ref),))
        outs = [n for n, _ in value.items if n]
        raise self.error(f"{base!r} has no output {part!r}" + (f"; it has {', '.join(outs)}" if outs else ""),
                         path, hint=hint_for(part, outs), ctx=ctx)

    def _refs_of(self, raw_in: Any, path: tuple, ctx: _Ctx) -> list[tuple[str, tuple]]:
        """The ref strings written in an ``in``/``else`` value, with their paths (for ordering)."""
        if isinstance(raw_in, list):
            return [(v, path + (k,)) for k, v in enumerate(raw_in)]
        if isinstance(raw_in, dict):
            return [(v, path + (k,)) for k, v in raw_in.items()]
        return [(raw_in, path)]

    # -- scopes -----------------------------------------------------------------------------

    def expand_scope(self, ctx: _Ctx, raw_nodes: list) -> Value | None:
        """Expand a list of nodes in ``ctx``; returns the Value of the last node (list order)."""
        entries = self._name_entries(ctx, raw_nodes)
        order = self._order(ctx, entries)
        values: dict[int, Value] = {}
        for k in order:
            values[k] = self._expand_entry(ctx, entries[k], entries, values)
        return values[len(entries) - 1] if entries else None

    def _name_entries(self, ctx: _Ctx, raw_nodes: list) -> list[_Entry]:
        entries: list[_Entry] = []
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
                count = self.value(raw["repeat"], path + ("repeat",), ChainMap({"in_shape": UNKNOWN}, ctx.names), ctx)
                if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
                    raise self.error(f"repeat must be an integer from 0 to {MAX_REPEAT}. Received: repeat={short(count)}",
                                     path + ("repeat",), ctx=ctx)
            names = [name] + ([f"{name}_{i}" for i in range(count)] if count else [])
            for each in names:
                if each in taken:
                    first = taken[each]
                    where = "an input" if not first else f"the node at line {self.src.value(first).line}"
                    what = f"the name {each!r}" if each == written else f"the generated name {each!r} of this node"
                    raise self.error(f"{what} is already used by {where}"
                                     + ("" if written else "; give this node a name"),
                                     path + (("name",) if written else ()), ctx=ctx)
                taken[each] = path
            entries.append(_Entry(k, raw, path, name, count))
        return entries

    def _order(self, ctx: _Ctx, entries: list[_Entry]) -> list[int]:
        """A topological order of the scope's entries (stable in list order); cycles are errors."""
        owner: dict[str, int] = {}
        for e in entries:
            owner[e.name] = e.index
            for i in range(e.count or 0):
                owner[f"{e.name}_{i}"] = e.index
        for e in entries:
            refs: list[tuple[Any, tuple]] = []
            if "in" in e.raw:
                refs += self._refs_of(e.raw["in"], e.path + ("in",), ctx)
            elif e.index > 0:
                e.deps.append(e.index - 1)
            if "else" in e.raw:
                refs.append((e.raw["else"], e.path + ("else",)))
            if "share" in e.raw:
                refs.append((e.raw["share"], e.path + ("share",)))
            for text, path in refs:
                text = self.value(text, path, ctx.names, ctx)
                m = _REF.match(text) if isinstance(text, str) else None
                if m and m.group(1) in owner:
                    if owner[m.group(1)] == e.index:
                        raise self.error(f"node {e.name!r} refers to itself", path, ctx=ctx)
                    e.deps.append(owner[m.group(1)])
                elif m and m.group(1) not in ctx.bindings:
                    raise self.error(f"unknown ref {m.group(1)!r}", path, ctx=ctx,
                                     hint=hint_for(m.group(1), list(owner) + list(ctx.bindings)))
                else:
                    self.lookup(text, ctx, path)  # an input ref: checks the .K / .name part
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
            raise self._cycle(ctx, entries, {k for k, n in missing.items() if n > 0})
        return order

    def _cycle(self, ctx: _Ctx, entries: list[_Entry], stuck: set[int]) -> NetspecError:
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
        return self.error(f"cycle in the graph: {text}", where, ctx=ctx)

    # -- entries ---------------------------------------------------------------------------------

    def _inputs(self, ctx: _Ctx, e: _Entry, entries: list[_Entry], values: dict[int, Value]):
        """The entry's inputs: a list of Values, or a mapping name -> Value."""
        if "in" not in e.raw:
            if e.index > 0:
                return [values[e.index - 1]]
            if ctx.default_in is None:
                many = "the model has several inputs" if not ctx.scope else "the block has several inputs"
                raise self.error(f"the first node needs 'in:' because {many}", e.path, ctx=ctx)
            return [ctx.default_in]
        raw_in = e.raw["in"]
        if isinstance(raw_in, dict):
            return {k: self.lookup(self.value(v, e.path + ("in", k), ctx.names, ctx), ctx, e.path + ("in", k))
                    for k, v in raw_in.items()}
        items = raw_in if isinstance(raw_in, list) else [raw_in]
        sub = (lambda k: e.path + ("in", k)) if isinstance(raw_in, list) else (lambda k: e.path + ("in",))
        return [self.lookup(self.value(v, sub(k), ctx.names, ctx), ctx, sub(k)) for k, v in enumerate(items)]

    def _expand_entry(self, ctx: _Ctx, e: _Entry, entries: list[_Entry], values: dict[int, Value]) -> Value:
        inputs = self._inputs(ctx, e, entries, values)
        raw = e.raw
        if "share" in raw:
            return self._expand_share(ctx, e, inputs, entries)
        key = id(raw), ctx.prefix
        made_before = len(self.nodes)
        value = self._expand_body(ctx, e, raw, e.name, inputs)
        self.records[key] = self.nodes[made_before:]
        return value

    def _expand_body(self, ctx: _Ctx, e: _Entry, raw: dict, name: str, inputs) -> Value:
        """Repeat and when around one node: instance k takes instance k-1's output."""
        count = e.count if e.count is not None else 1
        current = inputs
        last: Value | None = None
        for i in range(count):
            inst = f"{name}_{i}" if e.count is not None else name
            # in_shape is named here only so that using it says why it cannot decide the graph.
            names = ChainMap({"i": i, "in_shape": UNKNOWN} if e.count is not None else {"in_shape": UNKNOWN}, ctx.names)
            when = True
            if "when" in raw:
                when = self.value(raw["when"], e.path + ("when",), names, ctx)
                if not isinstance(when, bool):
                    raise self.error(f"when must be a boolean. Received: when={short(when)}", e.path + ("when",), ctx=ctx)
            if when:
                last = self._instance(ctx, e, raw, inst, current, names.parents if "i" not in names.maps[0] else
                                      ChainMap({"i": i}, ctx.names))
            elif "else" in raw:
                last = self.lookup(self.value(raw["else"], e.path + ("else",), names, ctx), ctx, e.path + ("else",))
            else:
                last = _first(current, e, self, ctx)
            if e.count is not None:
                ctx.bindings[inst] = last
            current = [last]
        if last is None:  # repeat: 0 is the identity
            last = _first(inputs, e, self, ctx)
        ctx.bindings[name] = last
        return last

    def _expand_share(self, ctx: _Ctx, e: _Entry, inputs, entries: list[_Entry]) -> Value:
        target_text = self.value(e.raw["share"], e.path + ("share",), ctx.names, ctx)
        target = next((t for t in entries if t.name == target_text), None)
        if target is None or "share" in target.raw and target is e:
            raise self.error(f"share needs a node of this scope; {short(target_text)} is not one",
                             e.path + ("share",), hint=hint_for(target_text, [t.name for t in entries]), ctx=ctx)
        originals = self.records.get((id(target.raw), ctx.prefix))
        if not originals:
            raise self.error(f"node {target.name!r} made no layer to share (it was left out by when/repeat)",
                             e.path + ("share",), ctx=ctx)
        count = e.count if e.count is not None else 1
        current = inputs
        last: Value | None = None
        outer = self.share
        made_before = len(self.nodes)
        for i in range(count):
            inst = f"{e.name}_{i}" if e.count is not None else e.name
            self.share = _Share(originals)
            try:
                shadow = _Entry(target.index, target.raw, target.path, inst, target.count)
                last = self._expand_body(ctx, shadow, target.raw, inst, current)
            finally:
                self.share = outer
            if e.count is not None:
                ctx.bindings[inst] = last
            current = [last]
        self.records[(id(e.raw), ctx.prefix)] = self.nodes[made_before:]
        ctx.bindings[e.name] = last if last is not None else _first(inputs, e, self, ctx)
        return ctx.bindings[e.name]

    def _instance(self, ctx: _Ctx, e: _Entry, raw: dict, inst: str, inputs, names) -> Value:
        flat = ctx.prefix + inst
        if "block" in raw:
            return self._block(ctx, e, raw, flat, inputs, names)
        refs = _flatten(inputs)
        first = refs[0] if isinstance(refs, list) and refs else (next(iter(refs.values())) if isinstance(refs, dict) and refs else None)
        local = ChainMap({"in_shape": ShapeOf(first)}, names)
        if "expr" in raw:
            if isinstance(refs, list) and len(refs) > 1:
                raise self.error("an expression with several inputs names them with an 'in:' mapping",
                                 e.path + ("in",), ctx=ctx)
            node = Node(flat, "expr", None, {}, refs if isinstance(refs, dict) else {"x": refs[0]},
                        e.path, self.src.value(e.path), ctx.scope, expr=raw["expr"],
                        expr_names=local, instance_note=ctx.note)
            try:
                check_expression(node.expr, list(node.inputs), local)
            except ExpressionError as err:
                raise self._expr_error(err, e.path + ("expr",), raw["expr"], ctx) from None
            if "output_shape" in raw:
                node.output_shape = self.value(raw["output_shape"], e.path + ("output_shape",), local, ctx,
                                               allow_deferred=True)
        else:
            node = self._layer(ctx, e, raw, flat, refs, local)
        if "input_spec" in raw:
            node.input_spec = self.value(raw["input_spec"], e.path + ("input_spec",), local, ctx, allow_deferred=True)
        if self.share is not None:
            original = self.share.next()
            node.kind, node.share_of, node.args = "share", original.share_of or original.name, {}
        self._add(node, ctx)
        return Value(((None, Ref(flat)),))

    def _layer(self, ctx: _Ctx, e: _Entry, raw: dict, flat: str, refs, names) -> Node:
        type_name = raw["type"]
        if not self.catalog.known(type_name):
            raise self.error(f"unknown layer type {short(type_name)}", e.path + ("type",),
                             hint=hint_for(type_name, self.catalog.names()), ctx=ctx)
        args: dict[str, Any] = {}
        changed = False
        for key, raw_value in raw.items():
            if key in LAYER_NODE_KEYS:
                continue
            args[key] = self.value(raw_value, e.path + (key,), names, ctx, allow_deferred=True)
            changed = changed or args[key] is not raw_value
        # The document's schema pass already checked arguments written as plain values (core layers);
        # only interpolated ones, and user layers, need a check now.
        if self.share is None and (changed or not self.catalog.is_core(type_name)):
            issues = self.catalog.check_args(type_name, args)
            if issues:
                best, more = issues
                path = e.path + tuple(best.path)
                raise SchemaError(best.message + (f" ({ctx.note})" if ctx.note else ""), path=path,
                                  location=self.src.key(path) if best.at_key else self.src.value(path),
                                  hint=best.hint, more=more)
        return Node(flat, "layer", type_name, args, refs, e.path, self.src.value(e.path), ctx.scope,
                    instance_note=ctx.note)

    def _add(self, node: Node, ctx: _Ctx) -> None:
        if node.name in self.flat:
            other = self.flat[node.name]
            raise self.error(f"layer name {node.name!r} is made twice (also at line {other.location.line}); "
                             "rename the node or the block instance", node.path, ctx=ctx)
        if len(self.nodes) >= self.max_nodes:
            raise self.error(f"the graph has more than {self.max_nodes} layers", node.path, ctx=ctx)
        self.flat[node.name] = node
        self.nodes.append(node)

    # -- blocks ---------------------------------------------------------------------------------

    def _block(self, ctx: _Ctx, e: _Entry, raw: dict, flat: str, inputs, names) -> Value:
        bname = raw["block"]
        if bname not in self.blocks:
            raise self.error(f"unknown block {short(bname)}", e.path + ("block",), hint=hint_for(bname, self.blocks), ctx=ctx)
        if bname in ctx.stack:
            chain = " -> ".join(ctx.stack + (bname,))
            raise self.error(f"block {bname!r} instantiates itself: {chain}", e.path + ("block",), ctx=ctx)
        if len(ctx.stack) >= MAX_BLOCK_DEPTH:
            raise self.error(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep", e.path, ctx=ctx)
        bdef = self.blocks[bname]
        bpath = ("blocks", bname)
        declared = bdef.get("params") or {}
        refs = _flatten(inputs)
        first = refs[0] if isinstance(refs, list) and refs else (next(iter(refs.values()), None) if isinstance(refs, dict) else None)
        caller = ChainMap({"in_shape": ShapeOf(first)}, names)
        given = {k: v for k, v in raw.items() if k not in NODE_KEYS}
        for key in given:
            if key not in declared:
                raise self.error(f"block {bname!r} has no param {key!r}", e.path + (key,), key=True,
                                 hint=hint_for(key, declared), ctx=ctx)
        local: dict[str, Any] = {}
        spec_names = ChainMap(local, {"in_shape": ShapeOf(first)}, self.spec_params)
        for key, default in declared.items():
            if key in given:
                local[key] = self.value(given[key], e.path + (key,), caller, ctx, allow_deferred=True)
            elif default == "required":
                raise self.error(f"block {bname!r} needs param {key!r}", e.path + ("block",), ctx=ctx)
            else:
                local[key] = self.value(default, bpath + ("params", key), spec_names, ctx, allow_deferred=True)
        for key, raw_var in (bdef.get("vars") or {}).items():
            local[key] = self.value(raw_var, bpath + ("vars", key), spec_names, ctx, allow_deferred=True)
        in_names = bdef.get("inputs") or ["x"]
        bindings: dict[str, Value] = {}
        if isinstance(inputs, dict):
            for key in inputs:
                if key not in in_names:
                    raise self.error(f"block {bname!r} has no input {key!r}", e.path + ("in", key), key=True,
                                     hint=hint_for(key, in_names), ctx=ctx)
            for key in in_names:
                if key not in inputs:
                    raise self.error(f"block {bname!r} needs input {key!r}", e.path + ("in",), ctx=ctx)
                bindings[key] = inputs[key]
        else:
            flat_in = [Value((item,)) for v in inputs for item in v.items]
            if len(flat_in) != len(in_names):
                raise self.error(f"block {bname!r} takes {len(in_names)} input{'s' * (len(in_names) > 1)} "
                                 f"({', '.join(in_names)}); received {len(flat_in)}",
                                 e.path + (("in",) if "in" in raw else ()), ctx=ctx)
            bindings = dict(zip(in_names, flat_in))
        note = f"in block {bname!r}, instance {flat!r} at line {self.src.value(e.path).line}"
        child = _Ctx(spec_names, bindings, flat + "_", ctx.scope + (flat,), bpath + ("nodes",),
                     next(iter(bindings.values())) if len(bindings) == 1 else None, ctx.stack + (bname,), note)
        last = self.expand_scope(child, bdef["nodes"])
        outs = bdef.get("outputs")
        if outs is None:
            return last
        opath = bpath + ("outputs",)
        if isinstance(outs, dict):
            items = [(k, self.lookup(self.value(v, opath + (k,), spec_names, child), child, opath + (k,))) for k, v in outs.items()]
        else:
            seq = outs if isinstance(outs, list) else [outs]
            sub = (lambda k: opath + (k,)) if isinstance(outs, list) else (lambda k: opath)
            items = [(v, self.lookup(self.value(v, sub(k), spec_names, child), child, sub(k))) for k, v in enumerate(seq)]
        result: list[tuple[str | None, Ref]] = []
        for out_name, value in items:
            for _, ref in value.items:
                result.append((out_name, ref))
        return Value(tuple(result))

    # -- model ------------------------------------------------------------------------------------

    def run(self) -> Graph:
        self.spec_params = self.params()
        check_block_recursion(self.blocks, self.error)
        check_size_floor(self.data.get("nodes") or [], self.blocks, self.spec_params, self.max_nodes, self.value,
                         self.error)
        inputs, bindings = self._model_inputs()
        ctx = _Ctx(self.spec_params, bindings, "", (), ("nodes",),
                   next(iter(bindings.values())) if len(bindings) == 1 else None)
        last = self.expand_scope(ctx, self.data["nodes"])
        outputs, form = self._outputs(ctx, last)
        graph = Graph(self.data["name"], self.data.get("description"), inputs, self.nodes, outputs, form,
                      self.spec_params)
        depth = graph_depth(graph)
        if depth > MAX_GRAPH_DEPTH:
            last = graph.nodes[-1]
            raise ResolveError(f"the graph is {depth} layers deep; netspec builds graphs up to {MAX_GRAPH_DEPTH} "
                               "deep (Keras maps graphs recursively)", path=last.path, location=last.location)
        graph.warnings = _unused(graph)
        return graph

    def _model_inputs(self) -> tuple[list[InputDecl], dict[str, Value]]:
        decls: list[InputDecl] = []
        bindings: dict[str, Value] = {}
        for name, raw in self.data["inputs"].items():
            path = ("inputs", name)
            raw = {"shape": raw} if isinstance(raw, list) else raw
            spec = self.value(raw, path, self.spec_params, None)
            shape = spec.get("shape")
            if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in shape):
                raise self.error(f"an input shape is a list of positive integers or null. Received: shape={short(shape)}",
                                 path + (("shape",) if isinstance(self.data["inputs"][name], dict) else ()))
            decl = InputDecl(name, tuple(shape), spec.get("dtype") or "float32", spec.get("batch_size"),
                             bool(spec.get("sparse", False)), bool(spec.get("optional", False)), path, self.src.key(path))
            decls.append(decl)
            self.flat[name] = decl
            bindings[name] = Value(((None, Ref(name)),))
        return decls, bindings

    def _outputs(self, ctx: _Ctx, last: Value | None) -> tuple[list[tuple[str, Ref]], str]:
        outs = self.data.get("outputs")
        path = ("outputs",)
        if outs is None:
            refs = last.refs
            return [(str(r), r) for r in refs], "single" if len(refs) == 1 else "list"
        if isinstance(outs, dict):
            result = []
            for key, text in outs.items():
                value = self.lookup(self.value(text, path + (key,), self.spec_params, ctx), ctx, path + (key,))
                if len(value.items) != 1:
                    raise self.error(f"output {key!r} names {len(value.items)} tensors; name one (ref.K or ref.output)",
                                     path + (key,))
                ref = value.items[0][1]
                if key in self.flat and (key != ref.node or ref.index is not None):
                    raise self.error(f"output name {key!r} is already the name of another node or input; "
                                     "output names become layer names", path + (key,), key=True)
                result.append((key, ref))
            return result, "mapping"
        seq = outs if isinstance(outs, list) else [outs]
        result = []
        for k, text in enumerate(seq):
            p = path + (k,) if isinstance(outs, list) else path
            value = self.lookup(self.value(text, p, self.spec_params, ctx), ctx, p)
            result += [(str(r), r) for r in value.refs]
        # A list of one output is a single output: Keras users expect a tensor from predict, not [tensor].
        return result, ("list" if len(result) > 1 else "single")


def _needs_interp(raw: Any) -> bool:
    if isinstance(raw, str):
        return "$" in raw
    if isinstance(raw, list):
        return any(_needs_interp(v) for v in raw)
    if isinstance(raw, dict):
        return any(_needs_interp(v) for v in raw.values())
    return False


def _flatten(inputs) -> list[Ref] | dict[str, Ref]:
    if isinstance(inputs, dict):
        out = {}
        for key, value in inputs.items():
            out[key] = value.items[0][1] if len(value.items) == 1 else None
            if out[key] is None:
                raise ResolveError(f"input {key!r} names {len(value.items)} tensors; name one")
        return out
    return [ref for value in inputs for ref in value.refs]


def _first(inputs, e: _Entry, res: Resolver, ctx: _Ctx) -> Value:
    if isinstance(inputs, dict):
        return next(iter(inputs.values()))
    items = [item for v in inputs for item in v.items]
    if not items:
        raise res.error("node has no input to pass through", e.path, ctx=ctx)
    return Value((items[0],))


def _unused(graph: Graph) -> list[str]:
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
            if node.share_of:
                stack.append(node.share_of)
    notes = [f"node {n.name!r} (line {n.location.line}) does not reach any output; it is left out of the model"
             for n in graph.nodes if n.name not in used and n.kind != "share"]
    notes += [f"input {d.name!r} (line {d.location.line}) is not used by any output" for d in graph.inputs if d.name not in used]
    return notes


def resolve(doc: Document, catalog, params: Mapping[str, Any] | None = None, *, max_nodes: int = MAX_NODES) -> Graph:
    """Resolve a schema-valid document into a flat :class:`Graph`.

    Args:
        doc: the loaded document.
        catalog: the layer catalogue (core and user layer types, argument checks).
        params: overrides for the spec's params (``--set``).
        max_nodes: cap on the number of layers.

    Returns:
        The graph; shape-dependent values are left as :class:`DeferredArg`.

    Raises:
        NetspecError: on any unresolvable name, ref, param, block or cycle.
    """
    return Resolver(doc, catalog, params, max_nodes).run()


def resolve_section(doc: Document, params: Mapping[str, Any], key: str) -> Any:
    """A top-level section (``train``, ``export``) with its ``$name``/``${...}`` evaluated.

    Args:
        doc: the loaded document.
        params: the spec's resolved params (``Graph.params``, overrides included).
        key: the top-level key.

    Returns:
        The section as plain data, or None when the spec has none.

    Raises:
        NetspecError: an interpolation fails or uses shapes; located in the section.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    if key not in data:
        return None
    return Resolver(doc, None, None, 0).value(data[key], (key,), params, None)
