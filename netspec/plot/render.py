"""``netspec plot``: the checked graph as a picture (SVG written by netspec; PNG drawn with matplotlib).

Every node shows its name, type, parameters and output shape (from ``spec.check()``); block instances
are drawn as labelled clusters (nested as the blocks nest); shared layers have a dashed border and
say whose weights they use. No Graphviz: the layout is netspec's own (netspec/layout.py).

Hostile graphs: plot draws at most MAX_NODES nodes and MAX_EDGES edges (check_size refuses more
before anything is built), PNG at most MAX_PNG_SIDE px a side, MAX_PNG_PIXELS pixels and
MAX_PNG_INK px of edges (refused before matplotlib allocates and draws), long names are clipped in the picture, and every string written into
the SVG goes through xml_text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..errors import PlotError, short
from .layout import Box, Layout, layout

FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
FONT_SIZE = 11.0
CHAR_W = 0.62 * FONT_SIZE  # advance of a monospace character
LINE_H = 14.0
NODE_PAD = 8.0
MAX_CHARS = 46
# What plot draws at most. The layout is near-linear (netspec/layout.py), so these bound the time
# (a few seconds of layout and SVG at the bound; `check` costs more) and the file (~1 KiB a node).
MAX_NODES = 5000
MAX_EDGES = 50_000
# PNG is a pixel buffer matplotlib allocates at once (4 bytes a pixel); Agg's sides stop below 2**16.
MAX_PNG_SIDE = 32_768
MAX_PNG_PIXELS = 64 * 2**20
# Agg's time goes into the pixels its lines cover: ~6 s per 10 million px of edge length on one core.
MAX_PNG_INK = 16_000_000

# Fill colours by layer family (the stroke is a darker shade of the same hue).
_FAMILIES = [
    (("Input",), "#eeeeee"),
    (("Conv", "Dense", "EinsumDense", "Embedding"), "#dbe9f7"),
    (("Normalization",), "#dff0d8"),
    (("Activation", "ReLU", "Softmax", "PReLU", "ELU"), "#fcf3cf"),
    (("Pooling", "Padding", "Cropping", "UpSampling", "Resizing"), "#e8def8"),
    (("Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "Dot"), "#fde2cf"),
    (("Dropout", "Noise", "Flatten", "Reshape", "Permute"), "#f2f2f2"),
    (("LSTM", "GRU", "RNN", "Attention", "Bidirectional"), "#f8d7da"),
    (("expr",), "#d1f2eb"),
]
_CLUSTER_FILLS = ["#f7f9fc", "#eef3f9", "#e6eef7", "#dde8f4"]


def _fill(type_name: str) -> str:
    for keys, colour in _FAMILIES:
        if any(k in type_name for k in keys):
            return colour
    return "#ffffff"


@dataclass
class Card:
    """What one node shows."""

    id: str
    lines: list[str]
    fill: str
    shared: bool
    output: bool


def _shape_text(shape) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join(["None"] + ["None" if d is None else str(d) for d in shape]) + ")"


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_size(spec) -> None:
    """Refuse a graph over plot's bounds before anything is built or laid out.

    Raises:
        PlotError: more than MAX_NODES nodes or MAX_EDGES edges, located at the spec's ``nodes:``.
    """
    graph = spec.graph
    n_nodes = len(graph.nodes) + len(graph.inputs)
    n_edges = sum(len({r.node for r in node.input_refs()}) for node in graph.nodes)
    for what, count, bound in (("nodes", n_nodes, MAX_NODES), ("edges", n_edges, MAX_EDGES)):
        if count > bound:
            raise PlotError(f"plot draws at most {bound:,} {what}; this graph has {count:,} "
                            f"({n_nodes:,} nodes counting inputs, {n_edges:,} edges). `netspec check` and "
                            "`build` have no such bound",
                            path=("nodes",), location=spec.document.source.key(("nodes",)))


# Characters XML 1.0 does not allow at all (C0 controls but tab/newline/return, surrogates, U+FFFE/F),
# plus C1 controls and DEL, which it allows but no one means: shown as Python-style escapes.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ENTITIES = {'"': "&quot;", "'": "&#39;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def xml_text(value: object) -> str:
    """Any text as SVG character data or a quoted attribute value; every string in the SVG goes through it.

    Markup characters and quotes become entities, newlines and tabs character references (so an
    attribute keeps them), and characters XML forbids become visible ``\\xNN``/``\\uNNNN`` escapes.
    """
    text = _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", str(value))
    return escape(text, _ENTITIES)


def cards(spec, result) -> tuple[list[Card], list[tuple[str, str]], dict[str, tuple]]:
    """Node cards, edges and cluster paths from a spec and its ``check()`` result."""
    graph = spec.graph
    nodes = {n.name: n for n in graph.nodes}
    outputs = {ref.node for _, ref in graph.outputs}
    out: list[Card] = []
    scopes: dict[str, tuple] = {}
    for row in result.rows:
        node = nodes.get(row.name)
        kind = row.type
        if node is not None and node.kind == "expr":
            kind = "expr: " + " ".join((node.expr or "").split())
        elif row.shared and node is not None:
            kind = f"{row.type} (shares {node.share_of})"
        second = kind if not row.params else f"{kind} · {row.params:,} params"
        lines = [_clip(row.name), _clip(second), _clip(_shape_text(row.shape))]
        family = "expr" if node is not None and node.kind == "expr" else row.type
        out.append(Card(row.name, lines, _fill(family), row.shared, row.name in outputs))
        scopes[row.name] = tuple(row.scope)
    edges = []
    for node in graph.nodes:
        for ref in dict.fromkeys(r.node for r in node.input_refs()):
            edges.append((ref, node.name))
    return out, edges, scopes


def block_names(spec) -> dict[tuple, str]:
    """The block each cluster (instance path) is an instance of, where the graph says so."""
    names: dict[tuple, str] = {}
    for node in spec.graph.nodes:
        if node.scope and len(node.path) > 1 and node.path[0] == "blocks":
            names.setdefault(tuple(node.scope), str(node.path[1]))
    return names


@dataclass
class Picture:
    """A laid-out picture: cards, the layout and cluster labels; rendered by to_svg/to_png."""

    cards: list[Card]
    layout: Layout
    labels: dict[tuple, str]
    title: str

    @property
    def size(self) -> tuple[int, int]:
        return int(self.layout.width + 0.5), int(self.layout.height + 0.5)


def picture(spec, result) -> Picture:
    """Lay out the spec's graph.

    Args:
        spec: a loaded :class:`netspec.Spec`.
        result: its :class:`netspec.CheckResult` (``spec.check()``), for shapes and parameters.

    Raises:
        PlotError: the graph is over MAX_NODES or MAX_EDGES.
    """
    check_size(spec)
    card_list, edges, scopes = cards(spec, result)
    boxes = [Box(c.id, max(len(line) for line in c.lines) * CHAR_W + 2 * NODE_PAD,
                 len(c.lines) * LINE_H + 2 * NODE_PAD - 4, scopes[c.id]) for c in card_list]
    laid = layout(boxes, edges)
    blocks = block_names(spec)
    labels = {}
    for scope in laid.clusters:
        block = blocks.get(scope)
        labels[scope] = _clip(scope[-1]) + (f"  [block {_clip(block)}]" if block else "")
    return Picture(card_list, laid, labels, _clip(spec.name, 200))


# ---------------------------------------------------------------------------------------------
# SVG (no dependency).


def to_svg(pic: Picture) -> str:
    """The picture as a standalone SVG document."""
    w, h = pic.size
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'font-family="{xml_text(FONT)}" font-size="{FONT_SIZE:g}">',
           f"<title>{xml_text(pic.title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
           f'<rect width="{w}" height="{h}" fill="#ffffff"/>']
    for scope, (x, y, cw, ch) in sorted(pic.layout.clusters.items(), key=lambda kv: len(kv[0])):
        fill = _CLUSTER_FILLS[min(len(scope) - 1, len(_CLUSTER_FILLS) - 1)]
        out.append(f'<g class="cluster" id="cluster-{xml_text("/".join(scope))}"><title>{xml_text(pic.labels[scope])}</title>'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" rx="6" fill="{xml_text(fill)}" '
                   f'stroke="#8aa4c8" stroke-width="1"/>'
                   f'<text x="{x + 6:.1f}" y="{y + 14:.1f}" fill="#3a5a8a" font-size="10">{xml_text(pic.labels[scope])}</text></g>')
    for src, dst, points in pic.layout.edges:
        d = "M " + " L ".join(f"{px:.1f} {py:.1f}" for px, py in points)
        out.append(f'<path class="edge" data-from="{xml_text(src)}" data-to="{xml_text(dst)}" d="{d}" fill="none" '
                   'stroke="#555" stroke-width="1.1" marker-end="url(#arrow)"/>')
    for card in pic.cards:
        x, y, cw, ch = pic.layout.nodes[card.id]
        cls = "node" + (" shared" if card.shared else "") + (" output" if card.output else "")
        dash = ' stroke-dasharray="5 3"' if card.shared else ""
        width = 2.2 if card.output else 1.0
        out.append(f'<g class="{xml_text(cls)}" id="node-{xml_text(card.id)}"><title>{xml_text(" | ".join(card.lines))}</title>'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" rx="4" fill="{xml_text(card.fill)}" '
                   f'stroke="#333" stroke-width="{width}"{dash}/>')
        for k, line in enumerate(card.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            out.append(f'<text x="{x + NODE_PAD:.1f}" y="{y + NODE_PAD + 10 + k * LINE_H:.1f}"{weight}>{xml_text(line)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# PNG (matplotlib, optional).

PNG_HINT = "PNG output needs matplotlib: pip install 'netspec[plot]' (or pip install matplotlib); SVG needs nothing"


def to_png(pic: Picture, path: str | os.PathLike, dpi: int = 100) -> None:
    """Draw the picture with matplotlib's Agg backend into a PNG file.

    Raises:
        PlotError: matplotlib is missing, or the picture is over MAX_PNG_SIDE, MAX_PNG_PIXELS or
            MAX_PNG_INK (checked before matplotlib is imported).
    """
    w, h = pic.size
    if max(w, h) > MAX_PNG_SIDE or w * h > MAX_PNG_PIXELS:
        raise PlotError(f"PNG is limited to {MAX_PNG_SIDE:,} px a side and {MAX_PNG_PIXELS // 2**20} megapixels; "
                        f"this picture is {w:,}x{h:,} px: write an .svg instead (it has no such limit)")
    ink = _ink(pic.layout)
    if ink > MAX_PNG_INK:
        raise PlotError(f"PNG draws at most {MAX_PNG_INK:,} px of edges (their total length); this picture's "
                        f"{len(pic.layout.edges):,} edges are {ink:,.0f} px long: write an .svg instead")
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyBboxPatch
    except ImportError as e:
        raise PlotError(PNG_HINT) from e
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    pt = 72.0 / dpi  # font sizes are in points; the layout is in pixels
    # add_artist, not add_patch: the limits are set above, and add_patch recomputes them per patch
    # (quadratic in practice: most of the time of a 10,000-edge PNG).
    for scope, (x, y, cw, ch) in sorted(pic.layout.clusters.items(), key=lambda kv: len(kv[0])):
        fill = _CLUSTER_FILLS[min(len(scope) - 1, len(_CLUSTER_FILLS) - 1)]
        ax.add_artist(FancyBboxPatch((x, y), cw, ch, boxstyle="round,pad=0,rounding_size=6", fc=fill,
                                     ec="#8aa4c8", lw=1))
        ax.text(x + 6, y + 14, pic.labels[scope], fontsize=10 * pt, color="#3a5a8a", family="monospace",
                parse_math=False)
    # Edges as one collection of polylines and one of arrowheads: two draw calls, whatever the count.
    lines = [points for _, _, points in pic.layout.edges]
    ax.add_collection(LineCollection(lines, colors="#555555", linewidths=1.1), autolim=False)
    ax.add_collection(PolyCollection([_arrowhead(points) for points in lines], facecolors="#555555",
                                     edgecolors="none"), autolim=False)
    for card in pic.cards:
        x, y, cw, ch = pic.layout.nodes[card.id]
        ax.add_artist(FancyBboxPatch((x, y), cw, ch, boxstyle="round,pad=0,rounding_size=4", fc=card.fill,
                                     ec="#333", lw=2.2 if card.output else 1.0,
                                     ls=(0, (5, 3)) if card.shared else "-"))
        for k, line in enumerate(card.lines):
            ax.text(x + NODE_PAD, y + NODE_PAD + 10 + k * LINE_H, line, fontsize=FONT_SIZE * pt,
                    family="monospace", weight="bold" if k == 0 else "normal", parse_math=False)
    fig.savefig(path, dpi=dpi, format="png")


def _ink(laid: Layout) -> float:
    """The total length of the edges, in pixels: what Agg's time grows with."""
    return sum(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 for _, _, points in laid.edges
               for (x0, y0), (x1, y1) in zip(points, points[1:]))


