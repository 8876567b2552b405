"""Resolve a validated document into a flat graph: params, blocks, repeat, when, refs, share, outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from .blocks import expand_block
from .chain import scope_chain
from ..errors import ExpressionError, NetspecError, ResolveError, SchemaError, hint_for, short
from ..expressions.check import check_expression
from ..graph import LAYER_NODE_KEYS, DeferredArg, Graph, InputDecl, LabelDecl, Node, Ref, ShapeOf, Value, graph_depth, unreachable
from ..expressions.cost import Cost
from ..expressions.interp import Deferred, Scope, has_interpolation, interpolate
from ..source.loader import Document, SourceMap
from ..schema.recheck import check_section
from .repeats import collective, expand_body
from .scope import REF, Ctx, Entry, first_ref, flatten, name_entries, order_entries, pass_through, unknown_ref
from .ports import model_inputs, model_outputs
from .structure import check_block_recursion, check_expansion

if TYPE_CHECKING:
    from ..schema.catalog import Catalog

MAX_NODES = 50_000
# Passes of the repeat loop over one node (layers, expressions, shares, block instances, and nodes that
# `when` leaves out): counted before expansion (structure.check_expansion) and while expanding.
MAX_INSTANCES = 2 * MAX_NODES
# Keras maps functional graphs recursively, a few Python frames per layer; past this depth a
# spec gets a clear error instead of a RecursionError.
MAX_GRAPH_DEPTH = 5_000


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

    def __init__(self, doc: Document, catalog: Catalog | None, params: Mapping[str, Any] | None, max_nodes: int,
                 max_instances: int = MAX_INSTANCES) -> None:
        self.doc = doc
        self.data = doc.data
        self.src: SourceMap = doc.source
        self.catalog = catalog
        self.overrides = dict(params or {})
        self.max_nodes = max_nodes
        self.max_instances = max_instances
        self.instances = 0  # the running count behind check_expansion's estimate
        self.blocks: dict = self.data.get("blocks") or {}
        self.spec_params: dict[str, Any] = {}  # the resolved params, set by run()
        self.nodes: list[Node] = []
        self.flat: dict[str, Node | InputDecl] = {}
        self.records: dict[tuple[int, str], list[Node]] = {}  # (id(entry raw), scope prefix) -> nodes made
        self.share: _Share | None = None
        self.cost = Cost()  # one size and work accountant for every ${} of the spec
        self.output_labels: dict[str, LabelDecl] = {}  # by output name: ``labels:`` in ``outputs:`` (resolve.ports)

    # -- errors ---------------------------------------------------------------------------

    def error(self, message: str, path: tuple, *, key: bool = False, hint: str | None = None,
              ctx: Ctx | None = None, cls: type[NetspecError] = ResolveError) -> NetspecError:
        """A located error (not raised), with the scope's note appended to ``message``."""
        loc = self.src.key(path) if key else self.src.value(path)
        if ctx is not None and ctx.note:
            message = f"{message} ({ctx.note})"
        return cls(message, path=path, location=loc, hint=hint)

    def _expr_error(self, e: ExpressionError, path: tuple, raw: Any, ctx: Ctx | None) -> NetspecError:
        offset = e.offset
        loc = self.src.inside(path, offset) if isinstance(raw, str) else self.src.value(path)
        message = e.message + (f" ({ctx.note})" if ctx is not None and ctx.note else "")
        return ExpressionError(message, path=path, location=loc, hint=e.hint)

    # -- values -------------------------------------------------------------------------------

    def value(self, raw: Any, path: tuple, names: Mapping[str, Any], ctx: Ctx | None,
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

    def _interp(self, raw: Any, path: tuple, names: Mapping[str, Any], ctx: Ctx | None) -> Any:
        # Nesting is bounded by the loader's depth cap, so this recursion is too.
        if isinstance(raw, str):
            if not has_interpolation(raw):
                return raw
            scope = Scope(names, self._shape_probe(ctx, path), self.cost)
            try:
                return interpolate(raw, scope)
            except ExpressionError as e:
                raise self._expr_error(e, path, raw, ctx) from None
        if isinstance(raw, list):
            return [self._interp(v, path + (k,), names, ctx) for k, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self._interp(v, path + (k,), names, ctx) for k, v in raw.items()}
        return raw

    def _shape_probe(self, ctx: Ctx | None, path: tuple) -> Callable[[str], Any]:
        def probe(ref: str) -> Any:
            if ctx is None:
                raise self.error("shape() is only available inside nodes", path)
            self.lookup(ref, ctx, path)  # a wrong ref is an error now, not at build time
            raise Deferred(ref)
        return probe

    # -- params ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The spec's params in order, each evaluated in the ones above it, ``--set`` overrides applied."""
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

    def lookup(self, text: Any, ctx: Ctx, path: tuple) -> Value:
        """The Value a ref names in ``ctx``."""
        m = REF.fullmatch(text) if isinstance(text, str) else None
        if not m:
            raise self.error(f"expected a ref (name, name.K or name.output). Received: {short(text)}", path, ctx=ctx)
        base, part = m.group(1), m.group(2)
        if base not in ctx.bindings:
            raise unknown_ref(self, ctx, base, path, list(ctx.bindings))
        if part is None:
            return ctx.bindings[base]
        if base in ctx.chained:
            return collective(self, ctx, base, part, path)
        if base in ctx.outputs:  # one instance of a chained repeat: all its outputs (when: false passes one)
            whole, chained = ctx.outputs[base]
            return chained if whole is None else self.pick(base, whole, part, ctx, path)
        return self.pick(base, ctx.bindings[base], part, ctx, path)

    def pick(self, base: str, value: Value, part: str, ctx: Ctx, path: tuple) -> Value:
        """One output (``.K`` or ``.out_name``) of the Value a ref's name binds."""
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

    # -- scopes -----------------------------------------------------------------------------

    def expand_scope(self, ctx: Ctx, raw_nodes: list) -> Value | None:
        """Expand a list of nodes in ``ctx``; returns the Value of the last node (list order)."""
        entries = name_entries(self, ctx, raw_nodes)
        order = order_entries(self, ctx, entries)
        values: dict[int, Value] = {}
        by_name = {e.name: e for e in entries}  # names are unique in a scope (name_entries checks)
        for k in order:
            values[k] = self._expand_entry(ctx, entries[k], entries, values, by_name)
        return values[len(entries) - 1] if entries else None

    # -- entries ---------------------------------------------------------------------------------

    def _inputs(self, ctx: Ctx, e: Entry, entries: list[Entry], values: dict[int, Value],
                names: Mapping[str, Any] | None = None):
        """The entry's inputs: a list of Values, or a mapping name -> Value; ``in:`` is evaluated in
        ``names`` (a repeated node's: with its instance's ``i``)."""
        if names is None:
            names = scope_chain({"i": 0}, ctx.names) if e.count is not None else ctx.names
        if "in" not in e.raw:
            if e.index > 0:
                return [values[e.index - 1]]
            if ctx.default_in is None:
                many = "the model has several inputs" if not ctx.scope else "the block has several inputs"
                raise self.error(f"the first node needs 'in:' because {many}", e.path, ctx=ctx)
            return [ctx.default_in]
        raw_in = e.raw["in"]
        if isinstance(raw_in, dict):
            return {k: self._keyword_value(ctx, v, e.path + ("in", k), names) for k, v in raw_in.items()}
        items = raw_in if isinstance(raw_in, list) else [raw_in]
        sub = (lambda k: e.path + ("in", k)) if isinstance(raw_in, list) else (lambda k: e.path + ("in",))
        return [self.lookup(self.value(v, sub(k), names, ctx), ctx, sub(k)) for k, v in enumerate(items)]

    def _keyword_value(self, ctx: Ctx, raw: Any, path: tuple, names: Mapping[str, Any]) -> Value:
        """One value of an ``in:`` mapping: a ref, or a list of refs bound as one list (``[enc.1, enc.2]``)."""
        if isinstance(raw, list):
            items = [item for k, v in enumerate(raw)
                     for item in self.lookup(self.value(v, path + (k,), names, ctx), ctx, path + (k,)).items]
            return Value(tuple(items), listed=True)
        return self.lookup(self.value(raw, path, names, ctx), ctx, path)

    def _expand_entry(self, ctx: Ctx, e: Entry, entries: list[Entry], values: dict[int, Value],
                      by_name: dict[str, Entry]) -> Value:
        inputs = self._inputs(ctx, e, entries, values)
        raw = e.raw
        if "share" in raw:
            return self._expand_share(ctx, e, inputs, by_name)
        key = id(raw), ctx.prefix
        made_before = len(self.nodes)
        value = self._expand_body(ctx, e, raw, e.name, inputs)
        self.records[key] = self.nodes[made_before:]
        return value

    def _expand_body(self, ctx: Ctx, e: Entry, raw: dict, name: str, inputs) -> Value:
        return expand_body(self, ctx, e, raw, name, inputs)

    def _expand_share(self, ctx: Ctx, e: Entry, inputs, by_name: dict[str, Entry]) -> Value:
        target_text = self.value(e.raw["share"], e.path + ("share",), ctx.names, ctx)
        target = by_name.get(target_text) if isinstance(target_text, str) else None
        if target is None or "share" in target.raw and target is e:
            raise self.error(f"share needs a node of this scope; {short(target_text)} is not one",
                             e.path + ("share",), hint=hint_for(target_text, list(by_name)), ctx=ctx)
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
                shadow = Entry(target.index, target.raw, target.path, inst, target.count)
                last = self._expand_body(ctx, shadow, target.raw, inst, current)
            finally:
                self.share = outer
            if e.count is not None:
                ctx.bindings[inst] = last
            current = [last]
        self.records[(id(e.raw), ctx.prefix)] = self.nodes[made_before:]
        ctx.bindings[e.name] = last if last is not None else pass_through(self, inputs, e, ctx)
        return ctx.bindings[e.name]

    def _instance(self, ctx: Ctx, e: Entry, raw: dict, inst: str, inputs, names) -> Value:
        flat = ctx.prefix + inst
        if "block" in raw:
            return self._block(ctx, e, raw, flat, inputs, names)
        refs = flatten(inputs)
        local = scope_chain({"in_shape": ShapeOf(first_ref(refs))}, names)
        if "expr" in raw:
            if isinstance(refs, list) and len(refs) > 1:
                raise self.error("an expression with several inputs names them with an 'in:' mapping",
                                 e.path + ("in",), ctx=ctx)
            for key, bound in (refs.items() if isinstance(refs, dict) else ()):
                if isinstance(bound, list):
                    raise self.error(f"expression variable {key!r} names {len(bound)} tensors; an expression "
                                     "variable is one tensor (name one: ref.K or ref.out_name)",
                                     e.path + ("in", key), ctx=ctx)
            text = raw["expr"]
            variables: dict[str, Ref | list[Ref]] = (dict(refs)
                                         if isinstance(refs, dict) else {"x": refs[0]})
            node = Node(flat, "expr", None, {}, variables, e.path, self.src.value(e.path), ctx.scope, expr=text,
                        expr_names=local, instance_note=ctx.note)
            try:
                check_expression(text, list(variables), local)
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

    def _layer(self, ctx: Ctx, e: Entry, raw: dict, flat: str, refs, names) -> Node:
        type_name = raw["type"]
        catalog = self.catalog
        assert catalog is not None, "resolve() always has a catalog; only resolve_section() has none"
        if not catalog.known(type_name):
            raise self.error(f"unknown layer type {short(type_name)}", e.path + ("type",),
                             hint=hint_for(type_name, catalog.names()), ctx=ctx)
        if isinstance(refs, list):
            self._check_named_inputs(ctx, e, type_name, refs)
        args: dict[str, Any] = {}
        changed = False
        for key, raw_value in raw.items():
            if key in LAYER_NODE_KEYS:
                continue
            args[key] = self.value(raw_value, e.path + (key,), names, ctx, allow_deferred=True)
            changed = changed or args[key] is not raw_value
        # The document's schema pass already checked arguments written as plain values (core layers);
        # only interpolated ones, and user layers, need a check now.
        if self.share is None and (changed or not catalog.is_core(type_name)):
            issues = catalog.check_args(type_name, args)
            if issues:
                best, more = issues
                path = e.path + tuple(best.path)
                raise SchemaError(best.message + (f" ({ctx.note})" if ctx.note else ""), path=path,
                                  location=self.src.key(path) if best.at_key else self.src.value(path),
                                  hint=best.hint, more=more)
        return Node(flat, "layer", type_name, args, refs, e.path, self.src.value(e.path), ctx.scope,
                    instance_note=ctx.note)

    def _check_named_inputs(self, ctx: Ctx, e: Entry, type_name: str, refs: list[Ref]) -> None:
        """A layer whose call takes named tensors (MultiHeadAttention) given a list or one ref: say the form."""
        from ..schema.catalog import named_inputs_hint

        written = e.raw.get("in")
        items = written if isinstance(written, list) else [written] if written is not None else []
        given = [v for v in items if isinstance(v, str)]
        found = named_inputs_hint(type_name, given if len(given) == len(items) and given else ["x"] * len(refs))
        if found is not None:
            raise self.error(found[0], e.path + ("in",) if "in" in e.raw else e.path, hint=found[1], ctx=ctx)

    def _add(self, node: Node, ctx: Ctx) -> None:
        if node.name in self.flat:
            other = self.flat[node.name]
            raise self.error(f"layer name {node.name!r} is made twice (also at line {other.location.line}); "
                             "rename the node or the block instance", node.path, ctx=ctx)
        if len(self.nodes) >= self.max_nodes:
            raise self.error(f"the graph has more than {self.max_nodes} layers", node.path, ctx=ctx)
        self.flat[node.name] = node
        self.nodes.append(node)

    def _block(self, ctx: Ctx, e: Entry, raw: dict, flat: str, inputs, names) -> Value:
        return expand_block(self, ctx, e, raw, flat, inputs, names)

    # -- model ------------------------------------------------------------------------------------

    def run(self) -> Graph:
        """Resolve the whole document (see :func:`resolve`)."""
        self.spec_params = self.params()
        check_block_recursion(self.blocks, self.error)
        check_expansion(self.data.get("nodes") or [], self.blocks, self.spec_params, self.max_nodes,
                        self.max_instances, self.value, self.error)
        inputs, bindings = model_inputs(self)
        ctx = Ctx(self.spec_params, bindings, "", (), ("nodes",),
                   next(iter(bindings.values())) if len(bindings) == 1 else None)
        last = self.expand_scope(ctx, self.data["nodes"])
        outputs, form = model_outputs(self, ctx, last)
        graph = Graph(self.data["name"], self.data.get("description"), inputs, self.nodes, outputs, form,
                      self.spec_params)
        graph.labels = self.output_labels
        depth = graph_depth(graph)
        if depth > MAX_GRAPH_DEPTH:
            deepest = graph.nodes[-1]
            raise ResolveError(f"the graph is {depth} layers deep; netspec builds graphs up to {MAX_GRAPH_DEPTH} "
                               "deep (Keras maps graphs recursively)", path=deepest.path, location=deepest.location)
        graph.warnings = unreachable(graph)
        return graph


def _needs_interp(raw: Any) -> bool:
    if isinstance(raw, str):
        return "$" in raw
    if isinstance(raw, list):
        return any(_needs_interp(v) for v in raw)
    if isinstance(raw, dict):
        return any(_needs_interp(v) for v in raw.values())
    return False


def resolve(doc: Document, catalog: Catalog, params: Mapping[str, Any] | None = None, *, max_nodes: int = MAX_NODES,
            max_instances: int | None = None) -> Graph:
    """Resolve a schema-valid document into a flat :class:`Graph`.

    Args:
        doc: the loaded document.
        catalog: the layer catalogue (core and user layer types, argument checks).
        params: overrides for the spec's params (``--set``).
        max_nodes: cap on the number of layers.
        max_instances: cap on node instances expanded (default: twice ``max_nodes``).

    Returns:
        The graph; shape-dependent values are left as :class:`DeferredArg`.

    Raises:
        NetspecError: on any unresolvable name, ref, param, block or cycle.
    """
    return Resolver(doc, catalog, params, max_nodes, 2 * max_nodes if max_instances is None else max_instances).run()


def resolve_section(doc: Document, params: Mapping[str, Any], key: str) -> Any:
    """A top-level section (``train``, ``export``) with its ``$name``/``${...}`` evaluated, and
    the result re-checked against the section's schema (``netspec.schema.recheck``).

    Args:
        doc: the loaded document.
        params: the spec's resolved params (``Graph.params``, overrides included).
        key: the top-level key.

    Returns:
        The section as plain data, or None when the spec has none.

    Raises:
        NetspecError: an interpolation fails or uses shapes; located in the section.
        SchemaError: an interpolated value is not what the schema accepts there.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    if key not in data:
        return None
    value = Resolver(doc, None, None, 0).value(data[key], (key,), params, None)
    check_section(doc, key, value)  # a ${...} result must be what a literal there must be
    return value
