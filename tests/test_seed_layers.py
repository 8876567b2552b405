"""The seed user layers (specs/seed_layers.py) and the specs that use them: shapes and parameter
counts from ``check`` against Keras, numerics against numpy and hand-written Keras, ``.keras``
round trips with ``safe_mode=True``, and the trust gate on ``plugins:``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import netspec
from netspec.schema import registry
from netspec.errors import PluginError, ShapeError

from conftest import SPECS, error_for

PLUGIN = SPECS / "seed_layers.py"
LAYER_NAMES = ("Linear", "ComputeSum", "MyLayer", "PAM", "Scale", "ConvBnReLU", "LocallyConnected2D", "Sampling")


@dataclass(frozen=True)
class Case:
    """A shipped spec: its input shapes and expected output shapes (without batch)."""

    spec: str
    inputs: dict
    outputs: object  # a shape, or a mapping output name -> shape
    non_trainable: int  # BatchNormalization statistics and ComputeSum's total


CASES = [
    Case("seed_linear", {"features": (16,)}, (5,), non_trainable=32),  # ComputeSum.total over 32 units
    Case("seed_mylayer", {"a": (8,), "b": (4,)}, {"projected": (4,), "scores": (3,), "b_mean": ()}, non_trainable=0),
    Case("danet_pam", {"image": (32, 32, 3)}, (32, 32, 4), non_trainable=2 * (16 + 32 + 16)),  # 3 BNs
    Case("vae", {"pixels": (784,)}, (784,), non_trainable=0),
]
IDS = [c.spec for c in CASES]
CASE = {c.spec: c for c in CASES}
BATCH = 3


def load(name: str):
    return netspec.load(SPECS / f"{name}.yaml", trust_plugins=True)


def inputs_for(case: Case, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(size=(BATCH, *shape)).astype("float32") for k, shape in case.inputs.items()}


def feed(data: dict):
    """What ``predict`` takes: the array of a one-input model, else the mapping by input name."""
    return next(iter(data.values())) if len(data) == 1 else data


def assert_same(a, b, tol: float = 1e-6):
    """Equal outputs: arrays, or dicts / lists of them."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=tol, atol=tol, err_msg=key)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_same(u, v, tol)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture(scope="session")
def layers(keras):
    """The registered seed classes (loading a trusted spec imports the plugin once per process)."""
    load("seed_linear")
    return {name: registry.LAYERS[name] for name in LAYER_NAMES}


# -- the shipped specs ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_totals_match_keras(keras, case):
    spec = load(case.spec)
    result = spec.check()
    model = spec.build()
    assert result.total_params == model.count_params()
    assert sum(r.params for r in result.rows if not r.shared) == result.total_params
    assert result.trainable_params + result.non_trainable_params == result.total_params
    assert result.non_trainable_params == case.non_trainable


