"""Repeat, ``when`` and ``chain`` around one node: instance k takes instance k-1's output.

Functions of the :class:`~netspec.resolve.resolver.Resolver` (named ``self`` as the methods they were).
A repeat of a block with several outputs names the one that feeds the next instance with ``chain:``;
the others stay reachable for every instance (``down.skip``, a list in instance order) or for one
(``down_2.skip``). A repeated node's ``in:`` is evaluated per instance with ``i`` in scope, so
instance k's other inputs may differ (``skip: "down_${levels - 1 - i}.skip"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ResolveError, hint_for, short
from ..expressions.interp import UNKNOWN
from ..graph import DeferredArg, ShapeOf, Value
from .chain import scope_chain
from .scope import Ctx, Entry, first_ref, flatten, pass_through

if TYPE_CHECKING:
    from .resolver import Resolver


def expand_body(self: Resolver, ctx: Ctx, e: Entry, raw: dict, name: str, inputs) -> Value:
    """Repeat and when around one node: instance k takes instance k-1's (chained) output."""
    count = e.count if e.count is not None else 1
    chain = _chain_name(self, ctx, e, raw)
    current = inputs
    last: Value | None = None
    if chain is not None:
        ctx.chained[name] = []
    for i in range(count):
        self.instances += 1
        if self.instances > self.max_instances:
            raise self.error(f"the spec expands to more than {self.max_instances} node instances", e.path,
                             ctx=ctx, hint=f"netspec expands up to {self.max_instances} node instances")
        inst = f"{name}_{i}" if e.count is not None else name
        # in_shape is named here only so that using it says why it cannot decide the graph.
        names = scope_chain({"i": i, "in_shape": UNKNOWN} if e.count is not None else {"in_shape": UNKNOWN},
                            ctx.names)
        if last is not None:
            current = _next_inputs(self, ctx, e, raw, chain, last, scope_chain({"i": i}, ctx.names))
        when: Any = True
        if "when" in raw:
            when = _when(self, ctx, e, raw, current, names)
        whole: Value | None = None
        if when:
            whole = self._instance(ctx, e, raw, inst, current, names.parents if "i" not in names.maps[0] else
                                   scope_chain({"i": i}, ctx.names))
            last = whole if chain is None else _pick_chain(self, ctx, e, raw, chain, whole)
            if isinstance(when, DeferredArg):
                _defer_when(self, ctx, e, raw, when, current, names)
        elif "else" in raw:
            last = self.lookup(self.value(raw["else"], e.path + ("else",), names, ctx), ctx, e.path + ("else",))
        else:
            last = pass_through(self, current, e, ctx)
        if e.count is not None:
            ctx.bindings[inst] = last
        if chain is not None:
            ctx.chained[name].append(inst)
            ctx.outputs[inst] = (whole, last)
    if last is None:  # repeat: 0 is the identity
        last = pass_through(self, inputs, e, ctx)
    ctx.bindings[name] = last
    return last


def _chain_name(self: Resolver, ctx: Ctx, e: Entry, raw: dict) -> str | None:
    """The node's ``chain:`` (the output that feeds the next instance), checked against the node's form."""
    if "chain" not in raw:
        return None
    path = e.path + ("chain",)
    if "block" not in raw:
        raise self.error("chain: names the output of a repeated block that feeds the next instance; this node "
                         "is not a block instance", path, key=True, ctx=ctx)
    if "repeat" not in raw:
        raise self.error("chain: names the output that feeds the next instance of a repeat; this node has no "
                         "repeat:", path, key=True, ctx=ctx, hint="add repeat: N, or drop chain:")
    chain = self.value(raw["chain"], path, ctx.names, ctx)
    if not isinstance(chain, str):
        raise self.error(f"chain must be an output name of the block. Received: chain={short(chain)}", path, ctx=ctx)
    return chain


def _output_names(value: Value) -> list[str]:
    """A block instance's output names in order, once each (``0``, ``1`` ... for unnamed outputs)."""
    names: list[str] = []
    for k, (name, _) in enumerate(value.items):
        label = name if name is not None else str(k)
        if label not in names:
            names.append(label)
    return names


