"""The compiler against hand-written Keras: parameter counts, output shapes, numerics, names, errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import netspec
from netspec.kerasapi import inbound_nodes

from conftest import SPECS, error_for


def load(name: str, **kw):
    return netspec.load(SPECS / f"{name}.yaml", **kw)


def shapes(model) -> list:
    return [tuple(layer.output.shape) for layer in model.layers]


def copy_and_compare(ours, ref, inputs):
    ref.set_weights(ours.get_weights())
    a, b = ours.predict(inputs, verbose=0), ref.predict(inputs, verbose=0)
    if isinstance(a, dict):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_lenet5_matches_keras(keras):
    L = keras.layers
    ours = load("lenet5").build()
    x = keras.Input((32, 32, 1), name="image")
    y = L.Conv2D(6, 5, activation="tanh")(x)
    y = L.AveragePooling2D(2)(y)
    y = L.Conv2D(16, 5, activation="tanh")(y)
    y = L.AveragePooling2D(2)(y)
    y = L.Flatten()(y)
    y = L.Dense(120, activation="tanh")(y)
    y = L.Dense(84, activation="tanh")(y)
    y = L.Dense(10, activation="softmax")(y)
    ref = keras.Model(x, y)
    assert ours.count_params() == ref.count_params() == 61706
    assert shapes(ours) == shapes(ref)
    assert [l.name for l in ours.layers] == ["image", "c1", "s2", "c3", "s4", "flatten", "f5", "f6", "probs"]
    copy_and_compare(ours, ref, np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype("float32"))


def test_mlp_matches_keras(keras):
    L = keras.layers
    ours = load("mlp").build()
    x = keras.Input((64,))
    y = x
    for units in (256, 128, 64):
        y = L.Dense(units, kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.L2(1e-4))(y)
        y = L.BatchNormalization()(y)
        y = L.ReLU()(y)
        y = L.Dropout(0.2)(y)
    y = L.Softmax()(L.Dense(10)(y))
    ref = keras.Model(x, y)
    assert ours.count_params() == ref.count_params()
    assert shapes(ours) == shapes(ref)
    dense = ours.get_layer("hidden_1_dense")
    assert isinstance(dense.kernel_regularizer, keras.regularizers.L2)
    assert dense.kernel_regularizer.l2 == pytest.approx(1e-4)
    assert isinstance(dense.kernel_initializer, keras.initializers.HeNormal)
    copy_and_compare(ours, ref, np.random.default_rng(1).normal(size=(3, 64)).astype("float32"))


def test_two_heads_output_names_everywhere(keras):
    model = load("two_heads").build()
    assert model.output_names == ["class_probs", "value"]
    out = model.predict({"image": np.zeros((2, 64, 64, 3), "float32"), "meta": np.zeros((2, 8), "float32")},
                        verbose=0)
    assert set(out) == {"class_probs", "value"}
    assert out["class_probs"].shape == (2, 5) and out["value"].shape == (2, 1)


def test_siamese_shares_weights(keras):
    model = load("siamese").build()
    tower = [l for l in model.layers if l.name.startswith("tower_left_")]
    assert len(tower) == 5 and not any(l.name.startswith("tower_right_") for l in model.layers)
    conv = model.get_layer("tower_left_conv1")
    assert len(inbound_nodes(conv)) == 2
    # one tower (16*9+16 + 32*16*9+32 + 32*32+32) + head (32 + 1)
    assert model.count_params() == 160 + 4640 + 1056 + 33
    left = np.random.default_rng(2).normal(size=(2, 28, 28, 1)).astype("float32")
    same = model.predict({"left": left, "right": left}, verbose=0)
    diff = model.predict({"left": left, "right": -left}, verbose=0)
    assert same.shape == (2, 1) and not np.allclose(same, diff)
    head = model.get_layer("same")
    kernel, bias = (w.numpy() for w in head.weights)
    expected = 1 / (1 + np.exp(-(0 * kernel.sum() + bias)))  # identical inputs: the distance is zero
    np.testing.assert_allclose(same, np.broadcast_to(expected, (2, 1)), rtol=1e-5)


def test_shape_dependent_arguments(keras):
    spec = netspec.load(textwrap.dedent("""\
        netspec: 1
        name: deferred
        inputs: {x: [8, 8, 3]}
        nodes:
          - {name: widen, type: Conv2D, filters: "${in_shape[-1] * 2}", kernel_size: 1}
          - {name: same, type: Conv2D, filters: "${shape(x)[-1]}", kernel_size: 1}
          - {name: pad, type: ZeroPadding2D, padding: "${[[in_shape[0] % 2, 1], [0, 1]]}"}
        """))
    model = spec.build()
    assert model.get_layer("widen").filters == 6
    assert model.get_layer("same").filters == 3
    assert tuple(model.output.shape) == (None, 9, 9, 3)


def test_shape_error_names_node_line_and_shapes(keras):
    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: bad
        inputs: {x: [8]}
        nodes:
          - {name: d, type: Dense, units: 4}
          - {name: conv, type: Conv2D, filters: 2, kernel_size: 3}
        """), stage="check")
    assert err.kind == "shape"
    assert (err.line, err.column) == (6, 5)
    assert "node 'conv'" in err.message and "(None, 4)" in err.message


