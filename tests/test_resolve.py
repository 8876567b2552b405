"""The resolver: params, blocks, repeat, when, refs, share and outputs, on plain data (no TensorFlow)."""

from __future__ import annotations

import textwrap

import pytest

import netspec
from netspec.graph import DeferredArg

from conftest import error_for

HEAD = "netspec: 1\nname: t\n"


def spec(body: str, **kw):
    return netspec.load(HEAD + textwrap.dedent(body), **kw)


def names(s) -> list[str]:
    return [n.name for n in s.graph.nodes]


def test_params_in_order_and_types():
    s = spec("""
        params: {a: 4, b: "${a * 2}", c: "x$a", d: $a}
        inputs: {x: [3]}
        nodes:
          - {type: Dense, units: $b}
        """)
    assert s.graph.params == {"a": 4, "b": 8, "c": "x4", "d": 4}
    assert s.graph.nodes[0].args["units"] == 8


def test_set_overrides_later_params():
    s = spec("""
        params: {a: 4, b: "${a * 2}"}
        inputs: {x: [3]}
        nodes: [{type: Dense, units: $b}]
        """, params={"a": 5})
    assert s.graph.nodes[0].args["units"] == 10


def test_unknown_override_has_hint():
    e = error_for(HEAD + "params: {classes: 3}\ninputs: {x: [3]}\nnodes: [{type: Dense, units: 2}]\n",
                  params={"clases": 4})
    assert "unknown param 'clases'" in e.message and e.hint == "did you mean 'classes'?"


def test_generated_names_follow_keras_snake_case():
    s = spec("""
        inputs: {x: [3]}
        nodes:
          - {type: Dense, units: 2}
          - {type: Dense, units: 2}
          - {type: ReLU}
          - {type: BatchNormalization}
        """)
    assert names(s) == ["dense", "dense_1", "re_lu", "batch_normalization"]


def test_default_chaining_and_explicit_in():
    s = spec("""
        inputs: {a: [3], b: [3]}
        nodes:
          - {name: da, type: Dense, units: 2, in: a}
          - {name: db, type: Dense, units: 2, in: b}
          - {name: cat, type: Concatenate, in: [da, db]}
          - {name: out, type: Dense, units: 1}
        """)
    g = s.graph
    assert [str(r) for r in g.node("cat").inputs] == ["da", "db"]
    assert [str(r) for r in g.node("out").inputs] == ["cat"]
    assert g.outputs[0][0] == "out"


def test_forward_refs_are_ordered_topologically():
    s = spec("""
        inputs: {x: [3]}
        nodes:
          - {name: late, type: Dense, units: 1, in: early}
          - {name: early, type: Dense, units: 2, in: x}
        outputs: late
        """)
    assert names(s) == ["early", "late"]


def test_repeat_names_index_and_last_instance_ref():
    s = spec("""
        inputs: {x: [3]}
        nodes:
          - {name: h, type: Dense, units: "${8 * 2 ** i}", repeat: 3}
          - {name: out, type: Dense, units: 1, in: h}
          - {name: mid, type: Dense, units: 1, in: h_1}
        outputs: [out, mid]
        """)
    g = s.graph
    assert names(s)[:3] == ["h_0", "h_1", "h_2"]
    assert [g.node(f"h_{k}").args["units"] for k in range(3)] == [8, 16, 32]
    assert [str(r) for r in g.node("h_1").inputs] == ["h_0"]
    assert [str(r) for r in g.node("out").inputs] == ["h_2"]
    assert [str(r) for r in g.node("mid").inputs] == ["h_1"]


def test_repeat_zero_is_identity():
    s = spec("""
        inputs: {x: [3]}
        nodes:
          - {name: h, type: Dense, units: 4, repeat: 0}
          - {name: out, type: Dense, units: 1}
        """)
    assert [str(r) for r in s.graph.node("out").inputs] == ["x"]


def test_when_false_passes_first_input_or_else():
    s = spec("""
        inputs: {x: [3]}
        params: {use: false}
        nodes:
          - {name: a, type: Dense, units: 4}
          - {name: b, type: Dense, units: 4, in: x}
          - {name: skip, type: Add, in: [a, b], when: $use}
          - {name: skip2, type: Add, in: [a, b], when: $use, else: b}
          - {name: out, type: Concatenate, in: [skip, skip2]}
        """)
    assert [str(r) for r in s.graph.node("out").inputs] == ["a", "b"]
    assert s.graph.node("skip") is None


