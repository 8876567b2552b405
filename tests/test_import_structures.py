"""netspec import of models whose inputs or outputs are structures: nested inputs, dict outputs.

A spec's inputs are a flat mapping by name: a model built on nested inputs (a dict of lists, a list
of dicts) imports as their leaves, named after their Input layers, in ``keras.tree.flatten`` order,
and the built spec takes them as a dict by those names. Dict outputs keep their keys as the spec's
output names (``outputs: {first: head}``); a node named like a key (other than the output's own
layer) is renamed, never the output. Each model is built here, saved, imported with the CLI, built
from the written spec with the source's weights, and compared output by output, by name.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.errors import ModelImportError
from netspec.importing.values import history_list

SIZES = {"a": 3, "b": 2, "c": 4}


def _import(model, tmp_path, capsys):
    """Save ``model``, import it with the CLI; returns the spec text (modeline dropped) and the built model."""
    path, out = tmp_path / "source.keras", tmp_path / "spec.yaml"
    model.save(path)
    assert main(["import", str(path), "-o", str(out)]) == 0, capsys.readouterr().err
    assert "same architecture as the source" in capsys.readouterr().out
    text = "\n".join(line for line in out.read_text().splitlines() if not line.startswith("#"))
    return text, netspec.load(out).build()


def _refused(model, tmp_path, capsys) -> str:
    path, out = tmp_path / "source.keras", tmp_path / "spec.yaml"
    model.save(path)
    assert main(["import", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err and not out.exists()
    return err


def _copy_weights(source, ours, renamed: dict[str, str] | None = None) -> None:
    """The source's weights into the spec's model, layer by layer (``renamed``: source name -> node)."""
    for layer in source.layers:
        if layer.weights:
            ours.get_layer((renamed or {}).get(layer.name, layer.name)).set_weights(layer.get_weights())


# -- nested inputs ------------------------------------------------------------------------------

INPUT_STRUCTURES = [  # (id, structure of the Inputs a, b, c; the red team's two shapes first)
    ("dict_of_lists", lambda a, b, c: {"g": [a, b], "c": c}),
    ("list_of_dicts", lambda a, b, c: [{"p": a}, {"q": b}, {"r": c}]),
    ("list_of_lists", lambda a, b, c: [[b, a], c]),
    ("dict_in_dict", lambda a, b, c: {"z": {"y": [c, {"x": a}]}, "w": b}),
]


def test_what_import_changed_is_printed_as_a_note(keras, tmp_path, capsys):
    """Nested inputs become flat inputs: the user must feed them by name, so import says so."""
    L = keras.layers
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    source = keras.Model({"g": [a, b]}, L.Dense(2, name="out")(L.Concatenate(name="cat")([a, b])))
    path = tmp_path / "source.keras"
    source.save(path)
    assert main(["import", str(path), "-o", str(tmp_path / "spec.yaml")]) == 0
    assert ("\nnote: the model's inputs are a nested structure; the spec takes its leaves as inputs named after "
            "their Input layers (feed them as a dict by those names)\n") in capsys.readouterr().out
    assert main(["import", str(path), "-o", str(tmp_path / "spec2.yaml"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == [
        "the model's inputs are a nested structure; the spec takes its leaves as inputs named after their Input "
        "layers (feed them as a dict by those names)"]


def test_a_dict_of_inputs_names_the_spec_inputs_by_its_keys(keras, tmp_path, capsys):
    """keras.Model({"b": a, "a": b}) is fed {"b": ...} into the Input named a: the spec's inputs are named by
    the keys, so the same dict feeds both the same way (named by Input layer, they were crossed)."""
    L = keras.layers
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    with pytest.warns(UserWarning, match="all keys in the dict must match"):  # Keras's advice to the author
        source = keras.Model({"b": a, "a": b}, L.Subtract(name="sub")([a, b]))
    path = tmp_path / "source.keras"
    source.save(path)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert main(["import", str(path), "-o", str(tmp_path / "spec.yaml")]) == 0
    assert not [w for w in shown if "all keys in the dict must match" in str(w.message)]  # not on every load
    assert "note: the model's input dict has keys other than its Input layers' names" in capsys.readouterr().out
    feed = {"a": np.ones((2, 3), "float32"), "b": np.zeros((2, 3), "float32")}
    ours = netspec.load(tmp_path / "spec.yaml").build()
    np.testing.assert_array_equal(np.asarray(ours(feed)), np.asarray(source(feed)))
    assert float(np.asarray(source(feed))[0, 0]) == -1.0  # key "a" feeds Input b


@pytest.mark.parametrize("structure", [c[1] for c in INPUT_STRUCTURES], ids=[c[0] for c in INPUT_STRUCTURES])
def test_nested_inputs_import_as_flat_inputs_by_name(keras, tmp_path, capsys, structure):
    L = keras.layers
    a, b, c = (keras.Input((SIZES[n],), name=n) for n in "abc")
    joined = L.Concatenate(name="cat")([L.Dense(5, name="da")(a), b, c])
    source = keras.Model(structure(a, b, c), L.Dense(2, name="out")(joined))
    text, ours = _import(source, tmp_path, capsys)
    flat = [t.name for t in source.inputs]  # keras.tree.flatten order
    assert [t.name for t in ours.inputs] == flat
    assert "inputs:\n" + "".join(f"  {n}: {{shape: [{SIZES[n]}]}}\n" for n in flat) in text
    _copy_weights(source, ours)
    rng = np.random.default_rng(0)
    data = {n: rng.normal(size=(4, s)).astype("float32") for n, s in SIZES.items()}
    nested = keras.tree.map_structure(lambda t: data[t.name], structure(a, b, c))
    expected = source.predict(nested, verbose=0)
    np.testing.assert_allclose(ours.predict(data, verbose=0), expected, rtol=1e-6, atol=1e-6)  # by name
    np.testing.assert_allclose(ours.predict([data[n] for n in flat], verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_a_nested_model_called_with_a_dict_of_its_input_keys_imports(keras, tmp_path, capsys):
    L = keras.layers
    p, q = keras.Input((3,), name="p"), keras.Input((3,), name="q")
    inner = keras.Model({"q": q, "p": p}, L.Subtract(name="sub")([p, q]), name="inner")
    x1, x2 = keras.Input((3,), name="x1"), keras.Input((3,), name="x2")
    source = keras.Model([x1, x2], L.Dense(2, name="out")(inner({"p": x1, "q": x2})))
    text, ours = _import(source, tmp_path, capsys)
    assert "- {name: inner, block: inner, in: [x1, x2]}" in text and "inputs: [p, q]" in text
    _copy_weights(source, ours)
    rng = np.random.default_rng(1)
    data = [rng.normal(size=(4, 3)).astype("float32") for _ in range(2)]
    np.testing.assert_allclose(ours.predict(data, verbose=0), source.predict(data, verbose=0), rtol=1e-6, atol=1e-6)


def test_a_nested_model_called_with_another_dict_is_refused(keras, tmp_path, capsys):
    L = keras.layers
    p, q = keras.Input((3,), name="p"), keras.Input((3,), name="q")
    inner = keras.Model([p, q], L.Add(name="add")([p, q]), name="inner")
    x1, x2 = keras.Input((3,), name="x1"), keras.Input((3,), name="x2")
    source = keras.Model([x1, x2], inner({"p": x1, "q": x2}))
    err = _refused(source, tmp_path, capsys)
    assert "the nested model 'inner' is called with a dict of tensors (keys ['p', 'q']) that is not the " \
           "structure of its inputs" in err


@pytest.mark.parametrize("value, leaves", [  # Keras's serialized structures: [layer, call, tensor] leaves
    (["a", 0, 0], [["a", 0, 0]]),
    ([["a", 0, 0], ["b", 1, 0]], [["a", 0, 0], ["b", 1, 0]]),
    ({"z": ["a", 0, 0], "y": [["b", 0, 0], {"x": ["c", 0, 1]}]}, [["b", 0, 0], ["c", 0, 1], ["a", 0, 0]]),
])
def test_history_list_flattens_as_keras_tree_does(value, leaves):
    assert history_list(value, sort_keys=True) == leaves


@pytest.mark.parametrize("value", [{"g": [["a", 0, 0], 7]}, ["a", 0, "0"], [None]], ids=["number", "index", "none"])
def test_a_stray_value_in_the_structure_is_a_refusal(value):
    with pytest.raises(ModelImportError, match=r"input or output structure holds .*\[layer name, call index, tensor"):
        history_list(value)


# -- dict outputs -------------------------------------------------------------------------------

DICT_OUTPUTS = [  # (id, {key: (layer name, units)}, hidden layer name, the spec's nodes and outputs)
    ("keys_differ", {"first": ("head", 2), "second": ("tail", 3)}, "hidden",
     ["hidden", "head", "tail"], "outputs: {first: head, second: tail}"),
    ("keys_cross_layer_names", {"zz": ("aa", 2), "aa": ("zz", 4)}, "hidden",
     ["hidden", "aa_1", "zz_1"], "outputs: {zz: aa_1, aa: zz_1}"),
    ("keys_cross_prefixed", {"zz": ("aa_head", 2), "aa": ("zz_head", 4)}, "hidden",
     ["hidden", "aa_head", "zz_head"], "outputs: {zz: aa_head, aa: zz_head}"),
    ("key_names_the_hidden_layer", {"hidden": ("out", 2), "out": ("o2", 1)}, "hidden",
     ["hidden_1", "out_1", "o2"], "outputs: {hidden: out_1, out: o2}"),
    ("keys_are_their_layers", {"head": ("head", 2), "tail": ("tail", 3)}, "hidden",
     ["hidden", "head", "tail"], "outputs: {head: head, tail: tail}"),
]


@pytest.mark.parametrize("heads, hidden, nodes, written", [c[1:] for c in DICT_OUTPUTS], ids=[c[0] for c in DICT_OUTPUTS])
def test_dict_outputs_keep_their_keys(keras, tmp_path, capsys, heads, hidden, nodes, written):
    L = keras.layers
    x = keras.Input((3,), name="x")
    h = L.Dense(4, activation="relu", name=hidden)(x)
    source = keras.Model(x, {key: L.Dense(units, name=name)(h) for key, (name, units) in heads.items()})
    text, ours = _import(source, tmp_path, capsys)
    assert written in text
    assert [line.split(",")[0].split("name: ")[1] for line in text.splitlines() if "{name: " in line] == nodes
    _copy_weights(source, ours, dict(zip([hidden, *(name for name, _ in heads.values())], nodes)))
    data = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    expected, got = source.predict(data, verbose=0), ours.predict(data, verbose=0)
    assert sorted(got) == sorted(heads)
    for key in heads:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)


def test_a_key_named_like_a_folded_block_instance_stays_an_output(keras, tmp_path, capsys):
    L = keras.layers
    x = keras.Input((4,), name="x")
    h = x
    for i in (1, 2, 3):
        h = L.LayerNormalization(name=f"b{i}_norm")(L.Dense(4, name=f"b{i}_dense")(h))
    source = keras.Model(x, {"b2": L.Dense(2, name="head")(h), "tail": L.Dense(1, name="tail")(h)})
    text, ours = _import(source, tmp_path, capsys)
    assert "outputs: {b2: head, tail: tail}" in text and "name: b2," not in text
    _copy_weights(source, ours)
    data = np.random.default_rng(3).normal(size=(4, 4)).astype("float32")
    expected, got = source.predict(data, verbose=0), ours.predict(data, verbose=0)
    for key in ("b2", "tail"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5)


def test_an_output_key_named_like_an_input_is_refused(keras, tmp_path, capsys):
    x = keras.Input((3,), name="x")
    source = keras.Model(x, {"x": keras.layers.Dense(2, name="d")(x)})
    err = _refused(source, tmp_path, capsys)
    assert "the model's output 'x' is named like its input 'x'" in err
    assert "hint: rename the Input or the output's key in the source model" in err
