"""A nested model called once, back into a block used once.

A functional model or ``Sequential`` nested in another and called once (the functional API guide's
``encoder``/``decoder``, the transfer learning guide's ``data_augmentation``, the VAE example's
``encoder`` returning ``[z_mean, z_log_var, z]``) is one unit to its author: the import writes it as
a block named after the sub-model, with the sub-model's inputs and outputs, and one instance of it.
A model nested in such a model and called once in it becomes a block its block uses (blocks may use
blocks). The flat graph says which ops each made through a :class:`Group`, from one of two sources:

- the nested Keras model itself: :class:`netspec.importing.graph.Flattener` records the ops it
  flattened for every sub-model called once at the model's top level, or inside such a sub-model,
  with the refs its inputs were bound to and the refs of its outputs;
- a model netspec built from a spec: netspec builds a block instance flat (its layers
  ``<instance>_<node>``), so the layer names alone cannot say where a block used once began and
  ended, and reading name prefixes as blocks would group ``conv1_pad``, ``conv1_conv``, ... of every
  ``keras.applications`` model. The spec the model was built from says it:
  :mod:`netspec.importing.stamped` reads it, once it has proved that spec builds this very model.
  It gives the block's body as the spec writes it, which binds the block's inputs to refs.

Both sources name a group's ops ``<instance>_<node>`` and list the block's inputs in the sub-model's
order, so both make the same block and instance, and an imported spec round-trips (import -> build
-> import gives the same text). A block with one input calls it ``x``; with several, the block's
inputs keep the sub-model's input names. Its outputs are written only when there are several, or
when the one output is not the last node; refs to output ``t`` of an instance with several are
``<instance>.<t>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .foldgraph import Block, Op, base, is_name, map_refs, op_refs, postorder


@dataclass(frozen=True)
class Group:
    """The ops one block instance made.

    ``instance``: the instance's flat name; ``block``: its block's name; ``members``: its ops' names
    (each ``<instance>_<node>``); ``inputs``: the block's input names, in order; ``bound``: the refs
    those inputs were bound to (a nested Keras model), or empty when ``body`` says it (a stamped
    spec: the block's nodes as the spec writes them); ``outputs``: the refs of the block's outputs
    (empty: the last op's one output).
    """

    instance: str
    block: str
    members: tuple[str, ...]
    inputs: tuple[str, ...] = ("x",)
    bound: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    body: tuple[Any, ...] = ()


def nest_once(ops: list[Op], outputs: list[str], groups: list[Group],
              blocks: dict[str, Block] | None = None) -> dict[str, Block]:
    """Turn each group that fits into a block and one instance of it, in place.

    Groups come innermost first: a group made into an instance stands for its ops in the groups
    that hold it. A group fits when its ops are consecutive layers, expressions or instances made
    here (at least one layer or expression; none shared, none a ``share`` of another), named
    ``<instance>_<node>`` with ``node`` a name other than the block's inputs, read from outside
    exactly the refs its inputs are bound to (each a different ref), and are used outside only
    through its outputs. Any other group stays inline, as it was flattened.

    Args:
        ops: the flat graph in call order (groups are replaced by their instance; refs renamed).
        outputs: the model's output refs (renamed in place).
        groups: the candidate groups, innermost first.
        blocks: blocks already made (their names are taken).

    Returns:
        The blocks made, by name.
    """
    made: dict[str, Block] = {}
    absorbed: dict[str, str] = {}   # an op now inside an instance -> the instance
    renamed: dict[str, str] = {}    # a ref now reached through an instance -> its ref on the instance
    for group in groups:
        members = tuple(dict.fromkeys(absorbed.get(m, m) for m in group.members))
        plan = _plan(ops, outputs, group, members, {**(blocks or {}), **made}, renamed)
        if plan is None:
            continue
        at, run, binding, outs, calls = plan
        cut = len(group.instance) + 1
        rename = {op.name: op.name[cut:] for op in run}
        names = {ref: name for name, ref in binding.items()}

        def inner(ref: str) -> str:
            if base(ref) in rename:
                return rename[base(ref)] + ref[len(base(ref)):]
            return names[ref]

        body = [Op(rename[op.name], op.kind, op.type, dict(op.args), map_refs(op.inputs, inner), expr=op.expr,
                   repeat=op.repeat, foldable=False, origin=op.origin, members=list(op.members)) for op in run]
        single = len(outs) == 1 and outs[0] == run[-1].name
        made[group.block] = Block(group.block, {}, body, instances=1, inputs=list(binding),
                                  outputs=None if single else [inner(r) for r in outs])
        instance = Op(group.instance, "block", group.block, {}, list(binding.values()), foldable=False,
                      members=[m for op in run for m in op.names()])
        put = {at: instance}
        own = {id(op) for op in run}
        to_instance = {r: group.instance if len(outs) == 1 else f"{group.instance}.{t}" for t, r in enumerate(outs)}
        for call in calls:  # the later calls of a shared nested model: share: nodes of the instance
            put[call.at] = Op(call.name, "share", None, {}, call.bound, share_of=group.instance, foldable=False,
                              origin=call.copies[0].origin, members=[m for op in call.copies for m in op.names()])
            own |= {id(op) for op in call.copies}
            to_instance.update({r: call.name if len(outs) == 1 else f"{call.name}.{t}" for t, r in enumerate(call.outs)})
        ops[:] = [put.get(k, op) for k, op in enumerate(ops) if k in put or id(op) not in own]
        for op in ops:
            op.inputs = map_refs(op.inputs, lambda r: to_instance.get(r, r))
        outputs[:] = [to_instance.get(r, r) for r in outputs]
        for op in run:
            absorbed[op.name] = group.instance
        for old, new in list(renamed.items()):
            renamed[old] = to_instance.get(new, new)
        renamed.update(to_instance)
    return made


def _plan(ops: list[Op], outputs: list[str], group: Group, members: tuple[str, ...], blocks: dict[str, Block],
          renamed: dict[str, str]):
    """``(place, ops in block order, {input name: bound ref}, output refs)`` of a group that fits (see
    :func:`nest_once`); None otherwise."""
    where = {op.name: i for i, op in enumerate(ops)}
    if not members or any(m not in where for m in members):
        return None
    if group.block in blocks or not is_name(group.instance) or not is_name(group.block) or group.instance in where:
        return None
    own = set(members)
    prefix = group.instance + "_"
    inputs = list(group.inputs)
    if not inputs or len(set(inputs)) != len(inputs) or not all(is_name(n) for n in inputs):
        return None
    for name in members:
        op, rest = ops[where[name]], name[len(prefix):]
        made_here = op.kind == "block" and op.type in blocks
        if not (op.kind in ("layer", "expr") or made_here) or not name.startswith(prefix) \
                or not is_name(rest) or rest in inputs:
            return None
    if all(ops[where[m]].kind == "block" for m in members):
        return None
    outs = [renamed.get(r, r) for r in group.outputs] or [max(members, key=where.__getitem__)]
    if len(set(outs)) != len(outs) or any(base(r) not in own for r in outs):
        return None
    run = _block_order([ops[where[m]] for m in sorted(members, key=where.__getitem__)], outs)
    externals = list(dict.fromkeys(r for op in run for r in op_refs(op) if base(r) not in own))
    binding: dict[str, str] | None
    if group.bound:
        if len(group.bound) != len(inputs):
            return None
        binding = dict(zip(inputs, [renamed.get(r, r) for r in group.bound]))
    else:
        binding = _bind(run, prefix, inputs, list(group.body))
    if binding is None or len(binding) != len(inputs) or len(set(binding.values())) != len(inputs) \
            or set(binding.values()) != set(externals):
        return None
    calls = _share_calls(ops, run, binding, outs, group.instance)
    if calls is None:
        return None
    copied = {op.name for call in calls for op in call.copies}
    reached = set(outs) | {r for call in calls for r in call.outs}
    for op in ops:
        if op.name not in own | copied and any(base(r) in own | copied and r not in reached for r in op_refs(op)):
            return None
    if any(base(r) in own | copied and r not in reached for r in outputs):
        return None
    at = _place(ops, where, own, externals)
    if at is None or any(call.at is None for call in calls) or at in {call.at for call in calls}:
        return None
    return at, run, binding, outs, calls


@dataclass
class _Call:
    """A later call of a shared nested model: its ``share`` ops (in block order), the refs bound to
    the block's inputs, its output refs, its name and where its ``share:`` node goes."""

    copies: list[Op]
    bound: list[str]
    outs: list[str]
    name: str
    at: int | None


def _share_calls(ops: list[Op], run: list[Op], binding: dict[str, str], outs: list[str],
                 instance: str) -> list[_Call] | None:
    """The later calls of the group's ops (``share`` ops of them: a nested model called again), each
    as a :class:`_Call` named ``<instance>_<n>`` in the order the import walked them; None when a
    ``share`` of the group's ops is not part of a whole call wired as the group is."""
    own = {op.name for op in run}
    shares: dict[str, list[Op]] = {op.name: [] for op in run}
    for op in ops:
        if op.kind == "share" and op.share_of in shares:
            shares[op.share_of].append(op)
        elif op.share_of in own:
            return None
    counts = {len(v) for v in shares.values()}
    if len(counts) != 1:
        return None
    names = {op.name for op in ops}
    external = {ref: name for name, ref in binding.items()}
    where = {op.name: i for i, op in enumerate(ops)}
    calls = []
    for n in range(counts.pop()):
        copy = {op.name: shares[op.name][n] for op in run}
        bound: dict[str, str] = {}
        for op in run:
            mine = copy[op.name]
            if type(mine.inputs) is not type(op.inputs) or (isinstance(op.inputs, dict) and list(mine.inputs) != list(op.inputs)):
                return None
            theirs, got = op_refs(op), op_refs(mine)
            if len(theirs) != len(got):
                return None
            for r, g in zip(theirs, got):
                if base(r) in copy:
                    if g != copy[base(r)].name + r[len(base(r)):]:
                        return None
                elif base(g) in {c.name for c in copy.values()} or bound.setdefault(external[r], g) != g:
                    return None
        name = f"{instance}_{n + 1}"
        if len(bound) != len(binding) or not is_name(name) or name in names:
            return None
        refs = [bound[p] for p in binding]
        call_outs = [copy[base(r)].name + r[len(base(r)):] for r in outs]
        at = _place(ops, where, {c.name for c in copy.values()}, refs)
        calls.append(_Call([copy[op.name] for op in run], refs, call_outs, name, at))
    return calls


def _block_order(run: list[Op], outs: list[str]) -> list[Op]:
    """The group's ops in the order the import walks a model: depth first from its outputs (in
    order), each op's inputs in call order, then any op no output reaches, in graph order. Both
    sources of a group (a nested model walked alone, a flat model netspec built) give this order."""
    by_name = {op.name: op for op in run}
    deps = {name: [base(r) for r in op_refs(op) if base(r) in by_name] for name, op in by_name.items()}
    return [by_name[name] for name in postorder([base(r) for r in outs] + list(by_name), deps)]


def _place(ops: list[Op], where: dict[str, int], own: set[str], externals: list[str]) -> int | None:
    """Where the instance goes: at its first op when everything it reads comes before (the ops of
    other nodes between its own then follow it), else at its last op when no op between reads it."""
    places = sorted(where[m] for m in own)
    first, last = places[0], places[-1]
    if all(where.get(base(r), -1) < first for r in externals):
        return first
    between = [op for op in ops[first:last] if op.name not in own]
    if not any(base(r) in own for op in between for r in op_refs(op)):
        return last
    return None


def _bind(run: list[Op], prefix: str, inputs: list[str], body: list) -> dict[str, str] | None:
    """``{input name: bound ref}`` read from a block's nodes as a spec writes them (a stamped spec):
    where a node's ``in:`` names an input, the op it made reads the bound ref at the same place."""
    by_name = {op.name: op for op in run}
    binding: dict[str, str] = {}
    for k, node in enumerate(body):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            return None
        op = by_name.get(prefix + node["name"])
        if op is None:
            return None
        written = node.get("in", inputs[0] if k == 0 else None)
        if written is None:
            continue
        if isinstance(written, dict):
            written = [r for v in written.values() for r in (v if isinstance(v, list) else [v])]
        refs = written if isinstance(written, list) else [written]
        got = op_refs(op)
        if len(refs) != len(got) or not all(isinstance(r, str) for r in refs):
            return None
        for ref, actual in zip(refs, got):
            if ref in inputs and binding.setdefault(ref, actual) != actual:
                return None
    return {name: binding[name] for name in inputs if name in binding}
