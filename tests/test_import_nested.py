"""Nested models called once import as blocks used once, and round-trip.

A functional model or ``Sequential`` called once inside another becomes a ``blocks:`` entry named
after it and one instance in ``nodes:``; the spec builds the same model (parameters, weight shapes
in order, outputs under the source's weights), and import -> build -> import gives the same text,
both for the model in memory and for the ``.keras`` file netspec writes. netspec builds the block
flat, so the second import reads where it was from the spec the model carries, only once that spec
is proved to build the model: never from layer names (``conv1_*`` stays flat), never from a stamp
that was changed, describes another model, or names plugins (nothing runs).
"""

from __future__ import annotations

import json

import pytest

import netspec
from netspec.build.saving import save_model, stamp_keras
from netspec.contract import spec_stamp
from netspec.importing.importer import import_model, load_keras_file
from netspec.spec import BUILT_FROM

from test_import_roundtrip import assert_rebuilds


# -- the models (tiny, after the public Keras guides) -------------------------------------------------


def nested_functional(keras):
    """keras.io functional API guide, "All models are callable": an encoder and a decoder model."""
    L = keras.layers
    e_in = keras.Input((6,), name="e_in")
    encoder = keras.Model(e_in, L.Dense(2, name="code")(L.Dense(4, activation="relu", name="hidden")(e_in)),
                          name="encoder")
    d_in = keras.Input((2,), name="d_in")
    decoder = keras.Model(d_in, L.Dense(6, name="recon")(L.Dense(4, activation="relu", name="expand")(d_in)),
                          name="decoder")
    x = keras.Input((6,), name="features")
    return keras.Model(x, decoder(encoder(x)), name="autoencoder")


def nested_sequential(keras):
    """keras.io transfer learning guide: a Sequential of augmentation layers, then a small head."""
    L = keras.layers
    augment = keras.Sequential([L.GaussianNoise(0.1, name="noise"), L.Dense(5, name="mix")], name="augment")
    x = keras.Input((5,), name="x")
    return keras.Model(x, L.Dense(1, name="out")(augment(x)), name="transfer")


def once_and_shared(keras):
    """keras.io Siamese network example: a shared tower model on both inputs, then a head model used once."""
    L = keras.layers
    t_in = keras.Input((6,), name="t_in")
    tower = keras.Model(t_in, L.Dense(3, name="embed")(L.Dense(5, activation="relu", name="hidden")(t_in)),
                        name="tower")
    head = keras.Sequential([L.Dense(4, activation="relu", name="fc"), L.Dense(1, activation="sigmoid", name="prob")],
                            name="head")
    a, b = keras.Input((6,), name="left"), keras.Input((6,), name="right")
    return keras.Model([a, b], head(L.Subtract(name="diff")([tower(a), tower(b)])), name="siamese")


def sequential_in_sequential(keras):
    """keras.io "The Sequential model": a Sequential holding another Sequential as a layer."""
    L = keras.layers
    inner = keras.Sequential([L.Dense(4, activation="relu", name="a"), L.Dense(4, name="b")], name="inner")
    return keras.Sequential([keras.Input((3,)), inner, L.Dense(2, name="out")], name="outer")


def nested_twice_deep(keras):
    """A model called once whose own layers include a model called once: the outer one is the block."""
    L = keras.layers
    i_in = keras.Input((4,), name="i_in")
    inner = keras.Model(i_in, L.Dense(4, name="d")(i_in), name="inner")
    o_in = keras.Input((4,), name="o_in")
    outer = keras.Model(o_in, L.Dense(2, name="top")(inner(o_in)), name="outer")
    x = keras.Input((4,), name="x")
    return keras.Model(x, outer(x), name="deep")


def two_input_nested(keras):
    """A nested model with two inputs: a block takes one input, so it stays inline."""
    L = keras.layers
    p, q = keras.Input((3,), name="p"), keras.Input((3,), name="q")
    pair = keras.Model([p, q], L.Dense(2, name="d")(L.Concatenate(name="cat")([p, q])), name="pair")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    return keras.Model([a, b], pair([a, b]), name="two")


CASES = [
    (nested_functional, ["blocks:\n  encoder:\n    nodes:\n      - {name: hidden, type: Dense, units: 4",
                         "  decoder:\n    nodes:\n", "nodes:\n  - {name: encoder, block: encoder}\n"
                         "  - {name: decoder, block: decoder}\noutputs: [decoder]"]),
    (nested_sequential, ["  augment:\n    nodes:\n      - {name: noise, type: GaussianNoise",
                         "  - {name: augment, block: augment}\n  - {name: out, type: Dense, units: 1}"]),
    (once_and_shared, ["  tower:\n    nodes:\n", "  head:\n    nodes:\n      - {name: fc, type: Dense",
                       "{name: tower, block: tower, in: left}", "{name: tower_1, share: tower, in: right}",
                       "{name: head, block: head}\noutputs: [head]"]),
    (sequential_in_sequential, ["  inner:\n    nodes:\n      - {name: a, type: Dense",
                                "  - {name: inner, block: inner}\n  - {name: out, type: Dense"]),
    (nested_twice_deep, ["  outer:\n    nodes:\n      - {name: inner_d, type: Dense, units: 4}\n"
                         "      - {name: top, type: Dense, units: 2}\n", "  - {name: outer, block: outer}"]),
    (two_input_nested, ["{name: pair_cat, type: Concatenate, in: [a, b]}", "{name: pair_d, type: Dense"]),
]
IDS = [make.__name__ for make, _ in CASES]


