"""Language edges found by writing public Keras examples as specs (issue 14): each case failed before."""

from __future__ import annotations

import textwrap

import numpy as np

import pytest

import netspec

from conftest import error_for


def spec_text(body: str) -> str:
    return "netspec: 1\nname: edge\n" + textwrap.dedent(body)


# -- integer `axes` keys --------------------------------------------------------------------------------

@pytest.mark.parametrize("axes", ["{-1: 64}", "{2: 64}", '{"-1": 64}', "{-1: 64, 1: 8}"])
def test_input_spec_axes_take_integer_keys(keras, axes):
    spec = netspec.load(spec_text(f"""\
        inputs: {{x: [8, 64]}}
        nodes:
          - {{name: d, type: Dense, units: 4, input_spec: {{axes: {axes}}}}}
        """))
    assert spec.build().get_layer("d").input_spec is not None


def test_integer_axes_key_is_checked_with_its_location(keras):
    err = error_for(spec_text("""\
        inputs: {x: [8, 64]}
        nodes:
          - {name: d, type: Dense, units: 4, input_spec: {axes: {-1: 32}}}
        """), stage="check")
    assert err.kind == "shape" and err.json_path == "$.nodes[0].input_spec"
    assert "expected axis -1 of input shape to have value 32" in err.message


@pytest.mark.parametrize("text, needle", [
    ("{-1: 8, '-1': 8}", "duplicate key '-1'"),
    ("{x: 8}", "invalid key"),
])
def test_bad_axes_keys_still_refused(text, needle):
    err = error_for(spec_text(f"""\
        inputs: {{x: [8, 64]}}
        nodes:
          - {{name: d, type: Dense, units: 4, input_spec: {{axes: {text}}}}}
        """))
    assert needle in err.message and err.line == 5


def test_integer_keys_elsewhere_still_refused():
    err = error_for(spec_text("""\
        inputs: {x: [8]}
        nodes:
          - {name: d, type: Dense, units: 4, 1: 2}
        """))
    assert "keys must be strings" in err.message


# -- plugins forwarding **kwargs to their Keras base class ------------------------------------------------

PLUGIN = '''\
import keras
import netspec


@netspec.register_layer
class EdgeScaledDense(keras.layers.Dense):
    """Dense with a scaled output (the usual Keras idiom: **kwargs go to the base class)."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(units, **kwargs)
        self.scale = scale

    def call(self, x):
        return super().call(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@netspec.register_layer
class EdgeWide(keras.layers.Dense):
    """Passes the base class's required argument itself."""

    def __init__(self, **kwargs):
        super().__init__(64, **kwargs)


@netspec.register_layer
class EdgeClosed(keras.layers.Dense):
    """No **kwargs: only its own arguments."""

    def __init__(self, units):
        super().__init__(units)
'''


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("edge_plugins")
    (base / "edge_plugins.py").write_text(PLUGIN, encoding="utf-8")
    return base


def plugin_spec(plugin_dir, node: str):
    path = plugin_dir / "spec.yaml"
    path.write_text(spec_text(f"""\
        plugins: [edge_plugins.py]
        inputs: {{x: [8]}}
        nodes:
          - {node}
        """), encoding="utf-8")
    return path


def test_plugin_takes_its_base_class_arguments(keras, plugin_dir):
    path = plugin_spec(plugin_dir, "{name: d, type: EdgeScaledDense, units: 4, scale: 2.0, activation: relu, "
                                   "use_bias: false, kernel_initializer: {type: HeNormal, seed: 1}}")
    model = netspec.load(path, trust_plugins=True).build()
    layer = model.get_layer("d")
    assert model.count_params() == 8 * 4 and layer.scale == 2.0
    assert layer.activation is keras.activations.relu and not layer.use_bias
    assert isinstance(layer.kernel_initializer, keras.initializers.HeNormal)


def test_plugin_base_required_argument_passed_by_the_plugin(keras, plugin_dir):
    model = netspec.load(plugin_spec(plugin_dir, "{name: d, type: EdgeWide, activation: tanh}"),
                         trust_plugins=True).build()
    assert model.count_params() == 8 * 64 + 64