def test_keras_argument_error_is_located(keras):
    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: bad
        inputs: {x: [8]}
        nodes:
          - {name: d, type: Dense, units: 4}
          - {name: r, type: Reshape, target_shape: [3, 5]}
        """), stage="check")
    assert (err.line, err.column) == (6, 5)
    assert "node 'r'" in err.message


def test_deferred_value_checked_against_the_schema_at_build(keras):
    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: bad
        inputs: {x: [8, 8, 3]}
        nodes:
          - {name: c, type: Conv2D, filters: "${in_shape[-1] - 3}", kernel_size: 1}
        """), stage="check")
    assert "node 'c'" in err.message and "filters" in err.json_path


@pytest.mark.parametrize("name", ["lenet5", "mlp", "two_heads", "siamese"])
def test_round_trip_safe_mode(keras, tmp_path, name):
    spec = load(name)
    model = spec.build()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert again.count_params() == model.count_params()
    feeds = {t.name: np.random.default_rng(3).normal(size=(2, *t.shape[1:])).astype("float32") for t in model.inputs}
    if len(feeds) == 1:
        feeds = next(iter(feeds.values()))
    a, b = model.predict(feeds, verbose=0), again.predict(feeds, verbose=0)
    if isinstance(a, dict):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_user_layer_input_spec_is_checked_like_core(keras):
    @netspec.register_layer(name="NeedsImages")
    class NeedsImages(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = keras.InputSpec(ndim=4)

        def call(self, x):
            return x

    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: bad
        inputs: {x: [8]}
        nodes:
          - {name: img, type: NeedsImages}
        """), stage="check")
    assert err.kind == "shape" and (err.line, err.column) == (5, 5)
    assert "node 'img'" in err.message and "expected ndim=4, found ndim=2" in err.message


def test_a_user_layer_without_kwargs_is_told_to_take_them(keras):
    """The functional-API guide's CustomDense, ``__init__(self, units=32)``: Keras passes every layer its name,
    which it refuses; the error is at the node and says what to change in the class."""
    @netspec.register_layer(name="GuideDense")
    class GuideDense(keras.layers.Layer):
        def __init__(self, units=32):
            super().__init__()
            self.units = units

        def call(self, x):
            return x

    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: guide
        inputs: {x: [8]}
        nodes:
          - {name: dense, type: GuideDense, units: 4}
        """), stage="check")
    assert (err.line, err.column) == (5, 5) and "unexpected keyword argument 'name'" in err.message
    assert "**kwargs" in err.hint and "super().__init__(**kwargs)" in err.hint


def test_input_spec_attached_and_checked(keras):
    spec = netspec.load(textwrap.dedent("""\
        netspec: 1
        name: ok
        inputs: {x: [8, 3]}
        nodes:
          - {name: c, type: Conv1D, filters: 2, kernel_size: 3, input_spec: {ndim: 3, axes: {"-1": 3}}}
        """))
    model = spec.build()
    assert model.get_layer("c").input_spec is not None
    err = error_for(textwrap.dedent("""\
        netspec: 1
        name: bad
        inputs: {x: [8, 4]}
        nodes:
          - {name: c, type: Conv1D, filters: 2, kernel_size: 3, input_spec: {axes: {"-1": 3}}}
        """), stage="check")
    assert err.json_path == "$.nodes[0].input_spec" and "(None, 8, 4)" in err.message