def test_compute_sum_is_non_trainable_in_the_table(keras):
    result = load("seed_linear").check()
    row = next(r for r in result.rows if r.name == "hidden_sum")
    assert (row.type, row.params, row.shape) == ("ComputeSum", 32, [32])
    assert result.non_trainable_params == row.params


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_build_compiles_runs_and_trains(keras, case):
    model = load(case.spec).build()
    model.compile(optimizer="adam", loss="mse")
    x = feed(inputs_for(case))
    out = model.predict(x, verbose=0)
    if isinstance(case.outputs, dict):
        assert {k: v.shape for k, v in out.items()} == {k: (BATCH, *s) for k, s in case.outputs.items()}
    else:
        assert out.shape == (BATCH, *case.outputs)
    # Gradients flow through the user layers: one step, with the predictions as a target of the
    # right structure (the loss only has to be finite; the VAE's includes its KL term).
    logs = model.train_on_batch(x, out, return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_keras_round_trip_safe_mode(keras, tmp_path, case):
    # Saved before any call, so a seeded Sampling layer starts from the same noise in both models
    # (Keras does not save a SeedGenerator's position).
    model = load(case.spec).build()
    path = tmp_path / f"{case.spec}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    x = feed(inputs_for(case))
    assert_same(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_vae_round_trip_deterministic_path(keras, tmp_path):
    """The encoder's mean does not depend on the noise: equal after reloading, call after call."""
    model = load("vae").build()
    model(np.zeros((1, 784), "float32"))  # move the original's noise generator ahead
    model.save(tmp_path / "vae.keras")
    loaded = keras.saving.load_model(tmp_path / "vae.keras", safe_mode=True)
    x = inputs_for(CASE["vae"])["pixels"]
    mean = [keras.Model(m.input, m.get_layer("z_mean").output) for m in (model, loaded)]
    assert_same(mean[0].predict(x, verbose=0), mean[1].predict(x, verbose=0))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plugins_need_trust(keras, case):
    err = error_for(SPECS / f"{case.spec}.yaml")
    assert isinstance(err, PluginError)
    assert str(PLUGIN) in err.message
    assert err.hint and "--trust-plugins" in err.hint
    assert err.json_path == "$.plugins[0]"


def test_plugin_error_is_public():
    assert netspec.PluginError is PluginError


# -- numerics of the specs -------------------------------------------------------------------


def test_seed_linear_matches_numpy(keras):
    model = load("seed_linear").build()
    x = inputs_for(CASE["seed_linear"])["features"]
    h = x
    for name in ("hidden_0_linear", "hidden_1_linear"):
        layer = model.get_layer(name)
        h = np.maximum(h @ layer.w.numpy() + layer.b.numpy(), 0)
    logits = model.get_layer("logits")
    expected = np_softmax(h @ logits.w.numpy() + logits.b.numpy())
    assert_same(model.predict(x, verbose=0), expected, tol=1e-5)


def test_seed_mylayer_matches_numpy(keras):
    model = load("seed_mylayer").build()
    data = inputs_for(CASE["seed_mylayer"])
    a, b = data["a"], data["b"]
    kernel = model.get_layer("mylayer").kernel.numpy()
    dense = model.get_layer("scores")
    projected = a @ kernel + b
    expected = {"projected": projected, "b_mean": b.mean(axis=-1),
                "scores": np_softmax(projected @ dense.kernel.numpy() + dense.bias.numpy())}
    assert_same(model.predict(feed(data), verbose=0), expected, tol=1e-5)


def test_danet_pam_starts_as_identity(keras):
    """gamma starts at zero, so PAM passes the backbone's features through unchanged."""
    model = load("danet_pam").build()
    x = inputs_for(CASE["danet_pam"])["image"]
    probe = keras.Model(model.input, [model.get_layer("down").output, model.get_layer("pam").output])
    before, after = probe.predict(x, verbose=0)
    np.testing.assert_array_equal(before, after)


def test_vae_adds_one_finite_kl_loss(keras):
    model = load("vae").build()
    x = inputs_for(CASE["vae"])["pixels"]
    model(x)
    assert len(model.losses) == 1
    kl = float(model.losses[0])
    assert np.isfinite(kl) and kl >= 0
    heads = keras.Model(model.input, [model.get_layer("z_mean").output, model.get_layer("z_log_var").output])
    mean, log_var = heads(x)
    mean, log_var = np.asarray(mean), np.asarray(log_var)
    expected = -0.5 * np.mean(1 + log_var - mean**2 - np.exp(log_var))
    np.testing.assert_allclose(kl, expected, rtol=1e-5)
    model(x)
    assert len(model.losses) == 1  # reset on every call, not accumulated


def test_compute_sum_accumulates_during_fit_only(keras):
    model = load("seed_linear").build()
    x = inputs_for(CASE["seed_linear"])["features"]
    probe = keras.Model(model.input, model.get_layer("hidden_sum").output)
    expected = probe.predict(x, verbose=0).sum(axis=0)  # the activations fit's forward pass sees
    total = model.get_layer("hidden_sum").total
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(total.numpy(), 0)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((BATCH, 5), "float32"), batch_size=BATCH, epochs=1, verbose=0)
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-5, atol=1e-6)


# -- the layers against numpy and hand-written Keras ------------------------------------------


@dataclass(frozen=True)
class LayerCase:
    """A layer built alone: constructor arguments, input shapes (without batch), weight counts."""

    type: str
    kwargs: dict
    shapes: tuple  # one shape, or several for a list input
    params: int
    non_trainable: int = 0