@pytest.mark.parametrize("node, kind, needle, hint", [
    ("{name: d, type: EdgeScaledDense, units: 4, activaton: relu}",
     "schema", "unknown argument 'activaton' for EdgeScaledDense", "did you mean 'activation'?"),
    ("{name: d, type: EdgeScaledDense, units: 4, activation: 3}", "schema", "activation", None),
    ("{name: d, type: EdgeScaledDense, activation: relu}",
     "schema", "missing required argument 'units' for EdgeScaledDense", None),
    ("{name: d, type: EdgeClosed, units: 4, activation: relu}",
     "schema", "unknown argument 'activation' for EdgeClosed", None),
])
def test_plugin_base_arguments_are_checked(keras, plugin_dir, node, kind, needle, hint):
    err = error_for(plugin_spec(plugin_dir, node), trust_plugins=True)
    assert err.kind == kind and needle in err.message and err.line == 6
    assert err.hint == hint or hint is None


def test_plugin_schema_lists_the_base_class_arguments(keras, plugin_dir):
    from netspec.schema import registry
    from netspec.schema.catalog import load_schema
    from netspec.schema.derive.nodes import with_user_layers

    netspec.load(plugin_spec(plugin_dir, "{type: EdgeWide}"), trust_plugins=True)
    schema = with_user_layers(load_schema(), registry.LAYERS)
    scaled = schema["$defs"]["layer.EdgeScaledDense"]
    core = schema["$defs"]["layer.Dense"]
    assert scaled["properties"]["activation"] == core["properties"]["activation"]
    assert {"scale", "units", "use_bias", "kernel_initializer", "trainable"} <= set(scaled["properties"])
    assert scaled["required"] == ["type", "units"]
    assert schema["$defs"]["layer.EdgeWide"]["required"] == ["type"]
    assert "activation" not in schema["$defs"]["layer.EdgeClosed"]["properties"]


# -- Keras 2 argument names and wiring hints --------------------------------------------------------------

@pytest.mark.parametrize("node, key, hint", [
    ("{name: l, type: LeakyReLU, alpha: 0.2}", "alpha",
     "alpha is the Keras 2 name of negative_slope: write negative_slope: 0.2"),
    ("{name: e, type: Embedding, input_dim: 10, output_dim: 4, input_length: 8}", "input_length",
     "Keras 3 ignores input_length (deprecated): remove it; the sequence length comes from the input's shape"),
    ("{name: r, type: LSTM, units: 4, implementation: 1}", "implementation",
     "Keras 3 ignores implementation (deprecated): remove it"),
    ("{name: r, type: GRU, units: 4, implementation: 1}", "implementation",
     "Keras 3 ignores implementation (deprecated): remove it"),
    ("{name: r, type: Bidirectional, layer: {type: LSTM, units: 4, implementation: 1}}", "implementation",
     "Keras 3 ignores implementation (deprecated): remove it"),
    ("{name: d, type: Dense, units: 4, input_shape: [8]}", "input_shape",
     "a spec declares shapes under inputs:, not on a layer; remove input_shape"),
    ("{name: d, type: Dense, units: 4, input_dim: 8}", "input_dim",
     "a spec declares shapes under inputs:, not on a layer; remove input_dim"),
])
def test_keras2_argument_names_get_a_hint(node, key, hint):
    err = error_for(spec_text(f"""\
        inputs: {{x: [8, 8]}}
        nodes:
          - {node}
        """))
    column = len("  - ") + node.index(f" {key}:") + 2  # 1-based, at the key
    assert err.message == f"unknown key {key!r}" and (err.line, err.column) == (5, column)
    assert err.json_path.endswith(f".{key}")
    assert err.hint == hint


def test_unknown_keys_without_a_keras2_name_keep_did_you_mean():
    err = error_for(spec_text("""\
        inputs: {x: [8]}
        nodes:
          - {name: l, type: LeakyReLU, negative_slop: 0.2}
        """))
    assert err.hint == "did you mean 'negative_slope'?"