def test_input_spec_on_a_multi_input_node_holds_for_each_input(keras):
    spec = textwrap.dedent("""\
        netspec: 1
        name: merge_spec
        inputs: {a: [4], b: [4], c: [2, 4]}
        nodes:
          - {name: s, type: Add, in: [a, b], input_spec: {ndim: 2}}
          - {name: e, expr: "x + y", in: {x: a, y: b}, input_spec: {ndim: 2}}
        outputs: [s, e]
        """)
    model = netspec.load(spec).build()
    assert [repr(s) for s in model.get_layer("s").input_spec] == [repr(keras.InputSpec(ndim=2))] * 2
    err = error_for(spec.replace("in: [a, b], input_spec", "in: [a, c], input_spec"), stage="build")
    assert err.json_path == "$.nodes[0].input_spec" and (err.line, err.column) == (5, 50)
    assert "does not accept input 1, of shape (None, 2, 4): expected ndim=2, found ndim=3" in err.message


def test_einsum_dense_takes_its_output_shape_argument(keras):
    spec = textwrap.dedent("""\
        netspec: 1
        name: einsum
        inputs: {x: [5, 8]}
        nodes:
          - {name: e, type: EinsumDense, equation: "abc,cd->abd", output_shape: [5, 16], bias_axes: d}
        """)
    model = netspec.load(spec).build()
    ref = keras.layers.EinsumDense("abc,cd->abd", output_shape=(5, 16), bias_axes="d")
    ref.build((None, 5, 8))
    assert model.get_layer("e").count_params() == ref.count_params() == 8 * 16 + 16
    assert tuple(model.output.shape) == (None, 5, 16)
    err = error_for(spec.replace("EinsumDense, equation: \"abc,cd->abd\",", "Dense, units: 3,")
                    .replace(", bias_axes: d", ""))
    assert "unknown key 'output_shape'" in err.message


def test_long_one_line_yaml_text_is_text_not_a_file_name():
    text = "{netspec: 1, name: t, inputs: {x: [4]}, nodes: [" + "{type: ReLU}, " * 300 + "{type: ReLU}]}"
    assert len(netspec.load(text).graph.nodes) == 301


# -- the budget: everything that allocates is priced before it is allocated -------------------------

from netspec import budget as nb  # noqa: E402 - the budget's own tests, beside the compiler that applies it
from netspec.build.compiler import DEFAULT_BUDGET, Budget  # noqa: E402 - still importable from netspec.build.compiler

BUDGET_CASES = [
    # id, inputs, node, budget arguments, message fragment (None: builds)
    ("mha_scores", "{x: [4000, 8]}", "{name: a, type: MultiHeadAttention, num_heads: 2, key_dim: 4, in: {query: x, value: x}}",
     {"max_activation_bytes": 64 << 20}, "node 'a': MultiHeadAttention's attention scores (2 heads x 4,000 x 4,000)"),
    ("mha_key_sets_time", "{q: [10, 8], k: [50000, 8]}",
     "{name: a, type: MultiHeadAttention, num_heads: 4, key_dim: 2, in: {query: q, value: k, key: k}}",
     {"max_activation_bytes": 1 << 20}, "(4 heads x 10 x 50,000)"),
    ("mha_unknown_time_at_fed_size", "{x: [null, 8]}",
     "{name: a, type: MultiHeadAttention, num_heads: 2, key_dim: 4, in: {query: x, value: x}}",
     {"max_activation_bytes": 1 << 20}, None),
    ("attention_scores", "{q: [3000, 4], v: [3000, 4]}", "{name: a, type: Attention, in: [q, v]}",
     {"max_activation_bytes": 16 << 20}, "Attention's attention scores (3,000 x 3,000)"),
    ("additive_terms", "{q: [300, 64], v: [300, 64]}", "{name: a, type: AdditiveAttention, in: [q, v]}",
     {"max_activation_bytes": 16 << 20}, "additive attention terms (300 x 300 x 64)"),
    ("gqa_scores", "{x: [2000, 8]}",
     "{name: a, type: GroupQueryAttention, head_dim: 4, num_query_heads: 8, num_key_value_heads: 2, in: {query: x, value: x}}",
     {"max_activation_bytes": 64 << 20}, "attention scores (8 heads x 2,000 x 2,000)"),
    ("batch_multiplies", "{x: [1000]}", "{name: d, type: Dense, units: 2000}",
     {"max_activation_bytes": 1 << 20, "batch": 256}, "node outputs reach 2 MiB for a batch of 256"),
    ("params_as_given", "{x: [100]}", "{name: d, type: Dense, units: 100}",
     {"max_params": 1000}, "over the budget of 1,000 (as given; raise it with --max-params"),
    ("orthogonal_qr", "{x: [5000]}", "{name: d, type: Dense, units: 5000, kernel_initializer: {type: Orthogonal}}",
     {}, "the Orthogonal initializer of weight 'kernel' (5000, 5000) needs a QR decomposition of a 5,000 x 5,000"),
    ("orthogonal_bound_lowered", "{x: [64]}", "{name: d, type: Dense, units: 64, kernel_initializer: {type: Orthogonal}}",
     {"max_init_work": 1000}, "node 'd': the Orthogonal initializer"),
    ("orthogonal_small_ok", "{x: [256]}", "{name: d, type: Dense, units: 256, kernel_initializer: {type: Orthogonal}}",
     {}, None),
    ("lstm_default_recurrent_orthogonal", "{x: [4, 8]}", "{name: r, type: LSTM, units: 3000}",
     {"max_params": 10**9}, "the Orthogonal initializer of weight 'recurrent_kernel' (3000, 12000)"),
]