LAYER_CASES = [
    LayerCase("Linear", {"units": 4}, ((3,),), 3 * 4 + 4),
    LayerCase("Linear", {"units": 2}, ((5, 3),), 3 * 2 + 2),  # applied on the last axis, like Dense
    LayerCase("ComputeSum", {}, ((5,),), 5, non_trainable=5),
    LayerCase("MyLayer", {"output_dim": 4}, ((3,), (4,)), 3 * 4),
    LayerCase("PAM", {}, ((4, 5, 16),), 16 * 2 * 2 + 16 * 16 + 1),
    LayerCase("PAM", {"reduction": 4}, ((3, 3, 8),), 8 * 2 * 2 + 8 * 8 + 1),
    LayerCase("Scale", {}, ((4, 4, 8),), 16),
    LayerCase("Scale", {"axis": 1, "use_bias": False}, ((6, 4),), 6),
    LayerCase("ConvBnReLU", {"filters": 8, "kernel_size": 3}, ((6, 6, 3),), 3 * 3 * 3 * 8 + 4 * 8, non_trainable=16),
    LayerCase("LocallyConnected2D", {"filters": 2, "kernel_size": 3}, ((5, 5, 1),), 9 * (9 * 2) + 9 * 2),
    LayerCase("Sampling", {"seed": 1}, ((2,), (2,)), 0),
]


def _layer_id(c: LayerCase) -> str:
    return c.type + "".join(f"-{k}={v}" for k, v in c.kwargs.items())


def _random_inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(2, *s)).astype("float32") for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


@pytest.mark.parametrize("case", LAYER_CASES, ids=[_layer_id(c) for c in LAYER_CASES])
def test_layer_contract(keras, layers, case):
    """Like Keras's run_layer_test: build, count weights, config round trip, same outputs after it."""
    cls = layers[case.type]
    layer = cls(**case.kwargs)
    x = _random_inputs(case.shapes)
    out = layer(x)
    assert layer.count_params() == case.params
    assert sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights) == case.non_trainable
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    if case.type != "Sampling":  # different noise streams after the original's first call
        assert_same(clone(x), out, 1e-5)
    symbolic_in = [keras.Input(s) for s in case.shapes]
    symbolic = layer(symbolic_in if len(symbolic_in) > 1 else symbolic_in[0])
    eager_shapes = [tuple(t.shape[1:]) for t in keras.tree.flatten(out)]
    assert [tuple(t.shape[1:]) for t in keras.tree.flatten(symbolic)] == eager_shapes


def test_linear_matches_dense(keras, layers):
    x = _random_inputs([(6,)])
    linear, dense = layers["Linear"](3), keras.layers.Dense(3)
    linear.build((None, 6))
    dense.build((None, 6))
    dense.set_weights(linear.get_weights())  # same order: kernel, bias
    assert_same(np.asarray(linear(x)), np.asarray(dense(x)))


@pytest.mark.parametrize("axis,use_bias,shape", [(-1, True, (4, 4, 3)), (1, False, (5, 2)), (2, True, (3, 4, 2))],
                         ids=["channels", "no-bias", "middle-axis"])
def test_scale_matches_numpy(keras, layers, axis, use_bias, shape):
    layer = layers["Scale"](axis=axis, use_bias=use_bias)
    x = _random_inputs([shape])
    layer.build((None, *shape))
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(weights)
    full = x.shape  # with the batch axis, which `axis` counts
    bshape = [full[i] if i == axis % len(full) else 1 for i in range(len(full))]
    expected = x * weights[0].reshape(bshape) + (weights[1].reshape(bshape) if use_bias else 0)
    assert_same(np.asarray(layer(x)), expected, 1e-5)


def test_mylayer_matches_numpy(keras, layers):
    a, b = _random_inputs([(5,), (3,)])
    layer = layers["MyLayer"](3)
    projected, b_mean = layer([a, b])
    kernel = layer.kernel.numpy()
    assert_same(np.asarray(projected), a @ kernel + b, 1e-5)
    assert_same(np.asarray(b_mean), b.mean(axis=-1), 1e-6)