@pytest.mark.parametrize("wiring, message, hint", [
    ("in: [x, x]", "'in:' gives a list of 2 inputs", "write in: {query: x, value: x}"),
    ("in: [x, y, y]", "'in:' gives a list of 3 inputs", "write in: {query: x, value: y, key: y}"),
    ("in: y", "'in:' gives one input", "write in: {query: y, value: y}"),
    ("", "'in:' gives one input", "write in: {query: x, value: x}"),
])
def test_named_input_layers_given_a_list_get_the_mapping_form(wiring, message, hint):
    node = "{name: a, type: MultiHeadAttention, num_heads: 2, key_dim: 8" + (", " + wiring if wiring else "") + "}"
    err = error_for(spec_text(f"""\
        inputs: {{x: [8, 16], y: [4, 16]}}
        nodes:
          - {{name: x2, type: Identity, in: x}}
          - {node}
        """))
    # At the value of in:, or at the node that has none.
    column = len("  - ") + node.index("in: ") + 5 if wiring else 5
    assert err.kind == "resolve" and (err.line, err.column) == (6, column)
    assert err.json_path == ("$.nodes[1].in" if wiring else "$.nodes[1]")
    assert err.message == ("MultiHeadAttention takes its inputs by name (query, value and optionally key); "
                           + message)
    assert err.hint == hint


def test_named_input_layers_accept_the_mapping(keras):
    model = netspec.load(spec_text("""\
        inputs: {x: [8, 16], y: [4, 16]}
        nodes:
          - {name: a, type: MultiHeadAttention, num_heads: 2, key_dim: 8, in: {query: x, value: y}}
        """)).build()
    assert tuple(model.output.shape) == (None, 8, 16)


def test_named_inputs_table_matches_keras(keras):
    """Every core layer whose call needs two named tensors (RNN cells aside: RNN calls them) is listed."""
    import inspect

    from netspec.schema.catalog import NAMED_INPUTS, Catalog

    found = {}
    for name in Catalog().core:
        call = getattr(keras.layers, name).call
        params = [p for p in list(inspect.signature(call).parameters.values())[1:]
                  if p.kind is p.POSITIONAL_OR_KEYWORD]
        if sum(p.default is p.empty for p in params) > 1 and not name.endswith(("Cell", "Cells")):
            found[name] = tuple(p.name for p in params[:3])
    assert found == NAMED_INPUTS


# -- expression functions of public examples: ops.arange, ops.image.extract_patches, ops.image.resize -------

EXPR_SPEC = """\
netspec: 1
name: edge_exprs
inputs: {tokens: {shape: [16], dtype: int32}, image: [32, 32, 3], skip: [16, 16, 2]}
nodes:
  - {name: tok, type: Embedding, input_dim: 100, output_dim: 8, in: tokens}
  - {name: pos_ids, expr: "ops.arange(in_shape[0])", in: tokens}
  - {name: pos, type: Embedding, input_dim: 16, output_dim: 8, in: pos_ids}
  - {name: embedded, expr: "t + p", in: {t: tok, p: pos}}
  - {name: patches, expr: "ops.image.extract_patches(x, 8)", in: image, output_shape: [4, 4, 192]}
  - {name: tokens_of_patches, expr: "ops.reshape(x, [-1, 16, 192])", in: patches}
  - {name: steps, expr: "x[:, 0, :4] * ops.arange(0.0, 1.0, 0.25, dtype='float32')", in: tokens_of_patches}
  - {name: up, expr: "ops.image.resize(x, [in_shape[0] * 2, in_shape[1] * 2])", in: skip}
  - {name: down, expr: "ops.image.resize(x, [32, 32], interpolation='nearest')", in: image}
  - {name: fused, type: Concatenate, in: [up, down]}
outputs: [embedded, tokens_of_patches, steps, fused]
"""