@pytest.mark.parametrize("inputs, node, kwargs, fragment", [c[1:] for c in BUDGET_CASES], ids=[c[0] for c in BUDGET_CASES])
def test_budget_prices_before_allocating(keras, inputs, node, kwargs, fragment):
    import time

    spec = netspec.load(f"netspec: 1\nname: b\ninputs: {inputs}\nnodes:\n  - {node}\n")
    start = time.perf_counter()
    if fragment is None:
        spec.check(Budget(**kwargs))
        return
    with pytest.raises(netspec.NetspecError) as info:
        spec.check(Budget(**kwargs))
    assert fragment in info.value.message, info.value.message
    assert info.value.location is not None and info.value.location.line == 5
    assert time.perf_counter() - start < 10  # refused from shapes, not after the work


def test_budget_defaults_come_from_the_machine(monkeypatch):
    monkeypatch.setattr(nb, "_physical", lambda: 24 << 30)
    monkeypatch.setattr(nb, "_address_limit", lambda: None)
    monkeypatch.setattr(nb, "_cgroup_limit", lambda: None)
    assert str(nb.machine_memory()) == "24.0 GiB of memory"
    monkeypatch.setattr(nb, "_address_limit", lambda: 4 << 30)
    assert str(nb.machine_memory()) == "4.0 GiB of address space (ulimit -v)"
    mem = nb.machine_memory()
    assert Budget.max_params <= nb.MAX_DEFAULT_PARAMS
    assert DEFAULT_BUDGET is nb.DEFAULT_BUDGET
    # weights, gradients and two Adam slots of float32 in half of memory
    assert DEFAULT_BUDGET.max_params * nb.BYTES_PER_PARAM <= DEFAULT_BUDGET.memory.bytes // 2
    assert "from " in DEFAULT_BUDGET.params_note() and "--max-params" in DEFAULT_BUDGET.params_note()
    assert mem.bytes == 4 << 30
    monkeypatch.setattr(nb, "_cgroup_limit", lambda: 3 << 30)  # a container limited to 3 GiB
    assert str(nb.machine_memory()) == "3.0 GiB of memory of this container (cgroup limit)"
    assert nb.headroom().bytes <= (3 << 30) // 2


CGROUP_CASES = [
    # /proc/self/cgroup, files under the mount, limit
    ("0::/user.slice/app\n", {"user.slice/app/memory.max": "8589934592\n"}, 8 << 30),  # v2
    ("0::/\n", {"memory.max": "max\n"}, None),  # v2, unlimited
    ("0::/docker/abc\n", {"memory.max": "2147483648\n"}, 2 << 30),  # v2, a container sees its group at the root
    ("4:memory:/process_api/x\n0::/\n", {"memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n"},
     None),  # v1, "no limit" is ~2**63
    ("4:memory:/docker/x\n", {"memory/memory.limit_in_bytes": "1073741824\n"}, 1 << 30),  # v1 in a container
    ("4:memory:/x\n", {}, None),  # nothing readable
]


