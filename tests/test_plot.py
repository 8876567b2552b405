"""netspec plot: every example spec renders to an SVG that holds every node (with its type, shape and
parameters), a cluster per block instance, shared layers marked; the layout never overlaps; PNG via
matplotlib, with a clear message when it is missing. Hostile graphs: the layout's work grows linearly
(counted, not timed) for fan-in, fan-out, skip and wide shapes, graphs over plot's bounds are refused
before they are built, and every string in the SVG is escaped by one function."""

from __future__ import annotations

import builtins
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

import netspec
from netspec.plot import layout as layout_mod
from netspec.plot import render as plot_mod
from netspec.cli import main
from netspec.plot.layout import LANE_W, Box, layout
from netspec.plot import PlotError
from netspec.plot.render import MAX_CHARS, PNG_HINT, Card, Picture, check_size, picture, to_png, to_svg, xml_text

from conftest import ROOT, SPECS

sys.path.insert(0, str(ROOT / "tests" / "hostile_setups"))
from scale import spec_text  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
EXAMPLES = sorted(SPECS.glob("*.yaml"))


@pytest.fixture(scope="module")
def checked(keras):
    """Each example spec with its check() result (one build per spec for the whole module)."""
    out = {}
    for path in EXAMPLES:
        spec = netspec.load(path, trust_plugins=True)  # the shipped specs' plugins are ours
        out[path.stem] = (spec, spec.check())
    return out


