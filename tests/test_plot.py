"""netspec plot: every example spec renders to an SVG that holds every node (with its type, shape and
parameters), a cluster per block instance, shared layers marked; the layout never overlaps; PNG via
matplotlib, with a clear message when it is missing."""

from __future__ import annotations

import builtins
import struct
import xml.etree.ElementTree as ET

import pytest

import netspec
from netspec.cli import main
from netspec.plot import PNG_HINT, PlotError, picture, to_png, to_svg

from conftest import SPECS

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
