"""A layered graph layout in pure Python: ranks top to bottom, nested clusters that never overlap.

Ranks are longest paths from the inputs. Edges that skip ranks run in lanes: one narrow item that
spans every rank skipped (so a residual connection runs beside the layers it skips, not through
them), owned by the innermost cluster holding both ends. A lane is shared by the long edges of one
source (fan-out) or of one destination (fan-in), whichever has more, so a node feeding or fed by
1,500 others costs one lane, not 1,500 x the ranks skipped. Each cluster is laid out on its own,
bottom-up: its nodes, lanes and child clusters are placed in rank order, each as close as it can get
to the mean x of what feeds it, on the nearest spot where nothing of the ranks it spans is already
placed. Child clusters are placed as one rectangle, so clusters are boxes that contain only their
own nodes.

Cost: O((V + E) log(V + E)) plus O(V x cluster depth): the spots taken are swept rank by rank
(_Rows), since everything placed before an item that reaches into its ranks also covers its first
rank; the search for a free spot looks at most MAX_STEPS neighbours on each side, then goes past
the outermost one.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from dataclasses import dataclass, field

GAP_X = 18          # between neighbours on a rank
GAP_Y = 34          # between ranks
PAD = 10            # cluster padding (sides, bottom)
PAD_TOP = 20        # cluster padding above (room for its label)
MARGIN = 16
LANE_W = 8          # a lane's width
MAX_STEPS = 64      # neighbours a free-spot search steps over before it goes past them all
_EPS = 1e-6


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
    lanes: int = 0                                               # long-edge lanes routed


@dataclass
class _Item:
    key: object                 # a node id, ("lane", k) or a cluster path
    r0: int
    r1: int
    width: float
    order: float                # position in the input order; a lane sits half a step before its target
    lane: bool = False
    inner: dict = field(default_factory=dict)   # cluster: member id -> x centre, relative


def _common(a: tuple, b: tuple) -> tuple:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


# A lane: (key, owning scope, first rank, last rank, the ids it is placed near, order).
_Lane = tuple[tuple[str, int], tuple[str, ...], int, int, list[str], float]


def _lanes(boxes: list[Box], edges: list[tuple[str, str]], rank: dict, order: dict
           ) -> tuple[list[_Lane], dict[tuple[str, str], tuple[str, int]]]:
    """Group the edges that skip ranks into lanes.

    Returns:
        (lanes, lane_of): lanes as (key, scope, r0, r1, wants, order), and each long edge's lane key.
    """
    scope = {b.id: b.scope for b in boxes}
    long = [(s, d) for s, d in dict.fromkeys(edges) if rank[d] - rank[s] > 1]
    fan_out = Counter(s for s, _ in long)
    fan_in = Counter(d for _, d in long)
    groups: dict[tuple, list[tuple[str, str]]] = {}
    for s, d in long:
        owner = _common(scope[s], scope[d])
        key = ("in", d, owner) if fan_in[d] > fan_out[s] else ("out", s, owner)
        groups.setdefault(key, []).append((s, d))
    lanes: list[_Lane] = []
    lane_of: dict[tuple[str, str], tuple[str, int]] = {}
    for (how, end, owner), group in groups.items():
        lane_key = ("lane", len(lanes))
        if how == "out":
            lanes.append((lane_key, owner, rank[end] + 1, max(rank[d] for _, d in group) - 1, [end],
                          min(order[d] for _, d in group) - 0.5))
        else:
            lanes.append((lane_key, owner, min(rank[s] for s, _ in group) + 1, rank[end] - 1,
                          [s for s, _ in group], order[end] - 0.5))
        lane_of.update(dict.fromkeys(group, lane_key))
    return lanes, lane_of


def layout(boxes: list[Box], edges: list[tuple[str, str]]) -> Layout:
    """Place ``boxes`` (in a topological order) and route ``edges`` (pairs of ids).

    Returns:
        Positions of nodes and cluster rectangles, edge polylines, and the picture's size.
    """
    order: dict[object, float] = {b.id: k for k, b in enumerate(boxes)}
    preds: dict[str, list[str]] = {b.id: [] for b in boxes}
    for s, d in edges:
        preds[d].append(s)
    rank: dict[object, int] = {}
    for b in boxes:
        rank[b.id] = 1 + max((rank[p] for p in preds[b.id]), default=-1)

    # Lanes for edges that skip ranks; every item knows what feeds it, for placement.
    lanes, lane_of = _lanes(boxes, edges, rank, order)
    scope_of: dict[object, tuple] = {b.id: b.scope for b in boxes}
    span: dict[object, tuple[int, int]] = {b.id: (rank[b.id], rank[b.id]) for b in boxes}
    point_preds: dict[object, list] = {}
    for b in boxes:
        point_preds[b.id] = list(dict.fromkeys(lane_of.get((p, b.id), p) for p in preds[b.id]))
    widths: dict[object, float] = {b.id: b.width for b in boxes}
    for lane_key, owner, r0, r1, wants, lane_order in lanes:
        scope_of[lane_key], span[lane_key], point_preds[lane_key] = owner, (r0, r1), wants
        widths[lane_key], order[lane_key] = LANE_W, lane_order

    members: dict[tuple, list] = {}
    for key, scope in scope_of.items():
        members.setdefault(scope, []).append(key)
    children: dict[tuple, set] = {}
    for scope in list(members):
        for n in range(len(scope)):
            children.setdefault(scope[:n], set()).add(scope[:n + 1])
            members.setdefault(scope[:n + 1], [])

    rel: dict[tuple, _Item] = {}

    def place(scope: tuple) -> _Item:
        items: list[_Item] = []
        for key in members.get(scope, []):
            r0, r1 = span[key]
            items.append(_Item(key, r0, r1, widths[key], order[key], isinstance(key, tuple)))
        for child in sorted(children.get(scope, ()), key=str):
            items.append(place(child))
        items.sort(key=lambda it: (it.r0, it.lane, it.order))
        rows = _Rows()
        centre: dict[object, float] = {}
        for it in items:
            rows.advance(it.r0)
            inner = it.inner if isinstance(it.key, tuple) and not it.lane else {it.key: it.width / 2}
            wants = [centre[p] - offset for member, offset in inner.items()
                     for p in point_preds.get(member, ()) if p in centre]
            desired = sum(wants) / len(wants) if wants else 0.0
            x = rows.free_spot(desired, it.width)
            rows.add(x, x + it.width, it.r1)
            for member, offset in inner.items():
                centre[member] = x + offset
        left, right = (rows.left, rows.right) if items else (0.0, 0.0)
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
    for scope, item in rel.items():  # clusters made only of lanes and clusters still need room
        if scope:
            above[item.r0] = max(above[item.r0], len(scope))
            below[item.r1] = max(below[item.r1], len(scope))
    top = []
    y: float = MARGIN
    for r in range(n_ranks):
        y += above[r] * PAD_TOP
        top.append(y)
        y += height[r] + below[r] * PAD + GAP_Y
    total_h = y - GAP_Y + MARGIN

    xs = {k: c + MARGIN for k, c in root.inner.items()}
    nodes: dict[str, tuple[float, float, float, float]] = {}
    for b in boxes:
        nodes[b.id] = (xs[b.id] - b.width / 2, top[rank[b.id]], b.width, b.height)
    clusters: dict[tuple, tuple[float, float, float, float]] = {}
    for scope in sorted((s for s in rel if s), key=len, reverse=True):
        inside = [nodes[k] for k in members.get(scope, []) if k in nodes]
        inside += [clusters[c] for c in children.get(scope, ()) if c in clusters]
        lane_xs = [xs[k] for k in members.get(scope, []) if k not in nodes]
        item = rel[scope]
        x0 = min([n[0] for n in inside] + [x - LANE_W / 2 for x in lane_xs]) - PAD
        x1 = max([n[0] + n[2] for n in inside] + [x + LANE_W / 2 for x in lane_xs]) + PAD
        y0 = min([n[1] for n in inside] + [top[item.r0]]) - PAD_TOP
        y1 = max([n[1] + n[3] for n in inside] + [top[item.r1] + height[item.r1]]) + PAD
        clusters[scope] = (x0, y0, x1 - x0, y1 - y0)

    paths = []
    for s, d in edges:
        sx, sy, sw, sh = nodes[s]
        dx, dy, dw, _ = nodes[d]
        points = [(sx + sw / 2, sy + sh)]
        lane = lane_of.get((s, d))
        if lane is not None:  # down the lane from the rank below s to the rank above d
            first, last = rank[s] + 1, rank[d] - 1
            points += [(xs[lane], top[first]), (xs[lane], top[last] + height[last])]
        points.append((dx + dw / 2, dy))
        paths.append((s, d, points))
    width = max((x + w for x, _, w, _ in list(nodes.values()) + list(clusters.values())), default=0) + MARGIN
    width = max(width, root.width + 2 * MARGIN)
    return Layout(nodes, clusters, paths, width, total_h, len(lanes))


class _Rows:
    """The spots taken on the rank being placed, swept down the ranks.

    Items are placed in order of their first rank, so whatever was placed earlier and reaches into
    an item's ranks also covers its first rank: the spans on the current rank are all a free-spot
    search needs. They are kept sorted and disjoint; spans leave when the sweep passes their last rank.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self.leaving: list[tuple[int, float, float]] = []   # heap of (last rank, a, b)
        self.left = float("inf")
        self.right = float("-inf")

    def advance(self, r: int) -> None:
        while self.leaving and self.leaving[0][0] < r:
            _, a, b = heapq.heappop(self.leaving)
            del self.spans[bisect_left(self.spans, (a, b))]

    def add(self, a: float, b: float, last: int) -> None:
        insort(self.spans, (a, b))
        heapq.heappush(self.leaving, (last, a, b))
        self.left, self.right = min(self.left, a), max(self.right, b)

    def free_spot(self, desired: float, width: float) -> float:
        """The x nearest ``desired`` where ``width`` fits; on the left only when clearly nearer, so
        that branches keep their order."""
        spans = self.spans
        if not spans:
            return desired
        x, j, steps = desired, bisect_right(spans, desired - GAP_X + _EPS, key=lambda s: s[1]), 0
        while j < len(spans):  # spans from j on end right of desired: step over those in the way
            a, b = spans[j]
            if x + width + GAP_X <= a + _EPS:
                break
            if steps == MAX_STEPS:
                x = spans[-1][1] + GAP_X
                break
            x, j, steps = max(x, b + GAP_X), j + 1, steps + 1
        right = x
        x, j, steps = desired, bisect_left(spans, desired + width + GAP_X - _EPS, key=lambda s: s[0]) - 1, 0
        while j >= 0:
            a, b = spans[j]
            if x >= b + GAP_X - _EPS:
                break
            if steps == MAX_STEPS:
                x = spans[0][0] - GAP_X - width
                break
            x, j, steps = min(x, a - GAP_X - width), j - 1, steps + 1
        left = x
        return min((right - desired, right), (1.5 * (desired - left), left))[1]