def test_block_defaults_required_vars_nesting_and_names():
    s = spec("""
        inputs: {x: [8, 8, 3]}
        blocks:
          cbr:
            params: {filters: required, strides: 1}
            vars: {padding: "${'same' if strides == 1 else 'valid'}"}
            nodes:
              - {name: conv, type: Conv2D, filters: $filters, kernel_size: 3, strides: $strides, padding: $padding}
              - {name: bn, type: BatchNormalization}
          double:
            params: {filters: 4}
            nodes:
              - {name: one, block: cbr, filters: $filters}
              - {name: two, block: cbr, filters: "${filters * 2}", strides: 2}
        nodes:
          - {name: stem, block: double, filters: 16}
        """)
    g = s.graph
    assert names(s) == ["stem_one_conv", "stem_one_bn", "stem_two_conv", "stem_two_bn"]
    assert g.node("stem_two_conv").args == {"filters": 32, "kernel_size": 3, "strides": 2, "padding": "valid"}
    assert g.node("stem_one_conv").args["padding"] == "same"
    assert g.node("stem_two_conv").scope == ("stem", "stem_two")


def test_block_repeat_uses_caller_index():
    s = spec("""
        inputs: {x: [3]}
        blocks:
          fc:
            params: {units: required}
            nodes: [{name: d, type: Dense, units: $units}]
        nodes:
          - {name: body, block: fc, units: "${4 + i}", repeat: 2}
        """)
    assert [(n.name, n.args["units"]) for n in s.graph.nodes] == [("body_0_d", 4), ("body_1_d", 5)]


def test_block_multi_input_and_named_outputs():
    s = spec("""
        inputs: {a: [3], b: [3]}
        blocks:
          pair:
            inputs: [left, right]
            nodes:
              - {name: l, type: Dense, units: 2, in: left}
              - {name: r, type: Dense, units: 2, in: right}
            outputs: {first: l, second: r}
        nodes:
          - {name: p, block: pair, in: {right: b, left: a}}
          - {name: out, type: Add, in: [p.second, p.first]}
          - {name: out2, type: Add, in: [p.1, p.0]}
        outputs: {sum: out, sum2: out2}
        """)
    g = s.graph
    assert [str(r) for r in g.node("p_l").inputs] == ["a"]
    assert [str(r) for r in g.node("out").inputs] == ["p_r", "p_l"]
    assert [str(r) for r in g.node("out2").inputs] == ["p_r", "p_l"]
    assert [name for name, _ in g.outputs] == ["sum", "sum2"] and g.output_form == "mapping"


def test_share_block_instance_reuses_every_layer():
    s = netspec.load(str(__import__("conftest").SPECS / "siamese.yaml"))
    g = s.graph
    shared = [n for n in g.nodes if n.kind == "share"]
    assert [n.share_of for n in shared] == [f"tower_left_{k}" for k in ("conv1", "pool1", "conv2", "pool2", "embed")]
    assert [n.name for n in shared][0] == "tower_right_conv1"
    assert [str(r) for r in g.node("tower_right_conv1").inputs] == ["right"]


def test_shape_values_are_deferred_at_validate():
    s = spec("""
        inputs: {x: [8, 8, 3]}
        nodes:
          - {name: c, type: Conv2D, filters: "${in_shape[-1] * 2}", kernel_size: 1}
          - {name: d, type: Conv2D, filters: "${shape(x)[-1]}", kernel_size: 1}
        """)
    assert isinstance(s.graph.node("c").args["filters"], DeferredArg)
    assert isinstance(s.graph.node("d").args["filters"], DeferredArg)


@pytest.mark.parametrize("outputs, names_, form", [
    ("", ["b"], "single"),
    ("outputs: b", ["b"], "single"),
    ("outputs: [a, b]", ["a", "b"], "list"),
    ("outputs: [b]", ["b"], "single"),
    ("outputs: {first: a, second: b}", ["first", "second"], "mapping"),
], ids=["default-last", "single-ref", "list", "list-of-one", "mapping"])
def test_outputs_forms(outputs, names_, form):
    s = spec(f"""
        inputs: {{x: [3]}}
        nodes:
          - {{name: a, type: Dense, units: 2}}
          - {{name: b, type: Dense, units: 2}}
        {outputs}
        """)
    assert [n for n, _ in s.graph.outputs] == names_ and s.graph.output_form == form


def test_unused_nodes_warn():
    s = spec("""
        inputs: {x: [3]}
        nodes:
          - {name: a, type: Dense, units: 2}
          - {name: b, type: Dense, units: 2, in: x}
        """)
    assert any("'a'" in w and "does not reach any output" in w for w in s.warnings)


