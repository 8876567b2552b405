"""Prove an import: compile the imported spec and compare it with the source model, layer by layer,
then (models small enough, :mod:`.numbers`) by running both with the same weights.

Both models are built symbolically (Keras ``StatelessScope``: shapes, no weight memory), so a
350M-parameter model compares in seconds. Each source layer is matched to the spec node the importer
says it became, and must have the same class, the same config (name aside), the same parameter count,
the same output shapes and the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from .. import kerasapi
from ..errors import ModelImportError, short
from .args import normalize
from .calls import implicit_mask

_GENERATED_BUG = "netspec import wrote a spec that does not load (a bug in netspec; please report it)"


@dataclass
class Comparison:
    """What :func:`compare` found; ``ok`` when nothing differs."""

    layers: int = 0
    source_params: int = 0
    spec_params: int = 0
    expressions: list[str] = field(default_factory=list)  # source ops written as expr: nodes
    problems: list[str] = field(default_factory=list)
    numbers: str = ""  # what running both models found (see .numbers), or why it was not run

    @property
    def ok(self) -> bool:
        return not self.problems and self.source_params == self.spec_params

    def summary(self) -> str:
        head = (f"{self.layers} layers, {self.spec_params:,} parameters"
                + (f", {len(self.expressions)} operations as expressions" if self.expressions else ""))
        if self.ok:
            return f"same architecture as the source: {head}" + (f"; {self.numbers}" if self.numbers else "")
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        return (f"differs from the source ({self.source_params:,} vs {self.spec_params:,} parameters): "
                + "; ".join(self.problems[:5]) + more)


def load_generated(text: str, plugins: list[str], bare: str):
    """Load a spec netspec just wrote, with no more trust than the user gave.

    The plugins the user named (``netspec import --plugins``) were imported by the command itself,
    so nothing here runs any: the written ``text`` is parsed as data (netspec's safe YAML loader)
    and must be ``bare`` (the same spec written without ``plugins:``) plus exactly ``plugins``;
    then ``bare`` is loaded with ``trust_plugins=False``. A model or file name that smuggled YAML
    into the text would show up as a difference and is refused, never run.

    Args:
        text: the spec as written (what goes to the file).
        plugins: the ``plugins:`` entries the user named (as written).
        bare: the same spec written without ``plugins:``.

    Returns:
        The loaded :class:`netspec.Spec` (of ``bare``; it describes the same model).

    Raises:
        ModelImportError: the written spec lists other plugins, or differs from ``bare`` elsewhere.
    """
    from ..errors import NetspecError
    from ..source.loader import load_yaml
    from ..spec import load

    try:
        # cast: the text comes from write_spec, whose top level is always a mapping (``netspec: 1``, ...).
        data = dict(cast("dict[str, Any]", load_yaml(text).data))
        expected = load_yaml(bare).data
    except NetspecError as e:
        raise RuntimeError(f"{_GENERATED_BUG}: {e}") from e
    listed = data.pop("plugins", [])
    if listed != list(plugins) or data != expected:
        raise ModelImportError("refusing to write the imported spec: it lists plugins other than the ones named "
                               "on the command line, or the model's names changed its structure",
                               hint="report this as a bug in netspec, with the model file")
    try:
        return load(bare, trust_plugins=False)
    except NetspecError as e:  # a value of the model the spec language cannot hold, found only by loading it
        raise ModelImportError(f"netspec import cannot write this model as a spec: what it wrote is refused at "
                               f"{e.json_path if e.path else 'its top'}: {short(e.message, 300)}",
                               hint="if the model's value looks writable, report this as a bug in netspec, "
                                    "with the model file") from None


def build_symbolic(spec):
    """The spec's Keras model and layers by node name, with shapes but no allocated weights."""
    from ..build.compiler import build_symbolic as build_graph

    return build_graph(spec.graph, spec.catalog, spec.document.source)


def _operations(model, out: dict[str, Any]) -> dict[str, Any]:
    """Every operation of ``model`` by name, nested models replaced by their own operations."""
    import keras

    for op in getattr(model, "operations", None) or model.layers:
        if isinstance(op, keras.Model):
            _operations(op, out)
        elif not isinstance(op, keras.layers.InputLayer):
            out[op.name] = op
    return out


def _params(op) -> int:
    total = 0
    for w in getattr(op, "weights", []):
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


def _shapes(op, k: int = 0) -> list:
    nodes = kerasapi.inbound_nodes(op)
    if not nodes:
        return []
    node = nodes[min(k, len(nodes) - 1)]
    return [tuple(t.shape) for t in node.outputs]


def _sources(op, k: int = 0) -> tuple[list[str], bool]:
    """The names of what feeds call ``k`` of ``op`` (an implicit mask left out), and whether the call
    used keywords (Keras then orders the tensors by keyword, so only the set can be compared)."""
    nodes = kerasapi.inbound_nodes(op)
    if not nodes:
        return [], False
    node = nodes[min(k, len(nodes) - 1)]
    arguments = getattr(node, "arguments", None)
    tensors = list(node.input_tensors)
    keywords = bool(arguments is not None and arguments.kwargs)
    if arguments is not None and "mask" in arguments.kwargs and implicit_mask(node):
        masks = {id(t) for t in _flat(arguments.kwargs["mask"])}
        tensors = [t for t in tensors if id(t) not in masks]
    return [_made_by(t) for t in tensors], keywords


def _fed_alike(sources: list[str], keywords: bool, actual: list[str], loose: bool, name_of: dict,
               family: dict) -> bool:
    """Whether a spec node reads what a source call reads: each source by one of its nodes (``family``), in
    order; or, as a set, for an expression (it names each input once: x * x reads x twice, one variable) and for
    a call by keywords (Keras orders those tensors by keyword)."""
    options = [{name_of.get(s, s)} | family.get(s, set()) for s in sources]
    if len(options) == len(actual) and all(a in o for a, o in zip(actual, options)):
        return True
    if loose or keywords:
        return all(any(a in o for o in options) for a in actual) and all(o & set(actual) for o in options)
    return False


def _made_by(tensor) -> str:
    """The name of the layer that made ``tensor``: through a nested model's call, the layer of the
    nested model that made the output it returned (a nested model with several outputs is no one
    producer)."""
    import keras

    for _ in range(64):  # nesting depth, bounded
        made = kerasapi.call_of(tensor)
        operation = kerasapi.producer(tensor)
        if made is None or not isinstance(operation, keras.Model):
            break
        outs = [id(t) for t in _flat(made[1].outputs)]
        inner = _flat(operation.outputs)
        if id(tensor) not in outs or len(inner) != len(outs):
            break
        tensor = inner[outs.index(id(tensor))]
    return kerasapi.producer(tensor).name


def _flat(value) -> list:
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    return [] if value is None else [value]


def _mask_operations(model) -> set[str]:
    """Operations (keras.ops, not layers) that only compute the implicit masks Keras passes on: each
    build makes its own (``not_equal``, ``not_equal_1``), so they are not compared."""
    import keras

    out: set[str] = set()
    stack = []
    for op in _operations(model, {}).values():
        for node in kerasapi.inbound_nodes(op):
            arguments = getattr(node, "arguments", None)
            if arguments is not None and "mask" in arguments.kwargs and implicit_mask(node):
                stack += _flat(arguments.kwargs["mask"])
    while stack:
        made = kerasapi.call_of(stack.pop())
        if made is None or isinstance(made[0], keras.layers.Layer) or made[0].name in out:
            continue
        out.add(made[0].name)
        stack += list(made[1].input_tensors)
    return out


def _config(op) -> Any:
    config = dict(op.get_config()) if hasattr(op, "get_config") else {}
    config.pop("name", None)
    return normalize(config)


def compare(source_model, imported, spec=None) -> Comparison:
    """Compare ``source_model`` with the model the imported spec compiles to.

    Args:
        source_model: the Keras model that was imported.
        imported: the :class:`netspec.importing.importer.Imported` result.
        spec: the loaded spec (default: ``netspec.load(imported.text)``).

    Returns:
        A :class:`Comparison`; ``ok`` when every layer matches.
    """
    from ..spec import load

    from ..errors import NetspecError

    spec = spec or getattr(imported, "spec", None) or load(imported.text, trust_plugins=False)
    try:
        model, layers = build_symbolic(spec)
    except NetspecError as e:  # located in a spec never written: say what of the model it is
        raise ModelImportError(f"netspec import cannot write this model as a spec: what it wrote does not build "
                               f"({e.json_path if e.path else 'its top'}): {short(e.message, 300)}") from None
    result = Comparison(source_params=source_model.count_params() if source_model.built else 0,
                        spec_params=sum(_params(layer) for layer in {id(v): v for v in layers.values()}.values()))
    ours = _operations(model, {})
    theirs = _operations(source_model, {})
    for masks, ops in ((_mask_operations(model), ours), (_mask_operations(source_model), theirs)):
        for name in masks:
            ops.pop(name, None)
    result.layers = len(theirs)
    name_of = imported.names
    # every node made of one source operation: its first call's, and ("name#k") those of its later calls, which
    # are nodes of their own where it holds no weights (a nested model called twice)
    family: dict[str, set[str]] = {}
    for key, node in name_of.items():
        family.setdefault(key.split("#")[0], set()).add(node)
    for name, op in theirs.items():
        flat = name_of.get(name)
        # the first call's node, or a later call's where the spec dropped the first (its output unused)
        flat = next((n for n in [flat, *sorted(family.get(name, ()))] if n in ours), flat)
        mine = ours.get(flat) if flat else None
        if mine is None:
            result.problems.append(f"source layer {short(name, 80)} has no spec node")
            continue
        cls = type(op).__name__
        if type(mine).__name__ == "Expression" and cls != "Expression":
            result.expressions.append(f"{name} ({cls}) -> {mine.expression}")
        else:
            if cls != type(mine).__name__:
                result.problems.append(f"{short(name, 80)} is a {cls}, its node {short(flat, 80)} a {type(mine).__name__}")
                continue
            if _config(op) != _config(mine):
                result.problems.append(f"{short(name, 80)}: config differs from node {short(flat, 80)}")
        if _params(op) != _params(mine):
            result.problems.append(f"{short(name, 80)}: {_params(op):,} parameters, node {short(flat, 80)} {_params(mine):,}")
        if _shapes(op) != _shapes(mine):
            result.problems.append(f"{short(name, 80)}: output shape {_shapes(op)}, node {short(flat, 80)} {_shapes(mine)}")
        actual, keywords_too = _sources(mine)
        loose = type(mine).__name__ == "Expression" or keywords_too
        calls = range(max(1, len(kerasapi.inbound_nodes(op))))  # the node is one of the operation's calls
        if not any(_fed_alike(*_sources(op, k), actual, loose, name_of, family) for k in calls):
            expected = [name_of.get(s, s) for s in _sources(op)[0]]
            result.problems.append(f"{short(name, 80)}: inputs {expected}, node {short(flat, 80)} has {actual}")
    # later calls ("name#k") of an operation, which holds no weights: a node each (a nested model called twice)
    again = {node for key, node in name_of.items() if "#" in key}
    extra = set(ours) - {name_of.get(n) for n in theirs} - again - _output_identities(spec, ours)
    if extra:
        result.problems.append(f"the spec has {len(extra)} node(s) the source lacks: {sorted(extra)[:3]}")
    if result.ok:
        from .numbers import compare_numbers

        problem, result.numbers = compare_numbers(source_model, spec, name_of, _operations)
        if problem:
            result.problems.append(problem)
    return result


def _output_identities(spec, ours: dict[str, Any]) -> set[str]:
    """The Identity layers the build adds to name a mapping's outputs (``outputs: {first: head}``: Keras
    names an output after its layer, so ``head`` gets an Identity named ``first``); no source layer."""
    graph = spec.graph
    if graph.output_form != "mapping":
        return set()
    return {key for key, ref in graph.outputs
            if key != ref.node and type(ours.get(key)).__name__ == "Identity"}