def test_new_expression_functions_compute_what_keras_computes(keras):
    import numpy as np

    model = netspec.load(EXPR_SPEC).build()
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 100, size=(2, 16)).astype("int32")
    image = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    skip = rng.normal(size=(2, 16, 16, 2)).astype("float32")
    out = dict(zip(["embedded", "tokens_of_patches", "steps", "fused"], model.predict([tokens, image, skip], verbose=0)))
    table = model.get_layer("pos").embeddings.numpy()
    words = model.get_layer("tok").embeddings.numpy()
    np.testing.assert_allclose(out["embedded"], words[tokens] + table[None, :16], rtol=1e-6)
    # Patch k (row-major) is the 8x8x3 block at (k // 4, k % 4), flattened (row, column, channel).
    block = image[:, 8:16, 16:24, :].reshape(2, -1)
    np.testing.assert_allclose(out["tokens_of_patches"][:, 4 + 2], block, rtol=1e-6)
    first = image[:, :8, :8, :].reshape(2, -1)[:, :4]
    np.testing.assert_allclose(out["steps"], first * [0, 0.25, 0.5, 0.75], rtol=1e-6)
    assert out["fused"].shape == (2, 32, 32, 5)


@pytest.mark.slow
def test_new_expression_functions_pass_the_onnx_gate(keras, tmp_path):
    import onnx

    from netspec.export import export
    from netspec.export.targets import BUILTIN

    report = export(netspec.load(EXPR_SPEC), BUILTIN["onnx-cpu"], tmp_path / "e.onnx", latency=False)
    assert report.gate.ok
    assert {p.output for p in report.gate.parity} == {"embedded", "tokens_of_patches", "steps", "fused"}
    assert all(p.max_abs_error <= p.bound for p in report.gate.parity)
    ops = {n.op_type for n in onnx.load(tmp_path / "e.onnx").graph.node}
    assert {"Conv", "Resize"} <= ops  # extract_patches is a convolution with an identity kernel


@pytest.mark.parametrize("text, needle", [
    ("ops.arange(0, 10, 0)", "ops.arange needs a step other than 0"),
    ("ops.arange(2 ** 21)", "ops.arange makes 2,097,152 values; at most 1,048,576 are allowed"),
    ("ops.arange(0, 2 ** 22, 2)", "ops.arange makes 2,097,152 values"),
    ("ops.arange(x)", "argument 'start' of ops.arange must be a constant"),
    ("ops.image.extract_patches(x, 0)", "argument 'size' of ops.image.extract_patches must be"),
    ("ops.image.resize(x, [8, 8], interpolation='bicubic')", "argument 'interpolation' of ops.image.resize"),
    ("ops.image.nope(x)", "unknown function 'ops.image.nope'"),
    ("ops.nn.relu(x)", "only ops.<function>(...) and activations.<function>(...) may be called"),
])
def test_new_expression_functions_are_checked(text, needle):
    from netspec.errors import ExpressionError
    from netspec.expressions.check import check

    with pytest.raises(ExpressionError) as info:
        check(text, ["x"], {})
    assert needle in info.value.message


def test_arange_sized_by_a_shape_is_checked_when_built(keras):
    err = error_for(spec_text("""\
        inputs: {x: [2000000]}
        nodes:
          - {name: ids, expr: "ops.arange(in_shape[0])"}
        """), stage="check")
    assert err.kind == "expression" and (err.line, err.column) == (5, 24)
    assert "ops.arange makes 2,000,000 values" in err.message


# -- `when:` that reads shapes ------------------------------------------------------------------------------

RESIDUAL = """\
netspec: 1
name: residual
inputs: {image: [16, 16, 3]}
blocks:
  res:
    inputs: [x]
    params: {filters: 16}
    nodes:
      - {name: a, type: Conv2D, filters: $filters, kernel_size: 3, padding: same, activation: relu, in: x}
      - {name: b, type: Conv2D, filters: $filters, kernel_size: 3, padding: same}
      - {name: proj, type: Conv2D, filters: $filters, kernel_size: 1, in: x, when: "${in_shape[-1] != filters}"}
      - {name: sum, type: Add, in: [b, proj]}
nodes:
  - {name: stem, type: Conv2D, filters: 16, kernel_size: 3, padding: same, in: image}
  - {name: r1, block: res, filters: 16}
  - {name: r2, block: res, filters: 32}
  - {name: r3, block: res, filters: 32}
  - {name: r4, block: res, filters: 64}
"""


