"""Compile a resolved graph into a functional Keras model; Keras's symbolic build infers the shapes."""

from __future__ import annotations

import sys

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from .. import kerasapi
from ..schema import registry
from ..budget import DEFAULT_BUDGET, Budget, allocation_guard, is_allocation_failure
from ..errors import ExpressionError, NetspecError, ShapeError, keras_message, short
from ..graph import DeferredArg, Graph, Node, Ref, ShapeOf, Value, graph_depth, has_deferred
from ..expressions.interp import Deferred, Scope, interpolate
from ..source.loader import SourceMap
from .meter import Meter

if TYPE_CHECKING:
    import keras

    from ..schema.catalog import Catalog

__all__ = ["Budget", "DEFAULT_BUDGET", "Builder", "Compiled", "Row", "build", "build_symbolic"]  # Budget: netspec.budget


@dataclass(frozen=True)
class Row:
    """One line of the ``check`` table."""

    name: str
    type: str
    shape: Any
    params: int
    line: int
    scope: tuple[str, ...] = ()
    shared: bool = False


@dataclass
class Compiled:
    """The Keras model and the per-node table."""

    model: Any
    rows: list[Row]
    layers: dict[str, Any]
    activation_bytes: int = 0  # node outputs and intermediates the budget priced, for Budget.batch samples


def _shape(tensor) -> list:
    return [None if d is None else int(d) for d in tensor.shape[1:]]


def _describe_shapes(tensors) -> str:
    if isinstance(tensors, (list, tuple)):
        return "[" + ", ".join(_describe_shapes(t) for t in tensors) + "]"
    if isinstance(tensors, dict):
        return "{" + ", ".join(f"{k}: {_describe_shapes(v)}" for k, v in tensors.items()) + "}"
    return str(tuple(tensors.shape))


