"""An import is proven by its numbers too: the written spec, given the source's weights, computes the
source's outputs on a seeded sample (netspec.importing.numbers), or nothing is written.

The layer-by-layer comparison passed two models whose specs computed something else (a red team's):
a nested model applied twice in a row written as one call, and a nested model's dict outputs listed in
the order they were written rather than Keras's. Both are now refused, with what differs.
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


def _swapped(keras):
    inner_in = keras.Input((3,), name="ii")
    inner = keras.Model(inner_in, {"b": keras.layers.Dense(3, name="ib")(inner_in),
                                   "a": keras.layers.Dense(3, name="ia")(inner_in)}, name="inner")
    x = keras.Input((3,), name="x")
    o = inner(x)
    return keras.Model(x, keras.layers.Add(name="sum")([o["a"], keras.layers.Dense(3, name="scale")(o["b"])]))


@pytest.mark.parametrize("make", [_twice, _swapped], ids=["nested-model-twice", "nested-dict-outputs"])
def test_an_import_computing_something_else_is_refused(keras, tmp_path, capsys, make):
    keras.utils.set_random_seed(0)
    rc, text, written = _run_import(make(keras), tmp_path, capsys)
    assert rc == 1 and not written, text
    assert "the imported spec does not rebuild the model" in text and "Traceback" not in text


def test_models_too_large_to_run_twice_say_so(keras, tmp_path, capsys, monkeypatch):
    from netspec.importing import numbers

    monkeypatch.setattr(numbers, "MAX_PARAMS", 10)
    x = keras.Input((4,), name="x")
    rc, text, _ = _run_import(keras.Model(x, keras.layers.Dense(3, name="out")(x)), tmp_path, capsys)
    assert rc == 0 and "outputs not run (15 parameters, over 10)" in text
