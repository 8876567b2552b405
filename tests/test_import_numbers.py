"""An import is proven by its numbers too: the written spec, given the source's weights, computes the
source's outputs on a seeded sample (netspec.importing.numbers), or nothing is written.

The layer-by-layer comparison passed two models whose specs computed something else (a red team's):
a nested model applied twice in a row written as one call, and a nested model's dict outputs listed in
the order they were written rather than Keras's. The numbers check refused both; both now import right
(the call an output names is counted as Keras's callers count it, a nested model's outputs come in
keras.tree order), and a spec that computes something else is still refused by its numbers.
"""

from __future__ import annotations

import pytest

from netspec.cli import main


def _run_import(model, tmp_path, capsys) -> tuple[int, str, bool]:
    path, out = tmp_path / "source.keras", tmp_path / "spec.yaml"
    model.save(path)
    rc = main(["import", str(path), "-o", str(out)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err, out.exists()


def test_a_correct_import_says_its_outputs_match(keras, tmp_path, capsys):
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="h")(x)
    model = keras.Model(x, keras.layers.Dense(3, name="out")(keras.layers.Dropout(0.5)(h)))
    rc, text, written = _run_import(model, tmp_path, capsys)
    assert rc == 0 and written
    assert "same outputs on a random sample with the source's weights (max |error| 0.0e+00)" in text


def _twice(keras):
    inner_in = keras.Input((3,), name="ii")
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="d")(inner_in), name="inner")
    x = keras.Input((3,), name="x")
    return keras.Model(x, inner(inner(x)))


def _twice_weightless(keras):
    """A nested model holding only an operation (x * 2.0), applied three times: each call is an expression."""
    inner_in = keras.Input((3,), name="ii")
    inner = keras.Model(inner_in, inner_in * 2.0, name="inner")
    x = keras.Input((3,), name="x")
    return keras.Model(x, inner(inner(inner(x))))


def _swapped(keras):
    inner_in = keras.Input((3,), name="ii")
    inner = keras.Model(inner_in, {"b": keras.layers.Dense(3, name="ib")(inner_in),
                                   "a": keras.layers.Dense(3, name="ia")(inner_in)}, name="inner")
    x = keras.Input((3,), name="x")
    o = inner(x)
    return keras.Model(x, keras.layers.Add(name="sum")([o["a"], keras.layers.Dense(3, name="scale")(o["b"])]))


def _two_inputs(keras):
    """A nested model of two inputs: its block's first node reads the first, and must say so (in: p)."""
    p, q = keras.Input((3,), name="p"), keras.Input((3,), name="q")
    inner = keras.Model({"p": p, "q": q}, [keras.layers.Dense(2, name="ia")(p), keras.layers.Dense(2, name="ib")(q)],
                        name="inner")
    x = keras.Input((3,), name="x")
    o = inner({"q": keras.layers.Dense(3, name="pre")(x), "p": x})
    return keras.Model(x, keras.layers.Concatenate(name="cat")(o))


@pytest.mark.parametrize("make", [_twice, _twice_weightless, _swapped, _two_inputs],
                         ids=["nested-model-twice", "nested-weightless-model-thrice", "nested-dict-outputs",
                              "nested-two-inputs"])
def test_nested_models_import_computing_what_the_source_does(keras, tmp_path, capsys, make):
    import numpy as np

    import netspec

    keras.utils.set_random_seed(0)
    source = make(keras)
    rc, text, written = _run_import(source, tmp_path, capsys)
    assert rc == 0 and written, text
    assert "same outputs on a random sample with the source's weights" in text
    ours = netspec.load(tmp_path / "spec.yaml").build()
    def key(w):  # layer/variable
        return "/".join(w.path.split("/")[-2:])

    by_name = {key(w): w for w in ours.weights}
    for w in source.weights:  # the spec's layers of the nested model are <model>_<layer>: inner_d for inner's d
        by_name.get("inner_" + key(w), by_name.get(key(w))).assign(w)
    x = np.random.default_rng(3).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(source(x)), rtol=1e-6, atol=1e-6)


def test_a_spec_computing_something_else_is_refused_by_its_numbers(keras, tmp_path):
    """The layer-by-layer comparison does not read an expression's constants: the numbers do."""
    from dataclasses import replace

    from netspec.importing.check import compare
    from netspec.importing.importer import import_model

    source = _twice_weightless(keras)
    imported = import_model(source)
    assert imported.text.count('"x * 2.0"') == 3
    other = replace(imported, text=imported.text.replace('"x * 2.0"', '"x * 3.0"', 1), spec=None)
    result = compare(source, other)
    assert not result.ok
    assert "with the source's weights, output 0 differs on the same input by" in result.summary()


def test_models_too_large_to_run_twice_say_so(keras, tmp_path, capsys, monkeypatch):
    from netspec.importing import numbers

    monkeypatch.setattr(numbers, "MAX_PARAMS", 10)
    x = keras.Input((4,), name="x")
    rc, text, _ = _run_import(keras.Model(x, keras.layers.Dense(3, name="out")(x)), tmp_path, capsys)
    assert rc == 0 and "outputs not run (15 parameters, over 10)" in text