class _Names(Mapping):
    """A scope's names with shape values (``in_shape``, deferred params) evaluated on demand."""

    def __init__(self, names: Mapping, builder: "Builder") -> None:
        self.names, self.builder = names, builder
        self.memo: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self.memo:
            self.memo[key] = self.builder.concrete(self.names[key])
        return self.memo[key]

    def __contains__(self, key: object) -> bool:
        return key in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class Builder:
    """Turns a resolved graph into Keras objects, node by node, mapping every failure to its node.

    The caller decides the scope: :func:`build` traces it inside a symbolic build that allocates
    only after the budget checks, :func:`build_symbolic` inside one that never allocates.
    """

    def __init__(self, graph: Graph, catalog: Catalog, source: SourceMap) -> None:
        import keras

        self.keras = keras
        self.graph, self.catalog, self.source = graph, catalog, source
        self.tensors: dict[str, Any] = {}
        self.layers: dict[str, Any] = {}
        # DeferredArg -> its value: a block's deferred vars are evaluated once per instance and build,
        # not once per use (a chain of vars that each use the two before is exponential otherwise).
        self.deferred: dict[int, tuple[DeferredArg, Any]] = {}
        self.meter: Meter | None = None  # prices intermediates before a layer is called
        self.current: Node | None = None  # the node being built, for allocation failures
        self.left_out: set[str] = set()  # nodes whose shape-dependent `when:` was false

    # -- values ----------------------------------------------------------------------------

    def tensor(self, ref: Ref, node: Node) -> Any:
        """The symbolic tensor ``ref`` names (one output of a multi-output node when indexed)."""
        value = self.tensors[ref.node]
        if ref.index is None:
            return value
        if not isinstance(value, (list, tuple)) or ref.index >= len(value):
            n = len(value) if isinstance(value, (list, tuple)) else 1
            raise self.fail(node, f"{ref} asks for output {ref.index}, but {ref.node!r} has {n} output(s)")
        return value[ref.index]

    def concrete(self, value: Any) -> Any:
        """Evaluate shape-dependent values now that shapes are known."""
        if isinstance(value, ShapeOf):
            if value.ref is None:
                raise Deferred("in_shape")
            t = self.tensors[value.ref.node]
            if value.ref.index is not None:
                t = t[value.ref.index]
            if isinstance(t, (list, tuple)):
                return [_shape(x) for x in t]
            return _shape(t)
        if isinstance(value, DeferredArg):
            hit = self.deferred.get(id(value))
            if hit is None:  # the arg is kept in the entry, so its id stays unique while the builder lives
                hit = self.deferred[id(value)] = (value, self.evaluate(value))
            return hit[1]
        return value

    def evaluate(self, arg: DeferredArg) -> Any:
        """A shape-dependent argument's value, from the shapes of the nodes built so far."""
        names = _Names(arg.names, self)

        def shape_of(text: str):
            base, _, part = text.partition(".")
            bound: Value = arg.refs[base]
            ref = bound.items[0][1]
            if part:
                ref = next((r for n, r in bound.items if n == part), None) or (
                    Ref(ref.node, int(part)) if part.isdigit() and len(bound.items) == 1 else bound.items[int(part)][1]
                )
            if ref.node not in self.tensors:
                raise ExpressionError(f"shape({text}) needs {ref.node!r}, which is built later; "
                                      "refer to nodes that come before this one")
            return self.concrete(ShapeOf(ref))

        scope = Scope(names, shape_of)
        return self._walk(arg.raw, scope, arg.path)

    def _walk(self, raw: Any, scope: Scope, path: tuple) -> Any:
        if isinstance(raw, str) and "$" in raw:
            try:
                return interpolate(raw, scope)
            except ExpressionError as e:
                offset = getattr(e, "offset", 0)
                raise ExpressionError(e.message, path=path, location=self.source.inside(path, offset),
                                      hint=e.hint) from None
            except Deferred as e:  # in_shape of a node without inputs
                raise ExpressionError(f"{e} is not known here", path=path, location=self.source.value(path)) from None
        if isinstance(raw, list):
            return [self._walk(v, scope, path + (k,)) for k, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self._walk(v, scope, path + (k,)) for k, v in raw.items()}
        return raw

    # -- errors -----------------------------------------------------------------------------

    def fail(self, node: Node, message: str, cls: type[NetspecError] = ShapeError,
             path: tuple | None = None) -> NetspecError:
        """An error (to raise) about ``node``, located at ``path`` (default: the node itself)."""
        where = f" ({node.instance_note})" if node.instance_note else ""
        path = node.path if path is None else path
        loc = self.source.value(path) if path != node.path else node.location
        return cls(f"node {node.name!r}{where}: {message}", path=path, location=loc)

    # -- objects ------------------------------------------------------------------------------

    def make_arg(self, layer_type: str, key: str, value: Any, node: Node) -> Any:
        """A layer argument as Keras takes it: object arguments (initializers, layers) built, lists as tuples."""
        kind = self.catalog.arg_kind(layer_type, key)
        if value is None:
            return None
        if kind in ("initializer", "regularizer", "constraint") and isinstance(value, dict):
            module = getattr(self.keras, kind + "s")
            allowed = self.catalog.object_types(kind)
            cls_name = value.get("type")
            if cls_name not in allowed:  # the schema refuses these already; never getattr on a free name
                raise self.fail(node, f"unknown {kind} type {short(cls_name)}", path=node.path + (key,))
            return getattr(module, cls_name)(**{k: _tuples(v) for k, v in value.items() if k != "type"})
        if kind == "layer" and isinstance(value, dict):
            return self.make_layer(value, node, node.path + (key,))
        if kind == "layers" and isinstance(value, list):
            return [self.make_layer(v, node, node.path + (key, k)) for k, v in enumerate(value)]
        return _tuples(value)

    def make_layer(self, spec: dict, node: Node, path: tuple, name: str | None = None) -> keras.Layer:
        """A layer object from a type + arguments mapping (a node, or a nested ``layer:`` argument)."""
        type_name = spec["type"]
        args = {k: v for k, v in spec.items() if k != "type"}
        if type_name in self.catalog.core:
            cls = getattr(self.keras.layers, type_name)
            kwargs = {k: self.make_arg(type_name, k, v, node) for k, v in args.items()}
        else:
            cls = registry.LAYERS[type_name]
            # Object arguments (initializers, ...) are built from the same whitelists as for core
            # layers; everything else reaches the user's class as written (lists stay lists).
            kwargs = {k: (self.make_arg(type_name, k, v, node) if isinstance(v, dict) else v) for k, v in args.items()}
        if name is not None:
            kwargs["name"] = name
        try:
            return cls(**kwargs)
        except NetspecError:
            raise
        except Exception as e:  # Keras validates arguments in __init__ with ValueError/TypeError
            if is_allocation_failure(e):
                raise  # build()'s allocation guard reports it as memory, not as the arguments
            error = self.fail(node, f"{type_name} rejected its arguments: {keras_message(e)}", cls=NetspecError, path=path)
            if type_name not in self.catalog.core and "unexpected keyword argument 'name'" in str(e):
                # the functional-API guide's CustomDense: __init__(self, units=32), no **kwargs
                error.hint = (f"give {type_name}.__init__ a **kwargs and pass it to super().__init__(**kwargs): "
                              "Keras passes every layer its name (and dtype, trainable) that way")
            raise error from None

    # -- build ------------------------------------------------------------------------------

    def inputs(self) -> None:
        """A ``keras.Input`` for every declared input."""
        keras = self.keras
        for decl in self.graph.inputs:
            kwargs: dict[str, Any] = dict(shape=decl.shape, dtype=decl.dtype, name=decl.name)
            if decl.batch_size is not None:
                kwargs["batch_size"] = decl.batch_size
            if decl.sparse:
                kwargs["sparse"] = True
            if decl.optional:
                kwargs["optional"] = True
            self.tensors[decl.name] = keras.Input(**kwargs)

    def node(self, node: Node) -> None:
        """Make ``node``'s layer (or reuse the shared one) and call it on its inputs."""
        if node.when is not None and not self._decide_when(node):
            return
        if node.kind == "expr":
            from .expression import build_expr_layer

            layer = build_expr_layer(node, self)
        elif node.kind == "share":
            assert node.share_of is not None  # the resolver names the original on every share node
            layer = self.layers[node.share_of]
        else:
            assert node.type is not None  # the resolver gives every layer node its type
            args = {k: (self.concrete(v) if isinstance(v, DeferredArg) else v) for k, v in node.args.items()}
            if any(has_deferred(v) for v in node.args.values()):
                issues = self.catalog.check_args(node.type, args)
                if issues:
                    best, _ = issues
                    raise self.fail(node, best.message, cls=NetspecError, path=node.path + tuple(best.path))
            layer = self.make_layer({"type": node.type, **args}, node, node.path, name=node.name)
        self.layers[node.name] = layer
        if node.input_spec is not None:
            from .inputspec import check_input_spec

            check_input_spec(node, self)
        call_in: Any  # keyword tensors, one tensor, or a list of them
        if isinstance(node.inputs, dict):  # a keyword bound to a list of refs takes a list of tensors
            call_in = {k: [self.tensor(x, node) for x in r] if isinstance(r, list) else self.tensor(r, node)
                       for k, r in node.inputs.items()}
            if node.kind != "expr":
                from .recurrent import check_initial_state

                check_initial_state(node, layer, call_in, self)
        else:
            seq = [self.tensor(r, node) for r in node.inputs]
            call_in = seq[0] if len(seq) == 1 else seq
        if self.meter is not None:
            self.meter.before_call(node, layer, call_in, self)
        try:
            if isinstance(call_in, dict) and node.kind == "expr":
                # In the order written: Keras flattens a mapping by sorted key, which would build (and
                # order the weights of) `in: {t: token_emb, p: pos_emb}` as p before t.
                ordered = [call_in[k] for k in node.inputs]
                out = layer(ordered[0] if len(ordered) == 1 else ordered)
            else:
                out = layer(**call_in) if isinstance(call_in, dict) else layer(call_in)
        except NetspecError:
            raise
        except Exception as e:
            if is_allocation_failure(e):
                raise  # build()'s allocation guard reports it as memory, not as the shapes
            what = node.type if node.kind == "layer" else ("shared " + layer.__class__.__name__
                                                          if node.kind == "share" else "expression")
            raise self.fail(node, f"{what} cannot take input shape {_describe_shapes(call_in)}: {keras_message(e)}") from None
        given = {id(t) for t in self.keras.tree.flatten(call_in)}
        if any(id(t) in given for t in self.keras.tree.flatten(out)):
            # Keras re-labels the input as this layer's output, which makes the graph a cycle.
            what = node.type or "this node"
            raise self.fail(node, f"{what} returns its input tensor itself when traced symbolically, so Keras "
                                  "cannot place it in a functional model; apply it outside the model")
        self.tensors[node.name] = out

    def _decide_when(self, node: Node) -> bool:
        """A shape-dependent ``when:``; a node left out passes its ``else_ref`` through and makes no layer."""
        assert node.when is not None and node.else_ref is not None  # the resolver sets both together
        decided = self.concrete(node.when)
        if not isinstance(decided, bool):
            raise self.fail(node, f"when must be a boolean. Received: when={short(decided)}", cls=NetspecError,
                            path=node.path + ("when",))
        if not decided:
            self.tensors[node.name] = self.tensor(node.else_ref, node)
            self.left_out.add(node.name)
        return decided

    def model(self) -> keras.Model:
        """The functional model of the built inputs and outputs."""
        keras = self.keras
        ins = [self.tensors[d.name] for d in self.graph.inputs]
        outs = {name: self.tensors[ref.node] if ref.index is None else self.tensors[ref.node][ref.index]
                for name, ref in self.graph.outputs}
        if self.graph.output_form == "mapping":
            # The mapping's keys are the output names everywhere; Keras names outputs after their
            # layers, so an output whose layer has another name gets an Identity named by the key.
            outputs: Any = {}
            for key, tensor in outs.items():
                if kerasapi.producer(tensor).name != key:
                    tensor = keras.layers.Identity(name=key)(tensor)
                outputs[key] = tensor
        elif self.graph.output_form == "single":
            outputs = next(iter(outs.values()))
        else:
            outputs = []
            for value in outs.values():
                outputs.extend(value if isinstance(value, (list, tuple)) else [value])
        try:
            return keras.Model(inputs=ins[0] if len(ins) == 1 else ins, outputs=outputs, name=self.graph.name)
        except Exception as e:  # every node was built; what is left is a graph Keras cannot map
            raise NetspecError(f"Keras cannot make a model of this graph: {keras_message(e)}",
                               location=self.source.value(("nodes",))) from None