def test_when_reading_shapes_projects_only_when_the_width_changes(keras):
    L = keras.layers
    x = inp = keras.Input((16, 16, 3))
    x = L.Conv2D(16, 3, padding="same")(x)
    for filters in (16, 32, 32, 64):
        y = L.Conv2D(filters, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(filters, 3, padding="same")(y)
        skip = L.Conv2D(filters, 1)(x) if x.shape[-1] != filters else x
        x = L.Add()([y, skip])
    reference = keras.Model(inp, x)
    model = netspec.load(RESIDUAL).build()
    assert model.count_params() == reference.count_params()
    names = {layer.name for layer in model.layers}
    assert {"r2_proj", "r4_proj"} <= names and not {"r1_proj", "r3_proj"} & names
    result = netspec.load(RESIDUAL).check()
    assert [row.name for row in result.rows if row.name.endswith("_proj")] == ["r2_proj", "r4_proj"]


@pytest.mark.parametrize("width, params", [
    (16, 16 * 16),  # shape(first)[-1] == 16: left out, `out` adds `first` to its own input
    (8, 8 * 16 + 8 * 16 + 16),  # 8 != 16: the projection is built
])
def test_when_reads_shape_of_a_ref_and_passes_else(keras, width, params):
    model = netspec.load(spec_text(f"""\
        inputs: {{x: [{width}]}}
        nodes:
          - {{name: first, type: Dense, units: 16, use_bias: false}}
          - {{name: proj, type: Dense, units: 16, in: x, when: "${{shape(x)[-1] != shape(first)[-1]}}", else: x}}
          - {{name: out, type: Add, in: [first, proj]}}
        """)).build()
    assert model.count_params() == params


@pytest.mark.parametrize("node, stage, where, needle", [
    ('{name: p, type: Dense, units: 4, when: "${in_shape[-1]}"}', "check", (6, 44),
     "node 'p': when must be a boolean. Received: when=8"),
    ('{name: p, block: fc, when: "${in_shape[-1] > 2}"}', "load", (6, 32),
     "a when: that reads shapes is decided at build time, so it cannot leave out a block instance"),
])
def test_when_reading_shapes_errors(node, stage, where, needle):
    err = error_for(spec_text(f"""\
        inputs: {{x: [8]}}
        blocks: {{fc: {{inputs: [x], nodes: [{{type: Dense, units: 4}}]}}}}
        nodes:
          - {node}
        """), stage=stage)
    assert needle in err.message and (err.line, err.column) == where
    assert err.json_path == "$.nodes[0].when"


def test_when_reading_shapes_on_repeated_instances(keras):
    model = netspec.load(spec_text("""\
        inputs: {x: [4]}
        nodes:
          - {name: grow, type: Dense, units: "${4 * (i + 1)}", repeat: 4, when: "${in_shape[-1] < 12}"}
        """)).build()
    # 4 -> 4 (i=0), 4 -> 8 (i=1), 8 -> 12 (i=2); i=3 sees 12 and is left out.
    assert [layer.name for layer in model.layers[1:]] == ["grow_0", "grow_1", "grow_2"]
    assert tuple(model.output.shape) == (None, 12)


def test_expression_mapping_inputs_keep_their_written_order(keras):
    """`in: {t: token_emb, p: pos_emb}` builds token_emb first, as the Keras code `tokens + positions` does
    (Keras flattens a mapping by sorted key, which used to order the weights p before t)."""
    spec = netspec.load(spec_text("""
        inputs:
          tokens: {shape: [8], dtype: int32}
        nodes:
          - {name: token_emb, type: Embedding, input_dim: 50, output_dim: 4, in: tokens}
          - {name: positions, expr: "ops.arange(in_shape[0])", in: tokens}
          - {name: pos_emb, type: Embedding, input_dim: 8, output_dim: 4}
          - {name: embedded, expr: "t - p", in: {t: token_emb, p: pos_emb}}
        """))
    model = spec.build()
    assert [tuple(w.shape) for w in model.weights] == [(50, 4), (8, 4)]
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]], dtype="int32")
    table, positions = (np.asarray(w) for w in model.weights)
    np.testing.assert_allclose(np.asarray(model(tokens)), table[tokens] - positions[None], atol=1e-6)
