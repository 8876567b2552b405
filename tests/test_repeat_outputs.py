"""Issue 14: ``repeat`` over blocks with several outputs. ``chain:`` names the output that feeds the
next instance; ``down.skip`` lists every instance's ``skip``, ``down_K.skip`` is one instance's; a
repeated node's ``in:`` is evaluated per instance (``skip: "down_${levels - 1 - i}.skip"``)."""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest

import netspec
from conftest import ROOT, SPECS, error_for

HEAD = """\
netspec: 1
name: r
inputs:
  x: {shape: [4]}
blocks:
  down:            # two outputs: out feeds the next instance, skip is kept aside
    params: {units: 4}
    nodes:
      - {name: skip, type: Dense, units: $units}
      - {name: pool, type: Dense, units: 4}
    outputs: {out: pool, skip: skip}
nodes:
"""


def spec_text(nodes: str, outputs: str = "") -> str:
    return HEAD + textwrap.indent(textwrap.dedent(nodes), "  ") + textwrap.dedent(outputs)


def reference_unet():
    path = ROOT / "tests" / "models" / "unet.py"
    module_spec = importlib.util.spec_from_file_location("models_unet", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# -- the U-Net against its plain Keras reference ------------------------------------------------------


def test_unet_spec_is_the_keras_unet(keras):
    module = reference_unet()
    assert module.SPEC == "specs/unet.yaml" and module.SOURCE.startswith("https://")
    model, reference = netspec.load(ROOT / module.SPEC).build(), module.build()
    assert model.count_params() == reference.count_params() == 490_993
    assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in reference.weights]
    reference.set_weights(model.get_weights())
    image = np.random.default_rng(3).standard_normal((2, 64, 64, 1)).astype("float32")
    ours, theirs = model.predict(image, verbose=0), reference.predict(image, verbose=0)
    assert ours.shape == (2, 64, 64, 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_unet_up_path_takes_the_skips_in_reverse_order():
    graph = netspec.load(SPECS / "unet.yaml").graph
    concats = {n.name: [str(r) for r in n.inputs] for n in graph.nodes if n.type == "Concatenate"}
    assert concats == {f"up_{k}_concatenate": [f"down_{3 - k}_skip", f"up_{k}_upsample"] for k in range(4)}
    ups = {n.name: [str(r) for r in n.inputs] for n in graph.nodes if n.type == "UpSampling2D"}
    assert ups == {"up_0_upsample": ["bridge"], "up_1_upsample": ["up_0_conv2d_1"],
                   "up_2_upsample": ["up_1_conv2d_1"], "up_3_upsample": ["up_2_conv2d_1"]}


def test_levels_is_a_param():
    graph = netspec.load(SPECS / "unet.yaml", params={"levels": 2}).graph
    assert [n.name for n in graph.nodes if n.type == "Concatenate"] == ["up_0_concatenate", "up_1_concatenate"]
    concat = next(n for n in graph.nodes if n.name == "up_0_concatenate")
    assert [str(r) for r in concat.inputs] == ["down_1_skip", "up_0_upsample"]


# -- refs to every instance's outputs, and to one's ---------------------------------------------------


def inputs_of(graph, name: str) -> list[str]:
    node = next(n for n in graph.nodes if n.name == name)
    return [str(r) for r in node.inputs] if isinstance(node.inputs, list) else node.inputs


def test_collective_ref_feeds_concatenate_and_one_instance_an_output(keras):
    text = spec_text("""\
        - {name: down, block: down, repeat: 3, chain: out, units: "${2 + i}"}
        - {name: skips, type: Concatenate, in: [down.skip]}
        """, "outputs: {skips: skips, second: down_1.skip, last: down}\n")
    spec = netspec.load(text)
    assert inputs_of(spec.graph, "skips") == ["down_0_skip", "down_1_skip", "down_2_skip"]
    assert inputs_of(spec.graph, "down_1_skip") == ["down_0_pool"]  # chained through out, not skip
    assert [(name, str(ref)) for name, ref in spec.graph.outputs] == [
        ("skips", "skips"), ("second", "down_1_skip"), ("last", "down_2_pool")]
    model = spec.build()
    got = model.predict(np.ones((1, 4), "float32"), verbose=0)
    assert got["skips"].shape == (1, 2 + 3 + 4)
    np.testing.assert_allclose(got["skips"][:, 2:5], got["second"], rtol=1e-6)


REF_FORMS = [  # (case, nodes, outputs, the model's output refs)
    ("list in outputs", "- {name: down, block: down, repeat: 2, chain: out}\n",
     "outputs: [down.skip, down]\n", ["down_0_skip", "down_1_skip", "down_1_pool"]),
    ("chained output of every instance", "- {name: down, block: down, repeat: 2, chain: out}\n",
     "outputs: [down.out]\n", ["down_0_pool", "down_1_pool"]),
    ("one instance by index", "- {name: down, block: down, repeat: 3, chain: out}\n",
     "outputs: [down_2.skip, down_0, down_1.1]\n", ["down_2_skip", "down_0_pool", "down_1_skip"]),
    ("positional list and a bare ref", """\
        - {name: down, block: down, repeat: 2, chain: out}
        - {name: cat, type: Concatenate, in: [down.skip, down]}
        """, "", ["cat"]),
    ("inside a block", "- {block: outer}\n", "",
     ["outer_down_0_skip", "outer_down_1_skip"]),
    ("a repeated block's in: per instance", """\
        - {name: down, block: down, repeat: 3, chain: out}
        - {name: fuse, block: fuse, repeat: 3, in: {a: down, b: "down_${2 - i}.skip"}}
        """, "outputs: [fuse]\n", ["fuse_2_add"]),
    ("a repeated layer's in: per instance", """\
        - {name: down, block: down, repeat: 3, chain: out}
        - {name: acc, type: Add, repeat: 3, in: [down, "down.skip"]}
        """, "outputs: [acc]\n", ["acc_2"]),
]

EXTRA_BLOCKS = """\
  outer:
    nodes:
      - {name: down, block: down, repeat: 2, chain: out}
    outputs: [down.skip]
  fuse:
    inputs: [a, b]
    nodes:
      - {type: Add, in: [a, b]}
"""


@pytest.mark.parametrize("case,nodes,outputs,refs", REF_FORMS, ids=[c[0] for c in REF_FORMS])
def test_ref_forms(case, nodes, outputs, refs):
    text = spec_text(nodes, outputs).replace("nodes:\n  - ", EXTRA_BLOCKS + "nodes:\n  - ", 1) \
        if "outer" in nodes or "fuse" in nodes else spec_text(nodes, outputs)
    graph = netspec.load(text).graph
    assert [str(ref) for _, ref in graph.outputs] == refs


def test_collective_ref_as_a_keyword_list(keras):
    """``initial_state: down.skip`` binds the two instances' skips as the LSTM's [h, c]."""
    spec = netspec.load(spec_text("""\
        - {name: down, block: down, repeat: 2, chain: out}
        - {name: seq, type: Reshape, target_shape: [1, 4], in: x}
        - {name: lstm, type: LSTM, units: 4, in: {sequences: seq, initial_state: down.skip}}
        """))
    node = next(n for n in spec.graph.nodes if n.name == "lstm")
    assert {k: [str(r) for r in v] if isinstance(v, list) else str(v) for k, v in node.inputs.items()} == {
        "sequences": "seq", "initial_state": ["down_0_skip", "down_1_skip"]}
    spec.check()  # builds and runs the first batch: the states are counted and fed


def test_per_instance_inputs_are_wired_per_instance():
    text = spec_text("""\
        - {name: down, block: down, repeat: 3, chain: out}
        - {name: fuse, block: fuse, repeat: 3, in: {a: down, b: "down_${2 - i}.skip"}}
        """).replace("nodes:\n  - ", EXTRA_BLOCKS + "nodes:\n  - ", 1)
    graph = netspec.load(text).graph
    assert [inputs_of(graph, f"fuse_{k}_add") for k in range(3)] == [
        ["down_2_pool", "down_2_skip"], ["fuse_0_add", "down_1_skip"], ["fuse_1_add", "down_0_skip"]]


def test_the_issue_case_works_with_chain(keras):
    """The issue's "block 'down' takes 1 input (x); received 2", with chain: out, builds and runs."""
    model = netspec.load(SPECS / "unet.yaml").build()
    assert len(model.outputs) == 1
    text = spec_text("- {name: down, block: down, repeat: 4, chain: out}\n")
    spec = netspec.load(text)
    assert [n.name for n in spec.graph.nodes][:3] == ["down_0_skip", "down_0_pool", "down_1_skip"]
    spec.check()


# -- errors: message, location, hint -----------------------------------------------------------------

ERRORS = [  # (case, nodes, outputs, message fragment, path, (line, col), hint fragment or None)
    ("chain missing: the issue's case",
     "- {name: down, block: down, repeat: 4}\n", "",
     "block 'down' has 2 outputs (out, skip) and takes 1 input (x), so repeat cannot feed one instance to the "
     "next", ("nodes", 0, "repeat"), (13, 39), "chain: out"),
    ("chain names an unknown output",
     "- {name: down, block: down, repeat: 4, chain: outt}\n", "",
     "chain: block 'down' has no output 'outt'; its outputs are out, skip", ("nodes", 0, "chain"), (13, 49),
     "did you mean 'out'?"),
    ("instance out of range",
     "- {name: down, block: down, repeat: 4, chain: out}\n", "outputs: [down_9.skip]\n",
     "'down_9' is out of range: 'down' has 4 instances (down_0 to down_3)", ("outputs", 0), (14, 11),
     "the last is down_3"),
    ("instance out of range in an in:",
     "- {name: down, block: down, repeat: 2, chain: out}\n- {type: Concatenate, in: [down_2.skip, down]}\n", "",
     "'down_2' is out of range: 'down' has 2 instances (down_0 to down_1)", ("nodes", 1, "in", 0), (14, 30),
     "the last is down_1"),
    ("unknown output of every instance",
     "- {name: down, block: down, repeat: 4, chain: out}\n", "outputs: [down.skp]\n",
     "'down' has no output 'skp'; it has out, skip", ("outputs", 0), (14, 11), "did you mean 'skip'?"),
    ("unknown output of one instance",
     "- {name: down, block: down, repeat: 4, chain: out}\n", "outputs: [down_1.nope]\n",
     "'down_1' has no output 'nope'; it has out, skip", ("outputs", 0), (14, 11), None),
    ("chain without repeat",
     "- {name: down, block: down, chain: out}\n", "",
     "chain: names the output that feeds the next instance of a repeat; this node has no repeat:",
     ("nodes", 0, "chain"), (13, 31), "add repeat: N"),
    ("a list where one tensor is needed",
     "- {name: down, block: down, repeat: 2, chain: out}\n", "outputs: {skips: down.skip}\n",
     "output 'skips' names 2 tensors", ("outputs", "skips"), (14, 18), None),
]


@pytest.mark.parametrize("case,nodes,outputs,message,path,where,hint", ERRORS, ids=[c[0] for c in ERRORS])
def test_errors(case, nodes, outputs, message, path, where, hint):
    err = error_for(spec_text(nodes, outputs))
    assert message in err.message
    assert tuple(err.path) == path
    assert (err.location.line, err.location.column) == where
    assert hint is None and err.hint is None or hint is not None and hint in (err.hint or "")


def test_chain_on_a_layer_is_refused_by_the_schema():
    err = error_for(spec_text("- {type: Dense, units: 4, repeat: 2, chain: out}\n"))
    assert "chain" in err.message and tuple(err.path)[:2] == ("nodes", 0)


def test_cli_prints_the_located_hint(tmp_path, capsys):
    from netspec.cli import main

    path = tmp_path / "old.yaml"
    path.write_text(spec_text("- {name: down, block: down, repeat: 4}\n"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:13:39: $.nodes[0].repeat: block 'down' has 2 outputs" in err
    assert "chain: out" in err and "Traceback" not in err


PAIR = """\
netspec: 1
name: r
inputs: {x: [4], branch_0: [4], branch_1: [4], branch_2: [4]}
blocks:
  pair:            # as many outputs as inputs: the repeat chains them all, without chain:
    inputs: [h, c]
    nodes:
      - {name: h2, type: Dense, units: 4, in: h}
      - {name: c2, type: Add, in: [h2, c]}
    outputs: [h2, c2]
  named: {params: {chain: 1}, nodes: [{type: Dense, units: 4}]}
nodes:
  - {name: acc, type: Add, repeat: 3, in: [x, "branch_${i}"]}
  - {name: p, block: pair, repeat: 3, in: [acc, x]}
"""


def test_layer_in_per_instance_and_blocks_chaining_all_outputs():
    graph = netspec.load(PAIR).graph
    wiring = {n.name: [str(r) for r in n.inputs] for n in graph.nodes}
    assert [wiring[f"acc_{k}"] for k in range(3)] == [["x", "branch_0"], ["acc_0", "branch_1"], ["acc_1", "branch_2"]]
    assert [wiring[f"p_{k}_c2"] for k in range(3)] == [["p_0_h2", "x"], ["p_1_h2", "p_0_c2"], ["p_2_h2", "p_1_c2"]]
    assert wiring["p_1_h2"] == ["p_0_h2"]


def test_a_block_param_named_chain_is_refused():
    err = error_for(PAIR + "  - {block: named}\n")
    assert "declares a param 'chain', but chain: is a node key" in err.message
    assert err.path == ("blocks", "named", "params", "chain") and err.location.line == 11