def test_big_graph_resolves_without_recursion_limits():
    import sys

    sys.path.insert(0, str(__import__("conftest").ROOT / "bench"))
    from _util import synthetic_spec

    s = netspec.load(synthetic_spec(5000))
    assert len(s.graph.nodes) == 5001  # 5,000 layers and the closing Concatenate


# ----- expansion cost: one count before expansion, and the resolver's running count -----

INSTANCES = "the spec expands to more than 100000 node instances"
LAYERS = "the graph has more than 50000 layers"
OVER_CAP = {  # (spec body, message fragment, node index of the error)
    "when-false-inside-repeated-block": ("""
        blocks:
          b: {nodes: [{type: ReLU, repeat: 10000, when: false}]}
        inputs: {x: [4]}
        nodes: [{block: b, repeat: 10000}, {type: Dense, units: 2}]
        """, INSTANCES, 0),
    "repeat-from-block-param": ("""
        params: {n: 10000}
        blocks:
          a: {params: {k: 1}, nodes: [{type: ReLU, repeat: "${k}", when: false}]}
        inputs: {x: [4]}
        nodes: [{type: Dense, units: 2}, {block: a, k: $n, repeat: $n}]
        """, INSTANCES, 1),
    "repeat-from-instance-index": ("""
        blocks:
          a: {params: {k: 1}, nodes: [{type: ReLU, repeat: "${k}", when: "${i < 0}"}]}
        inputs: {x: [4]}
        nodes: [{block: a, k: "${10000 - i}", repeat: 10000}]
        """, INSTANCES, 0),
    "repeat-from-block-var": ("""
        blocks:
          a: {params: {k: 1}, vars: {m: "${k * 100}"}, nodes: [{type: ReLU, repeat: $m, when: false}]}
        inputs: {x: [4]}
        nodes: [{block: a, k: 100, repeat: 100}]
        """, INSTANCES, 0),
    "share-re-expands-its-target": ("""
        blocks:
          b: {nodes: [{type: ReLU}, {type: ReLU, repeat: 10000, when: false}]}
        inputs: {x: [4]}
        nodes: [{block: b, name: first}, {share: first, repeat: 10000}]
        """, INSTANCES, 1),
    "layers-through-block-params": ("""
        blocks:
          a: {params: {k: 1}, nodes: [{type: ReLU, repeat: $k}]}
          b: {nodes: [{block: a, k: 1000, repeat: 1000}]}
        inputs: {x: [4]}
        nodes: [{block: b}]
        """, LAYERS, 0),
}


def _tree(levels: int, fanout: int) -> str:
    """Blocks ``levels`` deep, each instantiating the next ``fanout`` times with a different param."""
    lines = ["blocks:"]
    for lvl in range(levels):
        body = ", ".join(f'{{block: b{lvl + 1}, k: "${{k * {fanout} + {j}}}", name: n{j}}}' for j in range(fanout))
        lines.append(f"  b{lvl}: {{params: {{k: 0}}, nodes: [{body}]}}")
    lines += [f"  b{levels}: {{params: {{k: 0}}, nodes: [{{type: ReLU, when: false, repeat: 1}}]}}",
              "inputs: {x: [4]}", "nodes: [{block: b0}]"]
    return "\n".join(lines) + "\n"


def _chain(length: int) -> str:
    lines = ["blocks:"] + [f"  b{k}: {{nodes: [{{block: b{k + 1}}}]}}" for k in range(length)]
    lines += [f"  b{length}: {{nodes: [{{type: ReLU}}]}}", "inputs: {x: [4]}", "nodes: [{block: b0}]"]
    return "\n".join(lines) + "\n"


OVER_CAP["distinct-params-at-every-level"] = (_tree(6, 10), INSTANCES, 0)
OVER_CAP["a-chain-of-5000-blocks"] = (_chain(5000), "blocks are nested more than 32 deep", None)


@pytest.mark.parametrize("body, fragment, index", OVER_CAP.values(), ids=OVER_CAP.keys())
def test_expansion_is_counted_multiplicatively_before_expanding(body, fragment, index):
    import time

    start = time.perf_counter()
    e = error_for(HEAD + textwrap.dedent(body))
    assert fragment in e.message and (index is None or e.path == ("nodes", index)), e
    assert time.perf_counter() - start < 1.0


