"""Shared sub-graphs back into blocks: a run of layers applied again, layer by layer, as ``share``
nodes (a Siamese tower, a nested model called on several inputs) becomes a block instance and
``share:`` nodes of it, as ``specs/siamese.yaml`` is written by hand.

This works on the flat graph, before folding, and reads only its structure and names: a model
netspec built from such a spec is flat (the tower's layers ``tower_conv``, ``tower_dense`` called
twice), and the flat import of a nested model names its layers the same way (``<model>_<layer>``),
so both import to the same spec text.
"""

from __future__ import annotations

from .foldgraph import Block, Op, base, is_name, map_refs, op_refs
from .foldnames import common_tokens


def regroup(ops: list[Op], outputs: list[str], inputs: list[str],
            made: dict[str, Block] | None = None) -> tuple[list[Op], dict[str, Block]]:
    """Turn every shared run of layers into a block, one instance and ``share`` nodes.

    A run qualifies when its layers are consecutive, named ``<P>_<name>`` with one prefix P, take one
    external input (the first layer's), are used outside only through the last layer, and each later
    application is a consecutive run of ``share`` nodes wired the same way. Anything else stays as
    single ``share`` nodes.

    Args:
        ops: the flat graph in call order (changed in place: refs to the runs are renamed).
        outputs: the model's output refs (renamed in place).
        inputs: the model's input names.
        made: blocks made before (nested models called once): their names are taken.

    Returns:
        The ops and the blocks made.
    """
    blocks: dict[str, Block] = dict(made or {})
    i = 0
    while i < len(ops):
        _try(ops, outputs, inputs, i, blocks)
        i += 1
    return ops, {k: v for k, v in blocks.items() if k not in (made or {})}


def _try(ops: list[Op], outputs: list[str], inputs: list[str], i: int, blocks: dict[str, Block]):
    first = ops[i]
    if first.kind not in ("layer", "expr"):
        return None
    starts = [p for p, op in enumerate(ops) if op.kind == "share" and op.share_of == first.name and p > i]
    if not starts:
        return None
    length = 0
    while i + length < len(ops) and ops[i + length].kind in ("layer", "expr") and all(
            p + length < len(ops) and ops[p + length].kind == "share"
            and ops[p + length].share_of == ops[i + length].name and i + length < starts[0] for p in starts):
        length += 1
    for n in range(length, 1, -1):
        plan = _plan(ops, outputs, inputs, i, n, starts, blocks)
        if plan is not None:
            _apply(ops, outputs, i, n, starts, plan, blocks)
            return plan
    return None


def _plan(ops, outputs, inputs, i, n, starts, blocks):
    """Names and checks for folding ``ops[i:i+n]`` and its shared copies; None when it does not fit."""
    run = ops[i:i + n]
    tokens = common_tokens([op.name for op in run])
    if not tokens:
        return None
    prefix = "_".join(tokens)
    rests = [op.name[len(prefix) + 1:] for op in run]
    if not is_name(prefix) or not all(is_name(r) and r != "x" for r in rests) or prefix in blocks:
        return None
    copies = [ops[p:p + n] for p in starts]
    names = [f"{prefix}_{k}" for k in range(1, len(copies) + 1)]
    taken = {op.name for op in ops} | set(inputs)
    members = {op.name for seg in [run, *copies] for op in seg}
    if (prefix in taken and prefix not in members) or any(m in taken and m not in members for m in names):
        return None
    for seg in [run, *copies]:
        if not _wired_alike(run, seg):
            return None
    inside = {op.name for op in run}
    in_copies = {id(op) for copy in copies for op in copy}
    # Only the last op of each application is used outside it, and nothing refers to one output of it.
    for seg in [run, *copies]:
        own = {op.name for op in seg}
        last = seg[-1].name
        for op in ops:
            if op.name in own:
                continue
            for r in op_refs(op):
                if base(r) in own and (base(r) != last or "." in r):
                    return None
            if op.kind == "share" and op.share_of in inside and id(op) not in in_copies:
                return None
        if any(base(r) in own and (base(r) != last or "." in r) for r in outputs):
            return None
    return prefix, rests, names


def _wired_alike(run: list[Op], seg: list[Op]) -> bool:
    """``seg`` is one external input into its first op, then each op fed only by the ones before it,
    exactly as in ``run``."""
    where = {op.name: t for t, op in enumerate(seg)}
    shape = []
    for t, op in enumerate(seg):
        refs = op_refs(op)
        pattern: list[int | str] = []
        for r in refs:
            if base(r) in where and where[base(r)] < t and "." not in r:
                pattern.append(where[base(r)])
            elif t == 0 and base(r) not in where:
                pattern.append("x")
            else:
                return False
        if t == 0 and pattern != ["x"]:
            return False
        shape.append((pattern, type(op.inputs) is dict, sorted(op.inputs) if isinstance(op.inputs, dict) else None))
    if seg is run:
        return True
    return shape == _shape(run)


def _shape(run: list[Op]) -> list:
    where = {op.name: t for t, op in enumerate(run)}
    return [([where.get(base(r), "x") for r in op_refs(op)], type(op.inputs) is dict,
             sorted(op.inputs) if isinstance(op.inputs, dict) else None) for op in run]


def _apply(ops: list[Op], outputs: list[str], i: int, n: int, starts: list[int], plan, blocks) -> None:
    prefix, rests, names = plan
    run = ops[i:i + n]
    rename = {op.name: rest for op, rest in zip(run, rests)}
    body = []
    for op in run:
        inner = Op(rename[op.name], op.kind, op.type, dict(op.args), map_refs(op.inputs, lambda r: rename.get(r, "x")),
                   expr=op.expr, foldable=False, origin=op.origin)
        body.append(inner)
    blocks[prefix] = Block(prefix, {}, body, instances=1)
    replace = {run[-1].name: prefix}
    pieces = [(i, Op(prefix, "block", prefix, {}, [op_refs(run[0])[0]], foldable=False,
                     members=[m for op in run for m in op.names()]))]
    for p, name in zip(starts, names):
        copy = ops[p:p + n]
        replace[copy[-1].name] = name
        pieces.append((p, Op(name, "share", None, {}, [op_refs(copy[0])[0]], share_of=prefix, foldable=False,
                             origin=copy[0].origin)))
    for p, new in sorted(pieces, key=lambda x: -x[0]):
        ops[p:p + n] = [new]
    for op in ops:
        op.inputs = map_refs(op.inputs, lambda r: replace.get(r, r))
    outputs[:] = [replace.get(r, r) for r in outputs]