@pytest.mark.parametrize("proc, files, limit", CGROUP_CASES)
def test_cgroup_limit_v1_and_v2(tmp_path, monkeypatch, proc, files, limit):
    import builtins

    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: (real_open(tmp_path / "proc", *a, **k)
                                                                 if path == "/proc/self/cgroup" else real_open(path, *a, **k)))
    (tmp_path / "proc").write_text(proc)
    assert nb._cgroup_limit(str(tmp_path)) == limit


FEED_CASES = [
    # shape, batch, fed dims
    ((None, 5), 3, (3, 8, 5)),
    ((None, None, 3), None, (8, 8, 3)),
    ((), 7, (7,)),
]


@pytest.mark.parametrize("shape, batch, fed", FEED_CASES, ids=[str(c[0]) for c in FEED_CASES])
def test_feed_dims_are_what_the_gate_generates(shape, batch, fed):
    from netspec.export import quantize

    assert nb.feed_dims(shape, batch) == fed
    if batch is not None:
        x = quantize.generate([quantize.InputInfo("x", shape, "float32")], batch, 0)
        assert x["x"].shape == fed


def _fake(name: str, **attrs):
    return type(name, (), attrs)()


INTERMEDIATE_CASES = [
    # layer, call (name, shape without batch), elements per sample
    (_fake("MultiHeadAttention", num_heads=4), [("query", (10, 8)), ("value", (20, 8))], 4 * 10 * 20),
    (_fake("MultiHeadAttention", num_heads=2), [("query", (None, 8)), ("value", (None, 8))], 2 * 8 * 8),
    (_fake("MultiHeadAttention", num_heads=1), [("query", (3, 4, 8)), ("value", (5, 6, 8))], 12 * 30),
    (_fake("GroupedQueryAttention", num_query_heads=6), [("query", (10, 8)), ("value", (7, 8))], 6 * 70),
    (_fake("Attention"), [("0", (10, 4)), ("1", (30, 4))], 300),
    (_fake("AdditiveAttention"), [("0", (10, 4)), ("1", (30, 4))], 1200),
    (_fake("Dense"), [("0", (10,))], None),
]


@pytest.mark.parametrize("layer, call, n", INTERMEDIATE_CASES, ids=lambda v: type(v).__name__ if not isinstance(v, (list, int)) else None)
def test_intermediate_table(layer, call, n):
    cost = nb.intermediate(layer, call)
    assert (cost[1] if cost else None) == n


INIT_CASES = [
    ("Orthogonal", (8000, 8000), 8000 ** 3),
    ("Orthogonal", (3, 3, 64, 128), 576 * 128 ** 2),
    ("Orthogonal", (8,), None),  # Keras refuses rank 1 itself
    ("GlorotUniform", (8000, 8000), None),  # linear: the parameter budget covers it
]


@pytest.mark.parametrize("cls, shape, work", INIT_CASES, ids=[f"{c[0]}{c[1]}" for c in INIT_CASES])
def test_initializer_work(cls, shape, work):
    cost = nb.init_work(_fake(cls), shape)
    assert (cost[1] if cost else None) == work


class ResourceExhaustedError(Exception):  # TensorFlow's, by name: the guard must not import TensorFlow
    pass


GUARD_CASES = [
    (MemoryError(), True),
    (ResourceExhaustedError("OOM when allocating tensor with shape[1000000,1000000]"), True),
    (RuntimeError("Unable to allocate 76.3 GiB for an array"), True),
    (ValueError("bad units"), False),
]


@pytest.mark.parametrize("error, caught", GUARD_CASES, ids=[type(c[0]).__name__ for c in GUARD_CASES])
def test_allocation_guard(error, caught):
    def fail(message):
        return netspec.NetspecError(message)

    with pytest.raises(netspec.NetspecError if caught else type(error)) as info:
        with nb.allocation_guard(fail, "building the model"):
            raise error
    if caught:
        assert "ran out of memory while building the model" in str(info.value)


def test_allocation_failure_while_building_is_located(keras, monkeypatch):
    def oom(self, *a, **k):
        raise MemoryError()

    monkeypatch.setattr(keras.layers.Dense, "build", oom)
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load("netspec: 1\nname: b\ninputs: {x: [4]}\nnodes:\n  - {name: d, type: Dense, units: 2}\n").build()
    assert "node 'd'" in info.value.message and "ran out of memory" in info.value.message
    assert info.value.location.line == 5
