"""Block instances: a ``block:`` node's params, vars, inputs and outputs, expanded in a child scope."""

from __future__ import annotations

from collections import ChainMap
from typing import Any, cast

from ..errors import hint_for, short
from ..graph import NODE_KEYS, Ref, ShapeOf, Value
from .chain import scope_chain
from .scope import Ctx, Entry, Resolving, first_ref, flatten
from .structure import MAX_BLOCK_DEPTH

# What a block node may carry besides its params: the node keys, and `chain:` (a repeat's chained output).
BLOCK_NODE_KEYS = NODE_KEYS | {"chain"}


def expand_block(res: Resolving, ctx: Ctx, e: Entry, raw: dict, flat: str, inputs, names) -> Value:
    """Expand one instance of a block; its layers are named ``<flat>_<node>``.

    Args:
        res: the resolver (values, refs, errors, the spec's blocks).
        ctx: the calling scope.
        e: the ``block:`` node.
        raw: the node as written.
        flat: the instance's flat name.
        inputs: the instance's inputs (a list of Values, or a mapping input name -> Value).
        names: the names visible to the node's own values (params, ``i``).

    Returns:
        The block's output: its ``outputs:`` if it declares them, else its last node's.

    Raises:
        NetspecError: unknown block or param, a missing required param or input, recursion, nesting
            past MAX_BLOCK_DEPTH, or any error inside the instance (noted with the instance).
    """
    bname = raw["block"]
    if bname not in res.blocks:
        raise res.error(f"unknown block {short(bname)}", e.path + ("block",), hint=hint_for(bname, res.blocks), ctx=ctx)
    if bname in ctx.stack:
        chain = " -> ".join(ctx.stack + (bname,))
        raise res.error(f"block {bname!r} instantiates itself: {chain}", e.path + ("block",), ctx=ctx)
    if len(ctx.stack) >= MAX_BLOCK_DEPTH:
        raise res.error(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep", e.path, ctx=ctx)
    bdef = res.blocks[bname]
    bpath = ("blocks", bname)
    first = first_ref(flatten(inputs))
    spec_names = _names(res, ctx, e, raw, bname, bdef, names, first)
    bindings = _bind_inputs(res, ctx, e, raw, bname, bdef.get("inputs") or ["x"], inputs)
    note = f"in block {bname!r}, instance {flat!r} at line {res.src.value(e.path).line}"
    child = Ctx(spec_names, bindings, flat + "_", ctx.scope + (flat,), bpath + ("nodes",),
                next(iter(bindings.values())) if len(bindings) == 1 else None, ctx.stack + (bname,), note)
    last = res.expand_scope(child, bdef["nodes"])
    outs = bdef.get("outputs")
    if outs is None:
        # A block's `nodes` has minItems 1 in the schema (resolve() takes a schema-valid document), so
        # its scope has a last node.
        return cast(Value, last)
    opath = bpath + ("outputs",)
    if isinstance(outs, dict):
        items = [(k, res.lookup(res.value(v, opath + (k,), spec_names, child), child, opath + (k,)))
                 for k, v in outs.items()]
    else:
        seq = outs if isinstance(outs, list) else [outs]
        sub = (lambda k: opath + (k,)) if isinstance(outs, list) else (lambda k: opath)
        items = [(v, res.lookup(res.value(v, sub(k), spec_names, child), child, sub(k))) for k, v in enumerate(seq)]
    result: list[tuple[str | None, Ref]] = []
    for out_name, value in items:
        for _, ref in value.items:
            result.append((out_name, ref))
    return Value(tuple(result))


def _names(res: Resolving, ctx: Ctx, e: Entry, raw: dict, bname: str, bdef: dict, names,
           first: Ref | None) -> ChainMap[str, Any]:
    """What the instance's nodes see: its params (given, else the block's defaults) and vars, in
    declaration order, then ``in_shape`` and the spec's params."""
    bpath = ("blocks", bname)
    declared = bdef.get("params") or {}
    caller = scope_chain({"in_shape": ShapeOf(first)}, names)
    if "chain" in declared:  # `chain:` on the node is the repeat's chained output, never this param
        raise res.error(f"block {bname!r} declares a param 'chain', but chain: is a node key (a repeat's chained "
                        "output); rename the param", bpath + ("params", "chain"), key=True, ctx=ctx)
    given = {k: v for k, v in raw.items() if k not in BLOCK_NODE_KEYS}
    for key in given:
        if key not in declared:
            raise res.error(f"block {bname!r} has no param {key!r}", e.path + (key,), key=True,
                            hint=hint_for(key, declared), ctx=ctx)
    local: dict[str, Any] = {}
    # Defaults and vars see the block's earlier params and the spec's params, never the caller's names.
    spec_names = scope_chain(local, {"in_shape": ShapeOf(first)}, res.spec_params)
    for key, default in declared.items():
        if key in given:
            local[key] = res.value(given[key], e.path + (key,), caller, ctx, allow_deferred=True)
        elif default == "required":
            raise res.error(f"block {bname!r} needs param {key!r}", e.path + ("block",), ctx=ctx)
        else:
            local[key] = res.value(default, bpath + ("params", key), spec_names, ctx, allow_deferred=True)
    for key, raw_var in (bdef.get("vars") or {}).items():
        local[key] = res.value(raw_var, bpath + ("vars", key), spec_names, ctx, allow_deferred=True)
    return spec_names


def _bind_inputs(res: Resolving, ctx: Ctx, e: Entry, raw: dict, bname: str, in_names: list[str],
                 inputs) -> dict[str, Value]:
    """The block's input names bound to the instance's inputs (by name, or in order)."""
    if isinstance(inputs, dict):
        for key in inputs:
            if key not in in_names:
                raise res.error(f"block {bname!r} has no input {key!r}", e.path + ("in", key), key=True,
                                hint=hint_for(key, in_names), ctx=ctx)
        for key in in_names:
            if key not in inputs:
                raise res.error(f"block {bname!r} needs input {key!r}", e.path + ("in",), ctx=ctx)
        return {key: inputs[key] for key in in_names}
    flat_in = [Value((item,)) for v in inputs for item in v.items]
    if len(flat_in) != len(in_names):
        raise res.error(f"block {bname!r} takes {len(in_names)} input{'s' * (len(in_names) > 1)} "
                        f"({', '.join(in_names)}); received {len(flat_in)}",
                        e.path + (("in",) if "in" in raw else ()), ctx=ctx)
    return dict(zip(in_names, flat_in))
