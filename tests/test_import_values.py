"""netspec import writes the values a spec can hold: numpy arrays in configs, constraint axes, subscripts.

Each model is built here after a public Keras idiom, saved as a .keras file, imported with the CLI; the
written spec must load, build, and compute what the source computes (weights copied over by name).
What a spec cannot hold (an array too large, NaN, an array where a spec's argument takes one number)
stays a refusal that names the layer and the argument, and writes no file.
"""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.importing.args import normalize
from netspec.importing.values import MAX_ARRAY_ITEMS, index_text


def _import(keras, model, tmp_path, capsys) -> tuple[str, object]:
    """Save ``model``, import it with the CLI; returns the spec text and the built spec model."""
    path, out = tmp_path / "source.keras", tmp_path / "spec.yaml"
    model.save(path)
    assert main(["import", str(path), "-o", str(out)]) == 0, capsys.readouterr().err
    text = out.read_text()
    return text, netspec.load(out).build()


def _refused(keras, model, tmp_path, capsys) -> str:
    path, out = tmp_path / "source.keras", tmp_path / "spec.yaml"
    model.save(path)
    assert main(["import", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and not out.exists()
    return err


def _same_outputs(source, ours, data, copy_weights: bool = True) -> None:
    if copy_weights:
        for layer in source.layers:
            if layer.weights:
                ours.get_layer(layer.name).set_weights(layer.get_weights())
    np.testing.assert_allclose(ours.predict(data, verbose=0), source.predict(data, verbose=0), rtol=1e-6, atol=1e-6)


# -- constraint axes ----------------------------------------------------------------------------

CONSTRAINTS = [  # (id, constraint, text the spec holds); Keras's docstrings: axis=[0, 1, 2] for a Conv2D kernel
    ("maxnorm", lambda c: c.MaxNorm(3, axis=[0, 1, 2]), "{type: MaxNorm, max_value: 3, axis: [0, 1, 2]}"),
    ("unitnorm", lambda c: c.UnitNorm(axis=[0, 1]), "{type: UnitNorm, axis: [0, 1]}"),
    ("minmaxnorm", lambda c: c.MinMaxNorm(0.5, 2.0, axis=[0, 1, 2]),
     "{type: MinMaxNorm, min_value: 0.5, max_value: 2.0, axis: [0, 1, 2]}"),
]


@pytest.mark.parametrize("make, written", [c[1:] for c in CONSTRAINTS], ids=[c[0] for c in CONSTRAINTS])
def test_a_constraint_over_several_axes_imports(keras, tmp_path, capsys, make, written):
    x = keras.Input((8, 8, 3), name="x")
    source = keras.Model(x, keras.layers.Conv2D(4, 3, kernel_constraint=make(keras.constraints), name="conv")(x))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert written in text
    theirs, mine = source.get_layer("conv").kernel_constraint, ours.get_layer("conv").kernel_constraint
    assert type(mine) is type(theirs) and normalize(mine.get_config()) == normalize(theirs.get_config())
    kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 4)).astype("float32") * 3
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mine(kernel)), keras.ops.convert_to_numpy(theirs(kernel)),
                               rtol=1e-6)
    _same_outputs(source, ours, np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32"))


# -- numpy arrays in configs ----------------------------------------------------------------------


def test_a_one_number_array_constant_is_that_number(keras, tmp_path, capsys):
    """keras.io "Classification on imbalanced data": the output bias starts at log(pos/neg), given as
    Constant(np.log([pos / neg]))."""
    x = keras.Input((30,), name="x")
    bias = keras.initializers.Constant(np.log([492 / 284315]))
    source = keras.Model(x, keras.layers.Dense(1, activation="sigmoid", bias_initializer=bias, name="out")(x))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert f"bias_initializer: {{type: Constant, value: {float(np.log(492 / 284315))!r}}}" in text
    np.testing.assert_allclose(ours.get_layer("out").get_weights()[1], np.log([492 / 284315]), rtol=1e-6)
    ours.get_layer("out").set_weights([source.get_layer("out").get_weights()[0], ours.get_layer("out").get_weights()[1]])
    _same_outputs(source, ours, np.random.default_rng(0).normal(size=(4, 30)).astype("float32"), copy_weights=False)


ARRAYS = [  # (id, layer, what the spec holds)
    ("rescaling", lambda L: L.Rescaling(np.array([1 / 255, 2 / 255, 3 / 255], "float32"), name="v"),
     "scale: [0.003921568859368563, 0.007843137718737125, 0.0117647061124444]"),
    ("offset", lambda L: L.Rescaling(0.5, offset=np.array([-1.0, 0.0, 1.0]), name="v"), "offset: [-1.0, 0.0, 1.0]"),
    ("one number", lambda L: L.Rescaling(np.array([2.0]), name="v"), "scale: 2.0"),
    ("int array", lambda L: L.Rescaling(np.array([1, 2, 3]), name="v"), "scale: [1, 2, 3]"),
    ("normalization", lambda L: L.Normalization(mean=np.array([1.0, 2.0, 3.0]), variance=np.array([1.0, 4.0, 9.0]),
                                                name="v"), "mean: [1.0, 2.0, 3.0], variance: [1.0, 4.0, 9.0]"),
]


@pytest.mark.parametrize("make, written", [a[1:] for a in ARRAYS], ids=[a[0] for a in ARRAYS])
def test_a_numpy_array_argument_is_written_as_a_list(keras, tmp_path, capsys, make, written):
    im = keras.Input((4, 4, 3), name="img")
    source = keras.Model(im, make(keras.layers)(im))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert written in text
    _same_outputs(source, ours, np.random.default_rng(0).uniform(0, 255, size=(2, 4, 4, 3)).astype("float32"))


def test_a_one_number_array_stays_a_list_where_only_a_list_is_taken(keras, tmp_path, capsys):
    """Discretization(bin_boundaries=np.array([0.0])): the one number is written as [0.0], which the schema
    takes (it was written 0.0 and refused, with 'report this as a bug')."""
    x = keras.Input((3,), name="x")
    source = keras.Model(x, keras.layers.Discretization(bin_boundaries=np.array([0.0]), name="disc")(x))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert "bin_boundaries: [0.0]" in text
    sample = np.array([[-1.0, 0.5, 2.0]], "float32")
    np.testing.assert_array_equal(np.asarray(ours(sample)), [[0, 1, 1]])


REFUSED = [  # (id, layer, message): the layer and the argument named
    ("too many", lambda k: k.layers.Rescaling(np.ones(MAX_ARRAY_ITEMS + 1), name="big"),
     f"layer 'big': scale is an array of {MAX_ARRAY_ITEMS + 1:,} numbers; netspec import writes arrays of at most"),
    ("nan", lambda k: k.layers.Rescaling(1.0, offset=np.array([1.0, np.nan, 1.0]), name="bad"),
     "layer 'bad': offset is an array holding nan; a spec writes finite numbers only"),
    ("inf", lambda k: k.layers.Dense(2, bias_initializer=k.initializers.Constant(np.array([np.inf, 1.0])), name="inf"),
     "layer 'inf': bias_initializer.config.value is an array holding inf; a spec writes finite numbers only"),
    ("array constant", lambda k: k.layers.Dense(4, bias_initializer=k.initializers.Constant(np.eye(2).ravel()),
                                                name="tnet"),  # PointNet's T-net: Keras documents scalars only
     "layer 'tnet': bias_initializer: initializer Constant has value=[1.0, 0.0, 0.0, 1.0], an array of 4; a spec's "
     "Constant takes one number for value"),
]


@pytest.mark.parametrize("make, message", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_an_array_a_spec_cannot_hold_is_a_located_refusal(keras, tmp_path, capsys, make, message):
    x = keras.Input((3,), name="x")
    assert message in _refused(keras, keras.Model(x, make(keras)(x)), tmp_path, capsys)


# -- subscripts (keras.ops GetItem) ---------------------------------------------------------------

SUBSCRIPTS = [  # (id, index, expression text): a ViT's class token, the last feature, reversed time
    ("cls token", lambda x: x[:, 0], "x[:, 0]"),
    ("ellipsis", lambda x: x[..., 0], "x[..., 0]"),
    ("reversed", lambda x: x[:, ::-1], "x[:, ::-1]"),
    ("range and new axis", lambda x: x[:, 1:3, None], "x[:, 1:3, None]"),
    ("last step", lambda x: x[:, -1, :], "x[:, -1, :]"),
]


@pytest.mark.parametrize("index, expr", [s[1:] for s in SUBSCRIPTS], ids=[s[0] for s in SUBSCRIPTS])
def test_a_subscript_becomes_an_expression(keras, tmp_path, capsys, index, expr):
    x = keras.Input((5, 8), name="tokens")
    source = keras.Model(x, keras.layers.Dense(2, name="head")(index(x)))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert f'expr: "{expr}"' in text
    _same_outputs(source, ours, np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32"))


def test_a_one_number_tensor_in_an_operation_is_a_literal(keras, tmp_path, capsys):
    x = keras.Input((4,), name="x")
    source = keras.Model(x, keras.layers.Dense(2, name="head")(x * keras.ops.convert_to_tensor(2.5)))
    text, ours = _import(keras, source, tmp_path, capsys)
    assert 'expr: "x * 2.5"' in text
    _same_outputs(source, ours, np.random.default_rng(0).normal(size=(3, 4)).astype("float32"))


@pytest.mark.parametrize("key, text", [
    ([{"class_name": "__slice__", "config": {"start": None, "stop": None, "step": None}}, 0], ":, 0"),
    ({"class_name": "__slice__", "config": {"start": 1, "stop": -1, "step": 2}}, "1:-1:2"),
    ([{"class_name": "__ellipsis__", "config": {}}, None], "..., None"),
    (3, "3"),
    ([], None),                                               # x[()]: nothing to write
    ([[0, 2]], None),                                         # a list of indices (Keras refuses it too)
    ([True], None),                                           # a boolean is not an index
    ([{"class_name": "__keras_tensor__", "config": {}}], None),  # an index computed by the model
    ([2**40], None),                                          # past the expression checker's integers
    ({"class_name": "__slice__", "config": {"start": 1.5, "stop": None, "step": None}}, None),
])
def test_index_text(key, text):
    assert index_text(key) == text


@pytest.mark.parametrize("op", ["x * x", "x + x"])
def test_an_operation_reading_its_input_twice_imports(keras, tmp_path, capsys, op):
    """x * x names x once in its expression; the layer check compared [x, x] with [x] and refused it."""
    x = keras.Input((3,), name="x")
    source = keras.Model(x, x * x if op == "x * x" else x + x)
    text, ours = _import(keras, source, tmp_path, capsys)
    assert f'expr: "{op}"' in text or f"expr: {op}" in text, text
    _same_outputs(source, ours, np.array([[-2.0, 0.5, 3.0]], "float32"))


@pytest.mark.parametrize("make,expr", [
    (lambda x, y: 2.0 ** x, "ops.power(2.0, x)"),  # '**' takes number exponents only
    (lambda x, y: x ** y, "ops.power(a, b)"),
    (lambda x, y: x ** 100.0, "ops.power(x, 100.0)"),  # over the 64 '**' takes
    (lambda x, y: x ** 2, "x ** 2"),
])
def test_powers_import_as_the_expression_language_takes_them(keras, tmp_path, capsys, make, expr):
    x, y = keras.Input((3,), name="x"), keras.Input((3,), name="y")
    out = make(x, y)
    inputs = [x, y] if expr == "ops.power(a, b)" else x
    source = keras.Model(inputs, out)
    text, ours = _import(keras, source, tmp_path, capsys)
    assert f'expr: "{expr}"' in text, text
    data = np.array([[0.5, 1.0, 1.5]], "float32")
    _same_outputs(source, ours, [data, data + 1.0] if isinstance(inputs, list) else data)


def test_a_non_finite_constant_is_refused_at_its_operation(keras, tmp_path, capsys):
    x = keras.Input((3,), name="x")
    err = _refused(keras, keras.Model(x, x + float("inf")), tmp_path, capsys)
    assert "(keras.ops Add) has the constant inf; an expression holds finite numbers only" in err, err
