"""Checks of a spec's structure before it is expanded: blocks that reach themselves, graphs over the layer cap."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from .errors import NetspecError

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


def check_size_floor(nodes: list, blocks: Mapping[str, Any], params: Mapping[str, Any], cap: int,
                     value: Callable[..., Any], error: ErrorAt) -> None:
    """Refuse a graph over the layer cap before expanding it, from a lower bound of its size.

    Blocks nested in blocks multiply (six levels of ten instances make 10**6 layers); counting
    them before expansion makes such a spec fail in milliseconds, not after 50,000 layers were
    made. Only what is certain counts: a node with ``when`` counts 0 unless ``when: true``, and a
    ``repeat`` counts only when its value is known without instance params.

    Args:
        nodes: the model's ``nodes`` list; blocks: the ``blocks`` mapping (acyclic: checked first).
        params: the spec's params, for ``repeat: $n`` at the top level.
        value: ``Resolver.value`` (interpolates a raw value); error: ``Resolver.error``.

    Raises:
        NetspecError: at the top-level node where the count passes ``cap``.
    """
    floor: dict[str, int] = {}

    def node_floor(node: Any, names: Mapping[str, Any] | None, path: tuple) -> int:
        if not isinstance(node, dict) or node.get("when", True) is not True:
            return 0
        count = node.get("repeat", 1)
        if isinstance(count, str) and names is not None:
            try:
                count = value(count, path + ("repeat",), names, None)
            except NetspecError:
                count = 0
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
            return 0  # a bad repeat gets its own error from the resolver
        if "type" in node or "expr" in node:
            unit = 1
        elif isinstance(node.get("block"), str) and node["block"] in floor:
            unit = floor[node["block"]]
        else:
            unit = 0
        return min(count * unit, cap + 1)

    pending = [b for b in blocks if isinstance(blocks[b], dict)]
    while pending:  # blocks in dependency order
        later = []
        for b in pending:
            block_nodes = blocks[b].get("nodes") or []
            needs = {n["block"] for n in block_nodes if isinstance(n, dict) and isinstance(n.get("block"), str)
                     and n["block"] in blocks and n["block"] not in floor}
            if needs:
                later.append(b)
                continue
            floor[b] = min(sum(node_floor(n, None, ()) for n in block_nodes), cap + 1)
        if len(later) == len(pending):  # a dangling or recursive block: reported by the resolver
            break
        pending = later
    total = 0
    for k, node in enumerate(nodes):
        total += node_floor(node, params, ("nodes", k))
        if total > cap:
            raise error(f"the graph has more than {cap} layers (counting the layers its blocks and repeats make)",
                        ("nodes", k), hint=f"netspec builds graphs of up to {cap} layers")
