"""Checks of a spec's structure before it is expanded: blocks that reach themselves, expansions over the caps."""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ..errors import NetspecError
from ..graph import NODE_KEYS, Lazy
from ..expressions.interp import UNKNOWN
from .chain import scope_chain

MAX_REPEAT = 10_000

# (message, path, hint=...) -> NetspecError located in the document: Resolver.error
ErrorAt = Callable[..., NetspecError]


def check_block_recursion(blocks: Mapping[str, Any], error: ErrorAt) -> None:
    """A block that reaches itself through other blocks is an error, used or not (iterative DFS).

    Raises:
        NetspecError: naming the chain (``block 'a' instantiates itself: a -> b -> a``).
    """
    edges: dict[str, list[tuple[str, tuple]]] = {}
    for bname, bdef in blocks.items():
        edges[bname] = []
        for k, node in enumerate(bdef.get("nodes") or []):
            if isinstance(node, dict) and isinstance(node.get("block"), str) and node["block"] in blocks:
                edges[bname].append((node["block"], ("blocks", bname, "nodes", k, "block")))
    state: dict[str, int] = {}
    for root in blocks:
        if state.get(root):
            continue
        stack = [(root, iter(edges[root]))]
        trail = [root]
        state[root] = 1
        while stack:
            name, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                trail.pop()
                state[name] = 2
                continue
            child, path = step
            if state.get(child) == 1:
                chain = " -> ".join(trail[trail.index(child):] + [child])
                raise error(f"block {child!r} instantiates itself: {chain}", path)
            if not state.get(child):
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(edges[child])))


# Block instances nest at most this deep (a deeper spec is the resolver's error, so the count stops there).
MAX_BLOCK_DEPTH = 32