def test_pam_matches_numpy(keras, layers):
    x = _random_inputs([(3, 4, 16)])
    layer = layers["PAM"]()
    layer.build((None, 3, 4, 16))
    layer.gamma.assign([0.7])
    wq, wk, wv = (c.kernel.numpy()[0, 0] for c in (layer.query_conv, layer.key_conv, layer.value_conv))
    flat = x.reshape(2, 12, 16)  # 1x1 convolutions are matmuls over the positions
    attention = np_softmax((flat @ wq) @ (flat @ wk).transpose(0, 2, 1))
    expected = (0.7 * (attention @ (flat @ wv)) + flat).reshape(x.shape)
    assert_same(np.asarray(layer(x)), expected, 1e-4)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_conv_bn_relu_matches_keras(keras, layers, training):
    L = keras.layers
    x = _random_inputs([(7, 7, 3)])
    ours = layers["ConvBnReLU"](4, 3, strides=2)
    ours.build((None, 7, 7, 3))
    ref = keras.Sequential([keras.Input((7, 7, 3)), L.Conv2D(4, 3, strides=2, padding="same", use_bias=False),
                            L.BatchNormalization(), L.ReLU()])
    rng = np.random.default_rng(2)
    # Random statistics too (variance > 0), so inference mode is not the identity normalisation.
    weights = [np.abs(rng.normal(size=w.shape)).astype("float32") + 0.1 for w in ours.weights]
    ours.set_weights(weights)
    ref.set_weights(weights)
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    assert_same(np.asarray(ours(x, training=training)), np.asarray(ref(x, training=training)), 1e-5)


def _np_local_conv(x, kernel, bias, k, s, out_hw):
    """Keras 2's local_conv2d, with the kernel laid out (positions, kh * kw * c, filters)."""
    rows, cols = out_hw
    out = np.zeros((x.shape[0], rows, cols, kernel.shape[-1]), "float32")
    for i in range(rows):
        for j in range(cols):
            patch = x[:, i * s:i * s + k, j * s:j * s + k, :].reshape(x.shape[0], -1)
            out[:, i, j] = patch @ kernel[i * cols + j]
    return out + bias


@pytest.mark.parametrize("strides", [1, 2], ids=["stride1", "stride2"])
def test_locally_connected_matches_numpy(keras, layers, strides):
    x = _random_inputs([(7, 6, 2)])
    layer = layers["LocallyConnected2D"](3, 3, strides=strides, bias_initializer="random_normal")
    out = np.asarray(layer(x))
    rows, cols = (7 - 3) // strides + 1, (6 - 3) // strides + 1
    assert out.shape == (2, rows, cols, 3)
    expected = _np_local_conv(x, layer.kernel.numpy(), layer.bias.numpy(), 3, strides, (rows, cols))
    assert_same(out, expected, 1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_locally_connected_with_shared_weights_is_conv2d(keras, layers, padding):
    """Tiling one Conv2D kernel over every position gives the Conv2D (same padding: zeros)."""
    x = _random_inputs([(6, 6, 2)])
    conv = keras.layers.Conv2D(3, 3, padding=padding)
    expected = np.asarray(conv(x))
    local = layers["LocallyConnected2D"](3, 3, padding=padding)
    local.build((None, 6, 6, 2))
    positions = local.out_rows * local.out_cols
    kernel, bias = conv.get_weights()
    local.set_weights([np.tile(kernel.reshape(1, -1, 3), (positions, 1, 1)),
                       np.tile(bias, (local.out_rows, local.out_cols, 1))])
    assert_same(np.asarray(local(x)), expected, 1e-5)


def test_compute_sum_layer(keras, layers):
    layer = layers["ComputeSum"]()
    x = _random_inputs([(2, 3)])
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), x)
    layer(x, training=True)
    layer(x)  # inference leaves the total alone
    layer(x, training=False)
    assert layer.trainable_weights == []
    assert_same(layer.total.numpy(), 2 * x.sum(axis=(0, 1)), 1e-5)


def test_sampling_is_seeded_and_kl_is_zero_at_the_prior(keras, layers):
    z = np.zeros((4, 3), "float32")
    first, second = layers["Sampling"](seed=7), layers["Sampling"](seed=7)
    draws = [np.asarray(s([z, z])) for s in (first, second)]
    np.testing.assert_array_equal(draws[0], draws[1])
    assert float(first.losses[0]) == pytest.approx(0.0, abs=1e-7)  # N(0, 1) is the prior itself
    assert not np.array_equal(draws[0], np.asarray(first([z, z])))  # the stream moves on


# -- netspec's argument and shape checks on user layers ---------------------------------------


def spec_text(nodes: list[str], inputs: dict[str, str]) -> str:
    """A spec using the seed plugin by its absolute path (spec text has no directory of its own)."""
    lines = ["netspec: 1", "name: t", f"plugins: [{PLUGIN}]", "inputs:"]
    lines += [f"  {name}: {shape}" for name, shape in inputs.items()]
    lines += ["nodes:"] + [f"  - {node}" for node in nodes]
    return "\n".join(lines) + "\n"