def _pick_chain(self: Resolver, ctx: Ctx, e: Entry, raw: dict, chain: str, whole: Value) -> Value:
    """The chained output of one instance."""
    picked = tuple(item for item in whole.items if item[0] == chain)
    if not picked:
        outs = _output_names(whole)
        raise self.error(f"chain: block {raw['block']!r} has no output {chain!r}; its outputs are "
                         f"{', '.join(outs)}", e.path + ("chain",), hint=hint_for(chain, outs), ctx=ctx)
    if len(picked) != 1:
        raise self.error(f"chain: output {chain!r} of block {raw['block']!r} names {len(picked)} tensors; the "
                         "chained output is one tensor", e.path + ("chain",), ctx=ctx)
    return Value(picked)


def _next_inputs(self: Resolver, ctx: Ctx, e: Entry, raw: dict, chain: str | None, last: Value,
                 names: Mapping[str, Any]):
    """Instance k's inputs: the previous instance's (chained) output feeds the first inputs, and the
    rest come from ``in:`` evaluated with ``i = k``."""
    n = len(last.items)
    in_names = (self.blocks.get(raw["block"], {}).get("inputs") or ["x"]) if "block" in raw else None
    if in_names is not None and chain is None and n > 1 and n > len(in_names):
        outs = _output_names(last)
        raise self.error(
            f"block {raw['block']!r} has {n} outputs ({', '.join(outs)}) and takes {len(in_names)} input"
            f"{'s' * (len(in_names) > 1)} ({', '.join(in_names)}), so repeat cannot feed one instance to the next",
            e.path + ("repeat",), ctx=ctx,
            hint=f"name the output that feeds the next instance: chain: {outs[0]} (the others stay reachable "
                 f"for every instance as {e.name}.{outs[-1]}, or one as {e.name}_0.{outs[-1]})")
    if "in" not in raw:
        return [last]
    written = self._inputs(ctx, e, [], {}, names)
    if isinstance(written, dict):
        if in_names is None:  # a layer's or an expression's keywords: the first one is chained
            first = next(iter(written))
            return {**written, first: last}
        fed = in_names[:n] if n > 1 else in_names[:1]
        pieces = [Value((item,)) for item in last.items] if n > 1 else [last]
        return {**written, **dict(zip(fed, pieces))}
    tensors = [Value((item,)) for v in written for item in v.items]
    return [last] + tensors[n:]


def collective(self: Resolver, ctx: Ctx, base: str, part: str, path: tuple) -> Value:
    """``down.skip`` for a repeat with ``chain:``: instance by instance, each one's ``skip``."""
    items: list = []
    for inst in ctx.chained[base]:
        whole, chained = ctx.outputs[inst]
        items += (chained if whole is None else self.pick(base, whole, part, ctx, path)).items
    return Value(tuple(items), listed=True)


def _when(self: Resolver, ctx: Ctx, e: Entry, raw: dict, current, names: Mapping[str, Any]) -> Any:
    """A node's ``when:``: a boolean now, or a DeferredArg when it reads shapes (decided at build)."""
    path = e.path + ("when",)
    shape: Any
    try:
        shape = ShapeOf(first_ref(flatten(current)))
    except ResolveError:  # an input mapping naming several tensors: reported with the node
        shape = UNKNOWN
    when = self.value(raw["when"], path, scope_chain({"in_shape": shape}, names), ctx, allow_deferred=True)
    if isinstance(when, DeferredArg):
        if "block" in raw or self.share is not None:
            what = "a block instance" if "block" in raw else "a shared node"
            raise self.error(f"a when: that reads shapes is decided at build time, so it cannot leave out "
                             f"{what}", path, ctx=ctx, hint="put the when: on the nodes inside the block")
    elif not isinstance(when, bool):
        raise self.error(f"when must be a boolean. Received: when={short(when)}", path, ctx=ctx)
    return when


def _defer_when(self: Resolver, ctx: Ctx, e: Entry, raw: dict, when: DeferredArg, current, names) -> None:
    """Mark the node just made as decided at build time, with what it passes through when left out."""
    node = self.nodes[-1]
    node.when = when
    if "else" in raw:
        value = self.lookup(self.value(raw["else"], e.path + ("else",), names, ctx), ctx, e.path + ("else",))
    else:
        value = pass_through(self, current, e, ctx)
    if len(value.items) != 1:
        raise self.error(f"a when: decided at build time needs one tensor to pass through; "
                         f"{'else' if 'else' in raw else 'the first input'} names {len(value.items)}",
                         e.path + ("else",) if "else" in raw else e.path + ("when",), ctx=ctx)
    node.else_ref = value.items[0][1]