def _arrowhead(points: list[tuple[float, float]], length: float = 7.0, half: float = 3.0) -> list:
    """The triangle at the end of a polyline, pointing along its last segment."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    dx, dy = x1 - x0, y1 - y0
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = x1 - length * ux, y1 - length * uy
    return [(x1, y1), (bx - half * uy, by + half * ux), (bx + half * uy, by - half * ux)]


def render_file(spec, result, path: str | os.PathLike) -> str:
    """Write the picture of ``spec`` to ``path`` (.svg or .png) atomically.

    Returns:
        A short description (``"177 nodes, 16 clusters, 1204x13020 px"``).

    Raises:
        PlotError: PNG without matplotlib (the message names the package to install), a graph or
            PNG over plot's bounds, or a file that cannot be written.
    """
    from ..build.saving import atomic_path

    pic = picture(spec, result)
    try:
        with atomic_path(path) as tmp:
            if str(path).endswith(".png"):
                to_png(pic, tmp)
            else:
                tmp.write_text(to_svg(pic), encoding="utf-8")
    except OSError as e:  # a name too long, a directory not writable, a full disk
        raise PlotError(f"cannot write {short(os.fspath(path), 80)}: {e.strerror or e}") from e
    w, h = pic.size
    return f"{len(pic.cards)} nodes, {len(pic.layout.clusters)} clusters, {w}x{h} px"
