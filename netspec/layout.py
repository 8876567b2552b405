"""A layered graph layout in pure Python: ranks top to bottom, nested clusters that never overlap.

Ranks are longest paths from the inputs. An edge that skips ranks gets a chain of dummy points (so
a residual connection runs beside the layers it skips, not through them), owned by the innermost
cluster holding both ends. Each cluster is laid out on its own, bottom-up: its nodes, dummies and
child clusters are placed in rank order, each as close as it can get to the mean x of what feeds it,
on the nearest spot where nothing of the ranks it spans is already placed. Child clusters are
placed as one rectangle, so clusters are boxes that contain only their own nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GAP_X = 18          # between neighbours on a rank
GAP_Y = 34          # between ranks
PAD = 10            # cluster padding (sides, bottom)
PAD_TOP = 20        # cluster padding above (room for its label)
MARGIN = 16
DUMMY_W = 8


@dataclass
class Box:
    """A node to place: its size and the cluster path it belongs to (outermost first)."""

    id: str
    width: float
    height: float
    scope: tuple[str, ...] = ()


@dataclass
class Layout:
    nodes: dict[str, tuple[float, float, float, float]]           # id -> x, y, w, h
    clusters: dict[tuple[str, ...], tuple[float, float, float, float]]
    edges: list[tuple[str, str, list[tuple[float, float]]]]      # src, dst, polyline
    width: float
    height: float


@dataclass
class _Item:
    key: object                 # a node id, ("dummy", k) or a cluster path
    r0: int
    r1: int
    width: float
    order: int
    dummy: bool = False
    inner: dict = field(default_factory=dict)   # cluster: member id -> x centre, relative


def _common(a: tuple, b: tuple) -> tuple:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


def layout(boxes: list[Box], edges: list[tuple[str, str]]) -> Layout:
    """Place ``boxes`` (in a topological order) and route ``edges`` (pairs of ids).

    Returns:
        Positions of nodes and cluster rectangles, edge polylines, and the picture's size.
    """
    by_id = {b.id: b for b in boxes}
    order = {b.id: k for k, b in enumerate(boxes)}
    preds: dict[str, list[str]] = {b.id: [] for b in boxes}
    for s, d in edges:
        preds[d].append(s)
    rank: dict[object, int] = {}
    for b in boxes:
        rank[b.id] = 1 + max((rank[p] for p in preds[b.id]), default=-1)

    # Dummy chains for edges that skip ranks; every point knows its predecessor for placement.
    scope_of: dict[object, tuple] = {b.id: b.scope for b in boxes}
    point_preds: dict[object, list] = {b.id: list(preds[b.id]) for b in boxes}
    routes: list[tuple[str, str, list]] = []
    dummies: list[object] = []
    for s, d in edges:
        chain: list = []
        prev: object = s
        for r in range(rank[s] + 1, rank[d]):
            key = ("dummy", len(dummies))
            dummies.append(key)
            rank[key] = r
            scope_of[key] = _common(by_id[s].scope, by_id[d].scope)
            point_preds[key] = [prev]
            order[key] = order[d] - 0.5  # type: ignore[assignment]
            chain.append(key)
            prev = key
        routes.append((s, d, chain))
        if chain:
            point_preds[d] = [chain[-1] if p == s else p for p in point_preds[d]]

    widths = {b.id: b.width for b in boxes}
    widths.update({k: DUMMY_W for k in dummies})
    members: dict[tuple, list] = {}
    for key, scope in scope_of.items():
        members.setdefault(scope, []).append(key)
    children: dict[tuple, set] = {}
    for scope in list(members):
        for n in range(len(scope)):
            children.setdefault(scope[:n], set()).add(scope[:n + 1])
            members.setdefault(scope[:n + 1], members.get(scope[:n + 1], []))

    rel: dict[tuple, _Item] = {}

    def place(scope: tuple) -> _Item:
        items: list[_Item] = []
        for key in members.get(scope, []):
            items.append(_Item(key, rank[key], rank[key], widths[key], order[key], isinstance(key, tuple)))
        for child in sorted(children.get(scope, ()), key=str):
            sub = place(child)
            items.append(sub)
        items.sort(key=lambda it: (it.r0, it.dummy, it.order))
        occupied: dict[int, list[tuple[float, float]]] = {}
        centre: dict[object, float] = {}
        for it in items:
            inner = it.inner if isinstance(it.key, tuple) and not it.dummy else {it.key: it.width / 2}
            wants = []
            for member, offset in inner.items():
                for p in point_preds.get(member, []):
                    if p in centre:
                        wants.append(centre[p] - offset)
            desired = sum(wants) / len(wants) if wants else 0.0
            x = _free_spot(desired, it.width, it.r0, it.r1, occupied)
            for r in range(it.r0, it.r1 + 1):
                occupied.setdefault(r, []).append((x, x + it.width))
            for member, offset in inner.items():
                centre[member] = x + offset
        left = min((a for spans in occupied.values() for a, _ in spans), default=0.0)
        right = max((b for spans in occupied.values() for _, b in spans), default=0.0)
        pad = PAD if scope else 0.0
        inner = {m: c - left + pad for m, c in centre.items()}
        item = _Item(scope, min((it.r0 for it in items), default=0), max((it.r1 for it in items), default=0),
                     right - left + 2 * pad, min((it.order for it in items), default=0), inner=inner)
        rel[scope] = item
        return item

    root = place(())

    # Vertical: each rank is as tall as its nodes, plus room for the cluster borders that start or end there.
    n_ranks = root.r1 + 1
    height = [0.0] * n_ranks
    above = [0] * n_ranks
    below = [0] * n_ranks
    for b in boxes:
        height[rank[b.id]] = max(height[rank[b.id]], b.height)
        starts = sum(1 for n in range(1, len(b.scope) + 1) if rel[b.scope[:n]].r0 == rank[b.id])
        ends = sum(1 for n in range(1, len(b.scope) + 1) if rel[b.scope[:n]].r1 == rank[b.id])
        above[rank[b.id]] = max(above[rank[b.id]], starts)
        below[rank[b.id]] = max(below[rank[b.id]], ends)
    for scope, item in rel.items():  # clusters made only of dummies and clusters still need room
        if scope:
            above[item.r0] = max(above[item.r0], len(scope))
            below[item.r1] = max(below[item.r1], len(scope))
    top = []
    y = MARGIN
    for r in range(n_ranks):
        y += above[r] * PAD_TOP
        top.append(y)
        y += height[r] + below[r] * PAD + GAP_Y
    total_h = y - GAP_Y + MARGIN

    xs = {k: c + MARGIN for k, c in root.inner.items()}
    nodes = {}
    for b in boxes:
        nodes[b.id] = (xs[b.id] - b.width / 2, top[rank[b.id]], b.width, b.height)
    clusters: dict[tuple, tuple[float, float, float, float]] = {}
    for scope in sorted((s for s in rel if s), key=len, reverse=True):
        inside = [nodes[k] for k in members.get(scope, []) if k in nodes]
        inside += [clusters[c] for c in children.get(scope, ()) if c in clusters]
        dummy_xs = [xs[k] for k in members.get(scope, []) if k not in nodes]
        item = rel[scope]
        x0 = min([n[0] for n in inside] + [x - DUMMY_W / 2 for x in dummy_xs]) - PAD
        x1 = max([n[0] + n[2] for n in inside] + [x + DUMMY_W / 2 for x in dummy_xs]) + PAD
        y0 = min([n[1] for n in inside] + [top[item.r0]]) - PAD_TOP
        y1 = max([n[1] + n[3] for n in inside] + [top[item.r1] + height[item.r1]]) + PAD
        clusters[scope] = (x0, y0, x1 - x0, y1 - y0)

    paths = []
    for s, d, chain in routes:
        sx, sy, sw, sh = nodes[s]
        dx, dy, dw, _ = nodes[d]
        points = [(sx + sw / 2, sy + sh)]
        for key in chain:
            r = rank[key]
            points.append((xs[key], top[r]))
            points.append((xs[key], top[r] + height[r]))
        points.append((dx + dw / 2, dy))
        paths.append((s, d, points))
    width = max((x + w for x, _, w, _ in list(nodes.values()) + list(clusters.values())), default=0) + MARGIN
    return Layout(nodes, clusters, paths, width, total_h)


def _free_spot(desired: float, width: float, r0: int, r1: int,
               occupied: dict[int, list[tuple[float, float]]]) -> float:
    """The x nearest ``desired`` where ``width`` fits beside everything on ranks r0..r1."""
    spans = [s for r in range(r0, r1 + 1) for s in occupied.get(r, [])]
    candidates = [desired] + [b + GAP_X for _, b in spans] + [a - GAP_X - width for a, _ in spans]
    # Nearest first; on the left only when clearly nearer, so that branches keep their order.
    for x in sorted(candidates, key=lambda c: (abs(c - desired) * (1.0 if c >= desired else 1.5), c)):
        if all(x + width + GAP_X <= a + 1e-6 or x >= b + GAP_X - 1e-6 for a, b in spans):
            return x
    return max((b for _, b in spans), default=0.0) + GAP_X