@pytest.mark.parametrize("make, fragments", CASES, ids=IDS)
def test_nested_models_import_as_blocks(keras, make, fragments):
    source = make(keras)
    first = import_model(source)
    for fragment in fragments:
        assert fragment in first.text, first.text
    built = assert_rebuilds(source, first, keras)
    assert [tuple(w.shape) for w in built.weights] == [tuple(w.shape) for w in source.weights]
    assert import_model(built).text == first.text  # in memory: the spec rides on the model
    assert import_model(netspec.load(first.text).build()).text == first.text


@pytest.mark.parametrize("make", [nested_functional, once_and_shared], ids=["nested_functional", "once_and_shared"])
def test_files_netspec_writes_round_trip(keras, make, tmp_path):
    """A .keras file written as ``netspec build -o`` writes it carries the spec: the same text again."""
    source = make(keras)
    source.save(tmp_path / "model.keras")
    first = import_model(load_keras_file(str(tmp_path / "model.keras")))
    assert "block: " in first.text and not first.notes
    spec = netspec.load(first.text)
    (tmp_path / "again").mkdir()
    save_model(spec.build(), tmp_path / "again" / "model.keras", spec.metadata())
    again = import_model(load_keras_file(str(tmp_path / "again" / "model.keras")))
    assert again.text == first.text and not again.notes


# -- what is never grouped ------------------------------------------------------------------------------


def test_similar_name_prefixes_are_not_blocks(keras):
    """keras.applications' stem (conv1_pad, conv1_conv, conv1_bn, conv1_relu) is four layers, not a block."""
    L = keras.layers
    x = keras.Input((16, 16, 3), name="image")
    y = L.ZeroPadding2D(3, name="conv1_pad")(x)
    y = L.Conv2D(4, 7, strides=2, name="conv1_conv")(y)
    y = L.BatchNormalization(name="conv1_bn")(y)
    y = L.Activation("relu", name="conv1_relu")(y)
    source = keras.Model(x, L.GlobalAveragePooling2D(name="avg_pool")(y), name="stem")
    first = import_model(source)
    assert "blocks:" not in first.text and "{name: conv1_conv, type: Conv2D" in first.text
    built = assert_rebuilds(source, first, keras)
    assert import_model(built).text == first.text  # its stamp has no block: still flat


def test_a_plain_keras_save_imports_flat(keras, tmp_path):
    """Keras's own model.save keeps no spec: the model netspec built imports as the flat model it is."""
    first = import_model(nested_sequential(keras))
    netspec.load(first.text).build().save(tmp_path / "plain.keras")
    again = import_model(load_keras_file(str(tmp_path / "plain.keras")))
    assert "blocks:" not in again.text and "{name: augment_noise, type: GaussianNoise" in again.text


# -- a stamp is proved, never trusted -------------------------------------------------------------------


def _stamped_file(keras, tmp_path):
    first = import_model(nested_functional(keras))
    spec = netspec.load(first.text)
    path = tmp_path / "model.keras"
    save_model(spec.build(), path, spec.metadata())
    return first, spec, path


def _restamp(path, spec_data: dict, params: dict | None = None, rehash: bool = True, **extra):
    """Replace the file's stamp by ``spec_data`` (its hash recomputed unless ``rehash`` is False)."""
    stamp = spec_stamp(spec_data, params or {}, None)
    if not rehash:
        stamp["netspec.spec_sha256"] = "0" * 64
    stamp_keras(path, {**stamp, **extra})


def test_a_changed_stamp_is_not_used(keras, tmp_path):
    first, spec, path = _stamped_file(keras, tmp_path)
    _restamp(path, spec.data, rehash=False)
    imported = import_model(load_keras_file(str(path)))
    assert "blocks:" not in imported.text and "{name: encoder_hidden, type: Dense" in imported.text
    assert any("was not used" in n and "hash" in n for n in imported.notes), imported.notes


def test_a_stamp_of_another_model_is_not_used(keras, tmp_path):
    """A stamp whose hash matches but whose spec builds a different model (a wider layer): not used."""
    first, spec, path = _stamped_file(keras, tmp_path)
    other = json.loads(json.dumps(spec.data).replace('"units": 4', '"units": 5', 1))
    _restamp(path, other)
    imported = import_model(load_keras_file(str(path)))
    assert "blocks:" not in imported.text
    assert any("does not build this model" in n for n in imported.notes), imported.notes


def test_a_stamp_runs_no_plugin(keras, tmp_path):
    """A stamp naming a plugin file: the file never runs; the rest of the stamp still proves the model."""
    first, spec, path = _stamped_file(keras, tmp_path)
    untouched = import_model(load_keras_file(str(path))).text
    assert "{name: encoder, block: encoder}" in untouched
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    _restamp(path, {**spec.data, "plugins": [str(evil)]})
    imported = import_model(load_keras_file(str(path)))
    assert not marker.exists()
    assert imported.text == untouched


def test_a_built_model_carries_its_spec(keras):
    """Spec.build() leaves the metadata a .keras file would store; Keras's tracking leaves it plain."""
    spec = netspec.load(import_model(nested_functional(keras)).text)
    model = spec.build()
    assert getattr(model, BUILT_FROM) == spec.metadata()