def parse(svg_text: str):
    root = ET.fromstring(svg_text)
    nodes, clusters = {}, {}
    for g in root.iter(f"{SVG}g"):
        cls = g.get("class", "").split()
        texts = [t.text for t in g.iter(f"{SVG}text")]
        rect = g.find(f"{SVG}rect")
        box = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
        if "node" in cls:
            nodes[g.get("id")[len("node-"):]] = (cls, texts, box)
        elif "cluster" in cls:
            clusters[g.get("id")[len("cluster-"):]] = (texts, box)
    edges = [(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    return root, nodes, clusters, edges


def inside(inner, outer) -> bool:
    x, y, w, h = inner
    X, Y, W, H = outer
    return X <= x and Y <= y and x + w <= X + W and y + h <= Y + H


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("stem", [p.stem for p in EXAMPLES])
def test_svg_holds_every_node_with_type_shape_and_params(checked, stem):
    spec, result = checked[stem]
    _, nodes, clusters, edges = parse(to_svg(picture(spec, result)))
    assert set(nodes) == {row.name for row in result.rows}
    for row in result.rows:
        cls, texts, _ = nodes[row.name]
        assert texts[0] == row.name
        assert texts[1].startswith("expr" if row.type == "expr" else row.type)
        if row.params:
            assert f"{row.params:,} params" in texts[1]
        shape = row.shape if not (row.shape and isinstance(row.shape[0], list)) else row.shape[0]
        assert texts[2].startswith("(None" + "".join(f", {d}" for d in shape))
        assert ("shared" in cls) == row.shared
    # Every edge of the graph is drawn, and only those.
    wanted = {(r.node, n.name) for n in spec.graph.nodes for r in n.input_refs()}
    assert set(edges) == wanted
    # A cluster per block instance, at every nesting level, and only those.
    scopes = {tuple(row.scope[:k]) for row in result.rows for k in range(1, len(row.scope) + 1)}
    assert set(clusters) == {"/".join(s) for s in scopes}


@pytest.mark.parametrize("stem", ["resnet50", "siamese", "mobilenet_v2", "vae", "two_heads"])
def test_layout_never_overlaps(checked, stem):
    spec, result = checked[stem]
    _, nodes, clusters, _ = parse(to_svg(picture(spec, result)))
    boxes = [box for _, _, box in nodes.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not overlap(a, b)
    scope_of = {row.name: "/".join(row.scope) for row in result.rows}
    for name, (_, _, box) in nodes.items():
        for cid, (_, cbox) in clusters.items():
            member = scope_of[name] == cid or scope_of[name].startswith(cid + "/")
            assert inside(box, cbox) if member else not overlap(box, cbox), (name, cid)
    ids = sorted(clusters)
    for i, a in enumerate(ids):  # clusters nest or stay apart
        for b in ids[i + 1:]:
            if not (b.startswith(a + "/") or a.startswith(b + "/")):
                assert not overlap(clusters[a][1], clusters[b][1]), (a, b)


def test_block_clusters_are_labelled_with_their_block(checked):
    spec, result = checked["resnet50"]
    _, _, clusters, _ = parse(to_svg(picture(spec, result)))
    assert clusters["conv2/conv2_block1"][0] == ["conv2_block1  [block bottleneck]"]
    assert clusters["conv2/conv2_block1/conv2_block1_reduce"][0] == ["conv2_block1_reduce  [block conv_bn]"]


def test_shared_layers_say_whose_weights(checked):
    spec, result = checked["siamese"]
    _, nodes, _, _ = parse(to_svg(picture(spec, result)))
    cls, texts, _ = nodes["tower_right_conv1"]
    assert "shared" in cls and "shares tower_left_conv1" in texts[1]
    assert "shared" not in nodes["tower_left_conv1"][0]


def test_cli_writes_svg_and_png(checked, tmp_path):
    svg, png = tmp_path / "net.svg", tmp_path / "net.png"
    assert main(["plot", str(SPECS / "siamese.yaml"), "-o", str(svg)]) == 0
    assert parse(svg.read_text())[1].keys() >= {"left", "right", "distance", "same"}
    assert main(["plot", str(SPECS / "siamese.yaml"), "-o", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    spec, result = checked["siamese"]
    assert (width, height) == picture(spec, result).size


def test_cli_refuses_other_extensions(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["plot", str(SPECS / "lenet5.yaml"), "-o", str(tmp_path / "net.pdf")])
    assert e.value.code == 2 and ".svg or .png" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_png_without_matplotlib_names_the_package(checked, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    spec, result = checked["lenet5"]
    with pytest.raises(PlotError) as e:
        to_png(picture(spec, result), tmp_path / "x.png")
    assert "matplotlib" in str(e.value) and "pip install" in str(e.value) and str(e.value) == PNG_HINT


# ---------------------------------------------------------------------------------------------
# Scaling: graphs as boxes and edges (no Keras), in the shapes of tests/hostile_setups/scale.py.


def shape_graph(shape: str, n: int) -> tuple[list[Box], list[tuple[str, str]]]:
    """Boxes and edges of a generated shape; block nesting becomes the boxes' scopes."""
    boxes = [Box("x", 60, 40)]
    edges: list[tuple[str, str]] = []
    for k in range(n):
        scope = (f"b{k // 50}", f"c{k // 10}") if shape == "nested" else ()
        boxes.append(Box(f"r{k}", 60 + k % 3 * 20, 40, scope))
        if shape == "wide":
            ins = ["x"]
        else:
            ins = [f"r{k - 1}" if k else "x"]
            if shape == "fan_out" and k > 1:
                ins.append("r0")
            if shape in ("skips", "nested"):
                ins += [f"r{k - s}" for s in (2, 4, 8, 16, 32, 64, 128, 256) if k - s >= 0]
        edges += [(i, f"r{k}") for i in ins]
    if shape in ("fan_in", "wide"):
        boxes.append(Box("out", 60, 40))
        edges += [(f"r{k}", "out") for k in range(n)]
    return boxes, edges


def segments(laid) -> int:
    return sum(len(points) - 1 for _, _, points in laid.edges)


@pytest.mark.parametrize("shape", ["fan_in", "fan_out", "skips", "wide", "nested", "chain"])
def test_layout_work_grows_linearly(shape):
    """Lanes and edge segments are O(edges): before lanes, a fan-in of n nodes made n^2/2 dummies."""
    for n in (100, 200, 400):
        boxes, edges = shape_graph(shape, n)
        laid = layout(boxes, edges)
        assert len(laid.edges) == len(edges)
        assert segments(laid) <= 3 * len(edges)
        # A lane per source (or destination) and cluster: at most one per edge, one per node when flat.
        assert laid.lanes <= (len(edges) if shape == "nested" else len(boxes))
    if shape in ("fan_in", "fan_out"):  # one node's long edges share one lane
        assert laid.lanes == 1


def test_free_spot_search_is_bounded(monkeypatch):
    """The free-spot search steps over at most MAX_STEPS neighbours a side, then goes past them all."""
    steps = []
    real = layout_mod._Rows.free_spot

    def counting(self, desired, width):
        steps.append(len(self.spans))
        return real(self, desired, width)

    monkeypatch.setattr(layout_mod._Rows, "free_spot", counting)
    layout(*shape_graph("wide", 400))
    assert max(steps) >= 399  # the rank is 400 wide, yet (below) the layout stays correct
    monkeypatch.undo()
    monkeypatch.setattr(layout_mod, "MAX_STEPS", 4)  # the fallback path, taken often
    test_lanes_and_nodes_never_overlap("wide")
    test_lanes_and_nodes_never_overlap("skips")


@pytest.mark.parametrize("shape", ["fan_in", "fan_out", "skips", "wide", "nested"])
def test_lanes_and_nodes_never_overlap(shape):
    boxes, edges = shape_graph(shape, 150)
    laid = layout(boxes, edges)
    rects = list(laid.nodes.values())
    by_rank_top: dict[float, list] = {}
    for r in rects:
        by_rank_top.setdefault(r[1], []).append(r)
    for tops in by_rank_top.values():  # nodes on one rank stay apart
        tops.sort()
        for a, b in zip(tops, tops[1:]):
            assert a[0] + a[2] <= b[0], (a, b)
    for src, dst, points in laid.edges:  # a lane's vertical run passes beside every node, not through
        if len(points) == 4:
            (lx, y0), (_, y1) = points[1], points[2]
            assert points[1][0] == points[2][0]
            for x, y, w, h in rects:
                if y < y1 and y0 < y + h:
                    assert lx + LANE_W / 2 <= x or lx - LANE_W / 2 >= x + w, (src, dst)
    if shape == "nested":  # clusters hold their members
        for box in boxes:
            for k in range(1, len(box.scope) + 1):
                assert inside(laid.nodes[box.id], laid.clusters[box.scope[:k]])


# ---------------------------------------------------------------------------------------------
# Bounds: refused before anything is built.


def test_over_the_node_bound_is_refused_before_check(monkeypatch, tmp_path, capsys):
    path = tmp_path / "wide.yaml"
    path.write_text(spec_text("wide", 30))
    monkeypatch.setattr(plot_mod, "MAX_NODES", 20)
    monkeypatch.setattr(netspec.Spec, "check", lambda *a, **k: pytest.fail("check() ran"))
    e = pytest.raises(PlotError, check_size, netspec.load(path)).value
    assert "plot draws at most 20 nodes; this graph has 32" in str(e)
    assert e.location.line == 4 and str(e).startswith(f"{path}:4:1: $.nodes:")
    assert main(["plot", str(path), "-o", str(tmp_path / "g.svg")]) == 1
    assert "plot draws at most 20 nodes" in capsys.readouterr().err
    assert not (tmp_path / "g.svg").exists()


def test_over_the_edge_bound_is_refused(monkeypatch):
    monkeypatch.setattr(plot_mod, "MAX_EDGES", 100)
    e = pytest.raises(PlotError, check_size, netspec.load(spec_text("dense", 20))).value
    assert "plot draws at most 100 edges; this graph has 191" in str(e)


def test_png_over_its_pixel_bound_is_refused_before_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the size check comes first
    boxes, edges = shape_graph("chain", 500)  # 74 px a rank
    pic = Picture([], layout(boxes, edges), {}, "tall")
    with pytest.raises(PlotError, match=r"PNG is limited to 32,768 px a side .* this picture is \d+x37,\d{3} px"):
        to_png(pic, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_png_over_its_edge_length_bound_is_refused_before_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(plot_mod, "MAX_PNG_INK", 10_000)
    boxes, edges = shape_graph("fan_out", 60)  # 58 edges share one lane, 118 in all
    pic = Picture([], layout(boxes, edges), {}, "inky")
    with pytest.raises(PlotError, match=r"PNG draws at most 10,000 px of edges .* 118 edges are [\d,]+ px long"):
        to_png(pic, tmp_path / "x.png")


def test_unwritable_output_is_refused_before_plotting(keras, tmp_path, capsys):
    out = tmp_path / ("b" * 300 + ".svg")
    assert main(["plot", str(SPECS / "lenet5.yaml"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "cannot write it: a name in it is longer than the file system takes" in err and "Traceback" not in err
    assert len(err) < 400 and not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# Generated text is data: one escaping function for every string in the SVG.

XML_CASES = [
    ("plain", "conv1", "conv1"),
    ("markup", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("ampersand", "a&b &amp;", "a&amp;b &amp;amp;"),
    ("quotes", """say "hi" it's""", "say &quot;hi&quot; it&#39;s"),
    ("newline tab return", "a\nb\tc\rd", "a&#10;b&#9;c&#13;d"),
    ("nul and escape", "a\x00b\x1b[31m", "a\\x00b\\x1b[31m"),
    ("DEL and C1", "\x7f\x85", "\\x7f\\x85"),
    ("lone surrogate", "a\ud800b", "a\\ud800b"),
    ("non-characters", "\ufffe\uffff", "\\ufffe\\uffff"),
    ("unicode kept", "été ✓ 層", "été ✓ 層"),
    ("not a string", 42, "42"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in XML_CASES], ids=[c[0] for c in XML_CASES])
def test_xml_text(text, expected):
    assert xml_text(text) == expected
    element = ET.fromstring(f'<t a="{xml_text(text)}">{xml_text(text)}</t>')  # well-formed either way
    if "\\" not in expected:  # legal text comes back exactly, in attributes too
        assert element.text == element.get("a") == str(text)


def test_svg_escapes_every_string():
    """Node ids, edge ends, cluster paths and labels, card lines and the title: all hostile at once."""
    evil = '<script>"\'&\x01\n'
    boxes = [Box("in" + evil, 80, 40), Box("n" + evil, 80, 40, ("blk" + evil,))]
    edges = [("in" + evil, "n" + evil)]
    cards = [Card(b.id, [b.id, "ReLU" + evil, "(None, 4)"], "#ffffff", False, False) for b in boxes]
    pic = Picture(cards, layout(boxes, edges), {("blk" + evil,): "blk" + evil}, "title" + evil)
    svg = to_svg(pic)
    assert "<script" not in svg and "\x01" not in svg
    root, nodes, clusters, drawn = parse(svg)
    assert set(nodes) == {"in" + evil.replace("\x01", "\\x01"), "n" + evil.replace("\x01", "\\x01")}
    assert list(clusters) == ["blk" + evil.replace("\x01", "\\x01")]
    assert root.find(f"{SVG}title").text == "title" + evil.replace("\x01", "\\x01")
    assert len(drawn) == 1


def test_long_names_are_clipped_and_expressions_escaped(keras):
    spec = netspec.load(spec_text("names", 3))
    pic = picture(spec, spec.check())
    _, nodes, _, _ = parse(to_svg(pic))
    long_id = "n" * 200 + "_0"
    assert long_id in nodes  # the id keeps the full name
    texts = [t for _, lines, _ in nodes.values() for t in lines]
    assert max(len(t) for t in texts) <= MAX_CHARS and nodes[long_id][1][0].endswith("…")
    assert any("x < 0.5" in t for t in nodes["cmp"][1]) and any('"float32"' in t for t in nodes["quote"][1])
