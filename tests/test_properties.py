"""Property tests: for any document or text, ``netspec.load`` succeeds or raises NetspecError; for
small specs that load, ``check()`` succeeds or raises NetspecError. Nothing else may escape."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import netspec

COUNTS = {"random_doc": 0, "random_doc_loaded": 0, "mutation": 0, "mutation_loaded": 0,
          "check": 0, "check_built": 0}

TOP_KEYS = ["netspec", "name", "description", "params", "plugins", "inputs", "blocks", "nodes", "outputs",
            "train", "export", "junk", "Nodes"]
LAYERS = ["Dense", "Conv2D", "Conv1D", "ReLU", "Flatten", "Dropout", "BatchNormalization", "Add", "Concatenate",
          "Reshape", "LSTM", "Bidirectional", "TimeDistributed", "Activation", "Lambda", "TFSMLayer", "os.system",
          "__import__", "Dense2", "MaxPooling2D", "GlobalAveragePooling2D", "Embedding", "LayerNormalization"]
ARGS = ["units", "filters", "kernel_size", "activation", "rate", "use_bias", "padding", "strides", "axis",
        "target_shape", "layer", "epsilon", "input_dim", "kernel_initializer", "name", "in", "repeat", "when",
        "else", "dtype", "return_sequences", "pool_size", "input_dim", "output_dim", "__class__"]
NAMES = ["x", "y", "a", "b", "dense", "c1", "out", "i", "n", "missing", "x.0", "b.out", "__class__"]
EXPRS = ["$n", "${n * 2}", "${i}", "${in_shape[-1]}", "${shape(x)}", "${n ** 99}", "${'a' * n}", "${}",
         "${n if n else 1}", "${make_divisible(n, 8)}", "${len([1,2])}", "${().__class__}", "$missing",
         "${min(n, 3) // 0}", "${1/0}", "${n % 0}", "${[1,2][5]}", "${'a' < 1}", "${int('x')}", "${round(1e308*10)}",
         "${float('nan')}", "${-n}", "${abs(None)}", "${ceil(1e300)}", "${floor(-1e308)}"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EXPRS), st.sampled_from(NAMES),
    st.sampled_from(["same", "valid", "relu", "softmax", "float32", "he_normal", "required", "x ** 2",
                     "ops.relu(x)", "x[:, 0]"]),
    st.text(max_size=12),
)
ANY = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.sampled_from(ARGS + NAMES), inner, max_size=4)),
                   max_leaves=12)


@st.composite
def nodes(draw):
    node = {}
    kind = draw(st.sampled_from(["type", "type", "type", "block", "expr", "share", "none"]))
    if kind == "type":
        node["type"] = draw(st.sampled_from(LAYERS))
    elif kind == "block":
        node["block"] = draw(st.sampled_from(["b", "c", "missing"]))
    elif kind == "expr":
        node["expr"] = draw(st.sampled_from(["x ** 2", "ops.relu(x)", "x + scale", "ops.map(f, x)", "x[:, 0]",
                                             "ops.concatenate([a, b], axis=-1)", "x @ x", "x.__class__", "x ** y"]))
    elif kind == "share":
        node["share"] = draw(st.sampled_from(NAMES))
    for key in draw(st.lists(st.sampled_from(ARGS), max_size=4, unique=True)):
        node[key] = draw(st.one_of(SCALARS, ANY) if key != "in" else st.one_of(st.sampled_from(NAMES),
                                                                               st.lists(st.sampled_from(NAMES), max_size=3)))
    return node


@st.composite
def documents(draw):
    doc = {"netspec": draw(st.sampled_from([1, 1, 1, 2, "1"])), "name": draw(st.sampled_from(["m", "1bad", "ok_name"]))}
    doc["params"] = draw(st.dictionaries(st.sampled_from(["n", "scale", "i", "units", "bad-name"]), SCALARS, max_size=3))
    doc["inputs"] = draw(st.dictionaries(st.sampled_from(["x", "y", "a", "b"]),
                                         st.one_of(st.lists(st.one_of(st.none(), st.integers(-1, 9)), min_size=1, max_size=3),
                                                   ANY), min_size=1, max_size=2))
    doc["nodes"] = draw(st.lists(nodes(), max_size=5))
    if draw(st.booleans()):
        doc["blocks"] = {"b": {"params": draw(st.dictionaries(st.sampled_from(["filters", "n"]), SCALARS, max_size=2)),
                               "inputs": ["x"], "nodes": draw(st.lists(nodes(), min_size=1, max_size=3))}}
    if draw(st.booleans()):
        doc["outputs"] = draw(st.one_of(st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), max_size=2), ANY))
    for key in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=2)):
        doc[key] = draw(ANY)
    if draw(st.integers(0, 9)) == 0:
        doc.pop(draw(st.sampled_from(list(doc))))
    return doc


@st.composite
def small_specs(draw):
    """Mostly well-formed small specs (random sizes and args), so that many load and reach check()."""
    width = draw(st.integers(0, 9))
    choices = st.one_of(
        st.builds(lambda u, a: {"type": "Dense", "units": u, "activation": a}, st.integers(-1, 9),
                  st.sampled_from(["relu", "softmax", "linear", "bogus"])),
        st.builds(lambda r: {"type": "Dropout", "rate": r}, st.floats(-0.5, 1.5)),
        st.just({"type": "ReLU"}),
        st.builds(lambda e: {"expr": e}, st.sampled_from(["x ** 2", "ops.relu(x) * 2.0", "x[:, 0]", "x @ x",
                                                          "ops.sum(x, axis=-1)", "x / 0", "ops.reshape(x, (-1,))"])),
        st.builds(lambda t: {"type": "Reshape", "target_shape": t}, st.lists(st.integers(-1, 9), min_size=1, max_size=3)),
        st.builds(lambda n: {"type": "Dense", "units": "${n * %d}" % n}, st.integers(-2, 5)),
    )
    doc = {"netspec": 1, "name": "m", "params": {"n": draw(st.integers(-1, 5))}, "inputs": {"x": [width]},
           "nodes": draw(st.lists(choices, min_size=1, max_size=4))}
    return yaml.safe_dump(doc, sort_keys=False)


def _load(text: str):
    try:
        return netspec.load(text)
    except netspec.NetspecError:
        return None


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(documents().map(lambda d: yaml.safe_dump(d, sort_keys=False, allow_unicode=True)), small_specs()))
def test_random_documents_only_raise_netspec_errors(text):
    COUNTS["random_doc"] += 1
    if _load(text) is not None:
        COUNTS["random_doc_loaded"] += 1


VALID = """netspec: 1
name: m
params:
  n: 4