UNDER_CAP = {  # legal specs whose counts stay under the caps, with their layer counts
    "when-false-under-cap": ("""
        inputs: {x: [4]}
        nodes: [{type: ReLU, repeat: 9000, when: false, name: r}, {type: Dense, units: 2}]
        """, 1),
    "repeat-zero-block": ("""
        blocks:
          b: {nodes: [{type: ReLU, repeat: 10000}]}
        inputs: {x: [4]}
        nodes: [{block: b, repeat: 0}, {type: Dense, units: 2}]
        """, 1),
    "block-param-default-small": ("""
        blocks:
          a: {params: {k: 2}, nodes: [{type: ReLU, repeat: $k}]}
        inputs: {x: [4]}
        nodes: [{block: a, repeat: 3, name: three}, {block: a, k: 4, name: four}]
        """, 10),
    "shape-dependent-param-counts-once": ("""
        blocks:
          a: {params: {k: 1}, nodes: [{type: Dense, units: $k}]}
        inputs: {x: [4]}
        nodes: [{block: a, k: "${in_shape[0]}", repeat: 3}]
        """, 3),
}


@pytest.mark.parametrize("body, layers", UNDER_CAP.values(), ids=UNDER_CAP.keys())
def test_specs_under_the_caps_resolve(body, layers):
    assert len(spec(body).graph.nodes) == layers


def test_running_instance_count_stops_the_resolver(monkeypatch):
    """Second line of defence: with the count before expansion disabled, the resolver still stops."""
    import netspec.resolve.resolver as resolve

    monkeypatch.setattr(resolve, "check_expansion", lambda *a, **k: None)
    text = HEAD + textwrap.dedent("""
        blocks:
          b: {nodes: [{type: ReLU, repeat: 10000, when: false}]}
        inputs: {x: [4]}
        nodes: [{type: Dense, units: 2}, {block: b, repeat: 10000}]
        """)
    e = error_for(text)
    assert INSTANCES in e.message and e.path == ("blocks", "b", "nodes", 0)
    doc = netspec.source.loader.load_yaml(text)
    with pytest.raises(netspec.NetspecError, match="more than 50 node instances"):
        resolve.resolve(doc, netspec.spec.Catalog(), max_instances=50)


def test_the_count_before_expansion_uses_max_instances():
    text = HEAD + "inputs: {x: [4]}\nnodes: [{type: ReLU, repeat: 30, when: false}, {type: Dense, units: 2}]\n"
    doc = netspec.source.loader.load_yaml(text)
    with pytest.raises(netspec.NetspecError, match="more than 20 node instances") as info:
        netspec.resolve.resolver.resolve(doc, netspec.spec.Catalog(), max_instances=20)
    assert info.value.path == ("nodes", 0) and "counting every repeat" in info.value.message


def test_deferred_block_vars_are_evaluated_once_per_build(keras):
    """40 vars that each use the two before: exponential if every use re-evaluated its inputs."""
    import time

    lines = ["blocks:", "  b:", "    vars:", "      v0: ${in_shape[0]}", "      v1: ${in_shape[0]}"]
    lines += [f"      v{k}: ${{(v{k - 1} + v{k - 2}) % 7 + 1}}" for k in range(2, 40)]
    lines += ["    nodes: [{type: Dense, units: \"${v39}\"}]", "inputs: {x: [4]}",
              "nodes: [{block: b, name: one}, {block: b, name: two}]"]
    s = netspec.load(HEAD + "\n".join(lines) + "\n")
    start = time.perf_counter()
    result = s.check()
    assert time.perf_counter() - start < 5.0

    def chain_of(n: int) -> int:  # each instance's own in_shape starts its chain
        v = [n, n]
        for _ in range(38):
            v.append((v[-1] + v[-2]) % 7 + 1)
        return v[-1]
    assert [r.shape for r in result.rows[1:]] == [[chain_of(4)], [chain_of(chain_of(4))]]


@pytest.mark.parametrize("exc", [RecursionError, MemoryError])
@pytest.mark.parametrize("stage, target, cls", [
    ("read", "_read", "SpecSyntaxError"), ("validate", "validate_document", "SchemaError"),
    ("resolve", "resolve", "ResolveError")])
def test_exhaustion_becomes_the_stages_located_error(monkeypatch, tmp_path, exc, stage, target, cls):
    import netspec.spec as spec_module

    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "inputs: {x: [4]}\nnodes: [{type: Dense, units: 2}]\n")

    def boom(*a, **k):
        raise exc()
    monkeypatch.setattr(spec_module, target, boom)
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load(path)
    assert type(info.value).__name__ == cls and f"to {stage}:" in info.value.message
    assert info.value.location.file == str(path) and info.value.line == 1


@pytest.mark.parametrize("ref", ["x\n", "dense\n", "dense.0\n"])
def test_refs_are_matched_whole(ref):
    from netspec.resolve.scope import REF

    assert REF.fullmatch(ref) is None and REF.fullmatch(ref.rstrip("\n")) is not None