def _tuples(value: Any) -> Any:
    """Lists in a spec stand for tuples in Keras arguments."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def build(graph: Graph, catalog: Catalog, source: SourceMap, budget: Budget = DEFAULT_BUDGET) -> Compiled:
    """Build the Keras model of ``graph``.

    Layers are built inside a Keras ``StatelessScope``, where variables get shapes but no memory;
    the parameter and activation budget is checked node by node, and only then are the weights
    allocated. ``Dense(10**12)`` therefore fails in milliseconds, naming its node. Hidden
    intermediates (attention scores) are priced before their layer is called, and initializer work
    (Orthogonal's QR) before the weights are initialized. An allocation that still fails (MemoryError,
    TensorFlow's ResourceExhaustedError) is a located error naming the node being built.

    Returns:
        The model, the check table and the layer objects by node name.

    Raises:
        ShapeError: a node cannot be built on the shapes it receives (names the node and shapes).
        NetspecError: a layer rejected its arguments, a shape-dependent value failed, or the
            budget is exceeded.
    """
    b = Builder(graph, catalog, source)
    meter = Meter(budget)
    # Keras maps a functional graph recursively (a few frames per layer); the resolver caps the
    # graph's depth, so raising Python's limit to fit it is bounded.
    depth = graph_depth(graph)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 8 * depth + 2000))
    b.meter = meter

    def fail(message: str) -> NetspecError:
        if b.current is None:
            return NetspecError(f"the model's weights: {message}", location=source.value(("nodes",)))
        return b.fail(b.current, message, cls=NetspecError)

    try:
        with allocation_guard(fail, "building the model"):
            return _build(b, graph, meter)
    finally:
        sys.setrecursionlimit(old_limit)


def build_symbolic(graph: Graph, catalog: Catalog, source: SourceMap) -> tuple[keras.Model, dict[str, keras.Layer]]:
    """The Keras model of ``graph`` and its layers by node name, with shapes but no allocated weights.

    For comparing architectures (``netspec import``'s check): no budget is checked and nothing is
    allocated, so the model cannot run; :func:`build` makes one that can.

    Raises:
        ShapeError, NetspecError: as :func:`build`, for a graph Keras cannot build.
    """
    b = Builder(graph, catalog, source)
    with kerasapi.symbolic_build():
        model = _trace(b, graph)
    return model, b.layers


def _trace(b: Builder, graph: Graph, meter: Meter | None = None) -> keras.Model:
    """Build every input and node, then the model (inside a symbolic build), checking ``meter`` per node."""
    b.inputs()
    for node in graph.nodes:
        b.current = node
        b.node(node)
        if meter is not None and node.name not in b.left_out:
            meter.add(node, b.layers[node.name], b.tensors[node.name], b)
    b.current = None
    return b.model()


def _build(b: Builder, graph: Graph, meter: Meter) -> Compiled:
    with kerasapi.symbolic_build(allocate=True):  # the weights are allocated once every node is within the budget
        model = _trace(b, graph, meter)
    rows = [Row(d.name, "Input", _shape(b.tensors[d.name]), 0, d.location.line) for d in graph.inputs]
    for node in graph.nodes:
        if node.name in b.left_out:
            continue  # like a `when: false` decided before shapes: no layer, no row
        out = b.tensors[node.name]
        shape = [_shape(t) for t in out] if isinstance(out, (list, tuple)) else _shape(out)
        layer = b.layers[node.name]
        shared = node.kind == "share"
        kind = node.type or ("expr" if node.kind == "expr" else layer.__class__.__name__)
        rows.append(Row(node.name, kind, shape, 0 if shared else layer.count_params(), node.location.line,
                        node.scope, shared))
    return Compiled(model, rows, b.layers, meter.bytes)