class _Counter:
    """Per block instance: (layers certain to be made, instances that will be expanded), both clamped.

    An instance is one pass of the resolver's repeat loop over one node: a layer, an expression, a
    share, a block instance (its own nodes' instances are added to it) or a node left out by ``when``
    (it still costs the loop its ``when``). Counts multiply through repeats and block nesting, and are
    clamped just over their caps, so ten levels of ``repeat: 10000`` cost ten multiplications.
    """

    def __init__(self, blocks: Mapping[str, Any], params: Mapping[str, Any], layer_cap: int, instance_cap: int,
                 value: Callable[..., Any], *, floor_only: bool = False) -> None:
        self.blocks, self.params, self.value = blocks, params, value
        # floor_only: evaluate only the top level's values (the spec's params); a block's params are
        # unknown, so each block is counted once, and only literal repeats make certain layers.
        self.floor_only = floor_only
        self.layer_top, self.instance_top = layer_cap + 1, instance_cap + 1
        self.stop = self.instance_top  # counting stops there: the walk's work stays O(cap)
        self.memo: dict[Any, tuple[int, int]] = {}
        self.truncated = 0  # counts cut at MAX_BLOCK_DEPTH: never memoized, they depend on the depth
        self.fixed: dict[str, bool] = {}  # block -> its counts need no param (every repeat below is literal)

    def _eval(self, raw: Any, path: tuple, names: Mapping[str, Any], *, deferred: bool = False) -> Any:
        if self.floor_only and names is not self.params and isinstance(raw, (str, list, dict)):
            return UNKNOWN
        try:
            got = self.value(raw, path, names, None, allow_deferred=deferred)
        except NetspecError:  # the resolver reports it, with its own message, when it gets there
            return UNKNOWN
        return UNKNOWN if isinstance(got, Lazy) else got

    def repeat(self, node: dict, path: tuple, names: Mapping[str, Any]) -> int | None:
        """The node's repeat count as the resolver evaluates it; None when absent, -1 when unknown or invalid."""
        if "repeat" not in node:
            return None
        count = self._eval(node["repeat"], path + ("repeat",), names)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
            return -1  # the resolver stops at this scope with its repeat error, or it is not known here
        return count

    def scope(self, nodes: Any, nodes_path: tuple, names: Mapping[str, Any], depth: int,
              at_top: Callable[[int, int, int], None] | None = None) -> tuple[int, int]:
        """(layers, instances) of one scope's node list; ``at_top(k, layers, instances)`` sees running totals."""
        items = [(k, node) for k, node in enumerate(nodes if isinstance(nodes, list) else ()) if isinstance(node, dict)]
        costs: dict[int, tuple[int, int]] = {}  # index -> (layers, instances) of the node, its repeat included
        running_layers = running = 0
        for k, node in items:
            if "share" in node:
                continue
            costs[k] = self.node(node, nodes_path + (k,), names, depth)
            running_layers, running = running_layers + costs[k][0], running + costs[k][1]
            if self.enough(running_layers, running):  # the rest cannot change the verdict
                break
        # A share re-expands its target, the target's own repeat included: the target's cost when it is
        # named in this scope, else the costliest node's (an upper bound).
        shares = [(k, node) for k, node in items if "share" in node]
        by_name = {node["name"]: k for k, node in items if isinstance(node.get("name"), str)} if shares else {}
        costliest = max((c[1] for c in costs.values()), default=1)
        for k, node in shares:
            count = self.repeat(node, nodes_path + (k,), names)
            target = by_name.get(node["share"]) if isinstance(node["share"], str) else None
            unit = costs[target][1] if target in costs else costliest
            costs[k] = (0, min((1 if count is None or count < 0 else count) * max(unit, 1), self.stop))
        layers = instances = 0
        for k, _ in items:
            node_layers, node_instances = costs.get(k, (0, 0))
            layers, instances = min(layers + node_layers, self.layer_top), min(instances + node_instances, self.stop)
            if at_top is not None:
                at_top(k, layers, instances)
        return layers, instances

    def node(self, node: dict, path: tuple, names: Mapping[str, Any], depth: int) -> tuple[int, int]:
        """(layers, instances) of one node that is not a share, its repeat included."""
        count = self.repeat(node, path, names)
        if count == -1:  # one pass of the loop at most: no layer is certain
            return 0, 1
        n = 1 if count is None else count
        certain = node.get("when", True) is True  # only what is certain counts towards the layer floor
        if isinstance(node.get("block"), str) and node["block"] in self.blocks:
            layers, instances = self.block_node(node, path, names, n, depth)
            return (layers if certain else 0), instances
        return (n if certain and ("type" in node or "expr" in node) else 0), n

    def block_node(self, node: dict, path: tuple, names: Mapping[str, Any], n: int, depth: int) -> tuple[int, int]:
        """(layers, instances) of ``n`` instances of a ``block:`` node, the node's own instances included."""
        if depth >= MAX_BLOCK_DEPTH:
            self.truncated += 1
            return 0, n
        given = [k for k in node if k not in NODE_KEYS]
        if n <= 1 or self.floor_only or not any(_uses_index(node[k]) for k in given):  # the same params for every instance
            unit_layers, unit_instances = self.instance(node, path, names, 0 if "repeat" in node else None, depth)
            return min(n * unit_layers, self.layer_top), min(n * (1 + unit_instances), self.stop)
        layers = instances = 0  # params may depend on the repeat index: count each instance
        for i in range(n):
            unit_layers, unit_instances = self.instance(node, path, names, i, depth)
            layers, instances = min(layers + unit_layers, self.layer_top), instances + 1 + unit_instances
            if self.enough(layers, instances):
                return layers, min(instances, self.stop)
        return layers, instances

    def enough(self, layers: int, instances: int) -> bool:
        """Whether counting further cannot change the verdict (the floor pass needs only its layers)."""
        return layers >= self.layer_top or (instances >= self.stop and not self.floor_only)

    def is_fixed(self, root: str) -> bool:
        """Whether every repeat in ``root`` and the blocks it uses is a literal (iterative: chains may be long)."""
        if root in self.fixed:
            return self.fixed[root]
        stack, on_stack = [root], {root}
        while stack:
            b = stack[-1]
            nodes = self.blocks[b].get("nodes") if isinstance(self.blocks[b], dict) else None
            nodes = [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []
            kids = {n["block"] for n in nodes if isinstance(n.get("block"), str) and n["block"] in self.blocks}
            pending = [c for c in kids if c not in self.fixed]
            if any(c in on_stack for c in pending):  # a cycle: reported by check_block_recursion
                self.fixed[b] = False
            elif pending:
                stack.extend(pending)
                on_stack.update(pending)
                continue
            else:
                self.fixed[b] = all(isinstance(n.get("repeat", 1), int) for n in nodes) and \
                    all(self.fixed[c] for c in kids)
            on_stack.discard(stack.pop())
        return self.fixed[root]

    def instance(self, node: dict, path: tuple, names: Mapping[str, Any], i: int | None,
                 depth: int) -> tuple[int, int]:
        """One instance of a block: its params evaluated as :func:`netspec.resolve.blocks._names` does, then its nodes."""
        bname = node["block"]
        bdef = self.blocks[bname]
        if not isinstance(bdef, dict):
            return 0, 0
        if self.is_fixed(bname):  # no param can change its counts: one count per block
            before = self.truncated
            got = self.memo.get(bname) or self.scope(bdef.get("nodes"), ("blocks", bname, "nodes"), self.params,
                                                      depth + 1)
            if self.truncated == before:
                self.memo[bname] = got
            return got
        raw_params = bdef.get("params")
        declared: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        caller = scope_chain({"in_shape": UNKNOWN} if i is None else {"i": i, "in_shape": UNKNOWN}, names)
        local: dict[str, Any] = {}
        inner = scope_chain(local, {"in_shape": UNKNOWN}, self.params)
        bpath = ("blocks", bname)
        for key, default in declared.items():
            if key in node:
                local[key] = self._eval(node[key], path + (key,), caller, deferred=True)
            else:
                local[key] = UNKNOWN if default == "required" else \
                    self._eval(default, bpath + ("params", key), inner, deferred=True)
        vars_ = bdef.get("vars")
        for key, raw in (vars_.items() if isinstance(vars_, dict) else ()):
            local[key] = self._eval(raw, bpath + ("vars", key), inner, deferred=True)
        try:
            memo_key = (bname, tuple((k, _frozen(v)) for k, v in local.items()))
            hash(memo_key)
        except TypeError:
            memo_key = None
        if memo_key is not None and memo_key in self.memo:
            return self.memo[memo_key]
        before = self.truncated
        got = self.scope(bdef.get("nodes"), bpath + ("nodes",), inner, depth + 1)
        if memo_key is not None and self.truncated == before:
            self.memo[memo_key] = got
        return got


_INDEX = re.compile(r"(?<![A-Za-z0-9_])i(?![A-Za-z0-9_])")


def _uses_index(raw: Any) -> bool:
    """Whether a raw param value may use the repeat index ``i`` (a ``$``-string naming ``i``, anywhere in it)."""
    if isinstance(raw, str):
        return "$" in raw and _INDEX.search(raw) is not None
    if isinstance(raw, list):
        return any(_uses_index(v) for v in raw)
    if isinstance(raw, dict):
        return any(_uses_index(v) for v in raw.values())
    return False


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a plain param value (lists and mappings become tuples)."""
    if isinstance(value, list):
        return ("list", tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _frozen(v)) for k, v in value.items()))
    return value


def check_expansion(nodes: Any, blocks: Mapping[str, Any], params: Mapping[str, Any], layer_cap: int,
                    instance_cap: int, value: Callable[..., Any], error: ErrorAt) -> None:
    """Refuse a spec whose expansion passes a cap, counted multiplicatively before anything is expanded.

    Two counts, one walk over the spec's block nesting (blocks are acyclic: checked first):

    - layers certain to be made (a node with ``when`` counts only with ``when: true``), so a graph over
      the layer cap fails in milliseconds, not after 50,000 layers were made;
    - instances the resolver's repeat loop will run, counting every node whether or not ``when`` holds
      (a ``when: false`` node with ``repeat: 10000`` in a block repeated 10,000 times makes no layer,
      but 10**8 passes of the loop).

    Two passes: the first evaluates only the top level's values, so each block is counted once and a graph
    over the layer cap says so cheaply; the second evaluates repeat counts and block params as the
    resolver does (a repeat inside a block sees the params its instance is given). A value that cannot be
    known yet counts as one pass and no certain layer: the resolver stops there with its own error.
    Blocks whose repeats are all literal are counted once; instances whose params use the repeat index
    are counted one by one. Counting stops at the cap, so the walk costs at most one param evaluation
    per instance up to ``instance_cap`` (what the resolver would spend getting there).

    Args:
        nodes: the model's ``nodes`` list; blocks: the ``blocks`` mapping.
        params: the spec's params (for ``repeat: $n``).
        layer_cap, instance_cap: the caps.
        value: ``Resolver.value`` (interpolates a raw value); error: ``Resolver.error``.

    Raises:
        NetspecError: at the top-level node where a count passes its cap.
    """
    def layers_at(k: int, layers: int, instances: int) -> None:
        if layers > layer_cap:
            raise error(f"the graph has more than {layer_cap} layers (counting the layers its blocks and repeats "
                        "make)", ("nodes", k), hint=f"netspec builds graphs of up to {layer_cap} layers")

    def at_top(k: int, layers: int, instances: int) -> None:
        layers_at(k, layers, instances)
        if instances > instance_cap:
            raise error(f"the spec expands to more than {instance_cap} node instances (counting every repeat "
                        "and block instance, also those that when: leaves out)", ("nodes", k),
                        hint=f"netspec expands up to {instance_cap} node instances (twice the layer cap)")

    # First the layers certain from literal repeats alone (no param is evaluated: one count per block), so
    # a graph over the layer cap says so; then both counts with params evaluated as the resolver would.
    _Counter(blocks, params, layer_cap, instance_cap, value, floor_only=True).scope(nodes, ("nodes",), params, 0,
                                                                                   layers_at)
    _Counter(blocks, params, layer_cap, instance_cap, value).scope(nodes, ("nodes",), params, 0, at_top)
