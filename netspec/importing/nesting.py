"""A nested model called once, back into a block used once.

A functional model or ``Sequential`` nested in another and called once (the functional API guide's
``encoder``/``decoder``, the transfer learning guide's ``data_augmentation``) is one unit to its
author: the import writes it as a block named after the sub-model, and one instance of it. The flat
graph says which ops it made through a :class:`Group`, from one of two sources:

- the nested Keras model itself: :class:`netspec.importing.graph.Flattener` records the ops it
  flattened for every sub-model called once at the model's top level, with one input and one output;
- a model netspec built from a spec: netspec builds a block instance flat (its layers
  ``<instance>_<node>``), so the layer names alone cannot say where a block used once began and
  ended, and reading name prefixes as blocks would group ``conv1_pad``, ``conv1_conv``, ... of every
  ``keras.applications`` model. The spec the model was built from says it:
  :mod:`netspec.importing.stamped` reads it, once it has proved that spec builds this very model.

Both sources name a group's ops ``<instance>_<node>``, so both make the same block and instance,
and an imported spec round-trips (import -> build -> import gives the same text).
"""

from __future__ import annotations

from dataclasses import dataclass

from .foldgraph import Block, Op, base, is_name, map_refs, op_refs


@dataclass(frozen=True)
class Group:
    """The ops one block instance made: the instance's name, its block's name, and its ops' names
    (each ``<instance>_<node>``)."""

    instance: str
    block: str
    members: tuple[str, ...]


def nest_once(ops: list[Op], outputs: list[str], groups: list[Group],
              blocks: dict[str, Block] | None = None) -> dict[str, Block]:
    """Turn each group that fits into a block and one instance of it, in place.

    A group fits when its ops are consecutive layers or expressions (none shared, none a ``share``
    of another), named ``<instance>_<node>`` with ``node`` a name other than ``x``, read one
    tensor from outside (the block's input ``x``), and are used outside only through the last op's
    one output. Any other group stays inline, as it was flattened.

    Args:
        ops: the flat graph in call order (groups are replaced by their instance; refs renamed).
        outputs: the model's output refs (renamed in place).
        groups: the candidate groups.
        blocks: blocks already made (their names are taken).

    Returns:
        The blocks made, by name.
    """
    made: dict[str, Block] = {}
    for group in groups:
        plan = _plan(ops, outputs, group, {**(blocks or {}), **made})
        if plan is None:
            continue
        start, end, external = plan
        run = ops[start:end + 1]
        cut = len(group.instance) + 1
        rename = {op.name: op.name[cut:] for op in run}

        def inner(ref: str) -> str:
            if base(ref) in rename:
                return rename[base(ref)] + ref[len(base(ref)):]
            return "x"

        body = [Op(rename[op.name], op.kind, op.type, dict(op.args), map_refs(op.inputs, inner), expr=op.expr,
                   foldable=False, origin=op.origin) for op in run]
        made[group.block] = Block(group.block, {}, body, instances=1)
        instance = Op(group.instance, "block", group.block, {}, [external], foldable=False,
                      members=[m for op in run for m in op.names()])
        ops[start:end + 1] = [instance]
        last = run[-1].name
        for op in ops:
            op.inputs = map_refs(op.inputs, lambda r: group.instance if r == last else r)
        outputs[:] = [group.instance if r == last else r for r in outputs]
    return made


def _plan(ops: list[Op], outputs: list[str], group: Group, blocks: dict[str, Block]):
    """``(first, last, external ref)`` of a group that fits (see :func:`nest_once`); None otherwise."""
    where = {op.name: i for i, op in enumerate(ops)}
    if not group.members or any(m not in where for m in group.members):
        return None
    places = sorted(where[m] for m in group.members)
    start, end = places[0], places[-1]
    if places != list(range(start, end + 1)) or group.block in blocks or group.block == "x":
        return None
    if not is_name(group.instance) or not is_name(group.block) or group.instance in where:
        return None
    run = ops[start:end + 1]
    own = {op.name for op in run}
    prefix = group.instance + "_"
    for op in run:
        rest = op.name[len(prefix):]
        if op.kind not in ("layer", "expr") or not op.name.startswith(prefix) or not is_name(rest) or rest == "x":
            return None
    externals = {r for op in run for r in op_refs(op) if base(r) not in own}
    if len(externals) != 1:
        return None
    last = run[-1].name
    for op in ops:
        if op.share_of in own:
            return None
        if op.name not in own and any(base(r) in own and r != last for r in op_refs(op)):
            return None
    if any(base(r) in own and r != last for r in outputs):
        return None
    return start, end, externals.pop()