blocks:
  b:
    params: {filters: 2}
    inputs: [x]
    nodes:
      - {type: Dense, units: $filters}
inputs:
  x: [8]
nodes:
  - {name: d, type: Dense, units: "${n * 2}", activation: relu}
  - {block: b, filters: 3, repeat: 2}
  - {name: e, expr: "ops.relu(x) * 2.0"}
  - {type: Dropout, rate: 0.5, when: true}
outputs: [e]
"""
ALPHABET = st.sampled_from(list("{}[]:,-$#&*!|>'\"\n ~0123456789.eE_xnabDR%@`\t\\") + ["${", "**", "ops.", "!!",
                                                                                       "&a", "*a", "<<", "\u00e9"])


@st.composite
def mutations(draw):
    text = VALID
    for _ in range(draw(st.integers(1, 2))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            text = text[:pos] + draw(ALPHABET) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        else:
            text = text[:pos] + draw(ALPHABET) + text[pos + 1:]
    return text


def test_the_valid_base_loads():
    assert netspec.load(VALID).graph.nodes


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutations())
def test_text_mutations_only_raise_netspec_errors(text):
    COUNTS["mutation"] += 1
    if _load(text) is not None:
        COUNTS["mutation_loaded"] += 1


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(small_specs(), small_specs(), mutations()))
def test_check_only_raises_netspec_errors(keras, text):
    spec = _load(text)
    if spec is None or len(spec.graph.nodes) > 12:
        return
    COUNTS["check"] += 1
    try:
        spec.check()
        COUNTS["check_built"] += 1
    except netspec.NetspecError:
        pass


def test_report_counts():
    """Runs last in this file: prints how many examples each property saw."""
    print("hypothesis example counts:", COUNTS)
    assert COUNTS["random_doc"] + COUNTS["mutation"] >= 100