X8, AB = {"x": "[8]"}, {"a": "[8]", "b": "[4]"}
ERRORS = [
    # (id, nodes, inputs, stage, message fragment, hint fragment)
    ("unknown-arg", ["{type: Linear, unit: 4}"], X8, "load", "unknown argument 'unit' for Linear", "'units'"),
    ("missing-arg", ["{type: Linear}"], X8, "load", "missing required argument 'units'", None),
    ("bad-value", ["{type: Linear, units: -4}"], X8, "check", "units=-4", None),
    ("pam-too-few-channels", ["{name: pam, type: PAM}"], {"x": "[4, 4, 4]"}, "check",
     "PAM needs at least reduction=8 input channels", None),
    ("mylayer-width", ["{name: m, type: MyLayer, output_dim: 5, in: [a, b]}"], AB, "check",
     "b's last axis must be 5", None),
    ("mylayer-third-output", ["{name: m, type: MyLayer, output_dim: 4, in: [a, b]}", "{type: ReLU, in: m.2}"],
     AB, "check", "has 2 output(s)", None),
    ("lc2d-unknown-size", ["{type: LocallyConnected2D, filters: 2, kernel_size: 3}"], {"x": "[null, null, 3]"},
     "check", "needs known rows", None),
]


@pytest.mark.parametrize("nodes,inputs,stage,fragment,hint", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_user_layer_errors(keras, layers, nodes, inputs, stage, fragment, hint):
    err = error_for(spec_text(nodes, inputs), stage=stage, trust_plugins=True)
    assert fragment in err.message, str(err)
    if hint:
        assert err.hint and hint in err.hint, str(err)
    assert err.json_path.startswith("$.nodes["), str(err)


def test_shape_errors_quote_shapes(keras, layers):
    err = error_for(spec_text(["{name: pam, type: PAM}"], {"x": "[4, 4, 4]"}), stage="check", trust_plugins=True)
    assert isinstance(err, ShapeError)
    assert "(None, 4, 4, 4)" in err.message


def test_user_layer_object_arguments(keras, layers):
    node = ("{name: pam, type: PAM, gamma_initializer: {type: Constant, value: 0.5}, "
            "gamma_regularizer: {type: L2, l2: 0.01}}")
    pam = netspec.load(spec_text([node], {"x": "[4, 4, 16]"}), trust_plugins=True).build().get_layer("pam")
    np.testing.assert_allclose(pam.gamma.numpy(), [0.5])
    assert isinstance(pam.gamma_regularizer, keras.regularizers.L2)


@pytest.mark.parametrize("source, items, message", [
    ("import numpy_plus_missing_dep\n", ["broken.py"],
     "plugin 'broken.py' failed while loading: it imports 'numpy_plus_missing_dep', which is not installed"),
    ("import sys\nsys.exit(3)\n", ["script.py"], "plugin 'script.py' called sys.exit(3) while loading"),
    (None, ["no_such_plugin_module"], "plugin module 'no_such_plugin_module' not found"),
    (None, ["no_such_pkg.layers"], "plugin module 'no_such_pkg.layers' not found"),
    ("raise GeneratorExit\n", ["genexit.py"], "plugin 'genexit.py' failed while loading: GeneratorExit"),
    ("raise ModuleNotFoundError('custom')\n", ["mnf.py"],
     "plugin 'mnf.py' failed while loading: ModuleNotFoundError: custom"),
    (None, ["dir/layers"], "plugin 'dir/layers' is neither a .py file nor a module name"),
])
def test_a_plugin_that_fails_to_load_says_how(tmp_path, source, items, message):
    """Not 'module not found' for a plugin that exists but imports a missing one; not a silent exit 3."""
    from netspec.schema.plugins import load_plugin_targets

    if source is not None:
        (tmp_path / items[0]).write_text(source)
    with pytest.raises(PluginError) as e:
        load_plugin_targets(items, base=tmp_path)
    assert message in e.value.message


def test_a_plugin_printing_leaves_stdout_to_the_report(tmp_path, capsys):
    """stdout is the report's (--format json): what a plugin prints while loading goes to stderr."""
    from netspec.schema.plugins import load_plugin_targets

    (tmp_path / "chatty.py").write_text("print('HELLO FROM PLUGIN')\n")
    load_plugin_targets(["chatty.py"], base=tmp_path)
    out = capsys.readouterr()
    assert out.out == "" and "HELLO FROM PLUGIN" in out.err
