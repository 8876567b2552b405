"""The "Must show" corpus of issue 14: public Keras examples, written in Python and as specs.

Every module in tests/models/ (not starting with ``_``) builds a reference model from a public
Keras example or guide (``build()``, ``SOURCE``) and names the hand-written spec that says the same
model (``SPEC``). Two checks per model:

- the spec builds the same model: equal parameter count, every weight shape equal in order, and
  equal outputs on a seeded batch once the reference's weights are copied over in order;
- ``netspec import`` of the reference (saved as .keras, loaded back in safe mode) gives a spec that
  rebuilds it (parameters, weight shapes, outputs), and importing that rebuild gives the same spec
  text (the round trip).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import netspec

from conftest import ROOT

MODELS_DIR = Path(__file__).resolve().parent / "models"
NAMES = sorted(p.stem for p in MODELS_DIR.glob("*.py") if not p.stem.startswith("_"))
BATCH = 3
UNKNOWN_DIM = 8   # an input's None dimension in the generated batch (a module may set UNKNOWN_DIM)
INT_HIGH = 10     # integer inputs are drawn from [0, INT_HIGH) (every vocabulary is larger)


def test_the_corpus_is_big_enough():
    assert len(NAMES) >= 20, NAMES


def reference(name: str):
    """The corpus module ``name`` (tests/models is on sys.path for the modules' shared helpers)."""
    if str(MODELS_DIR) not in sys.path:
        sys.path.insert(0, str(MODELS_DIR))
    spec = importlib.util.spec_from_file_location(f"corpus_{name}", MODELS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import keras

    keras.utils.clear_session()  # Keras's generated layer names restart: the imported text is the same every run
    for attr in ("SOURCE", "SPEC", "build"):
        assert hasattr(module, attr), f"tests/models/{name}.py has no {attr}"
    assert module.__doc__ and module.SOURCE.startswith("https://"), name
    return module


def plugins_of(module) -> list[str]:
    """The module's plugin files, as absolute paths (netspec loads each file once, by its path)."""
    return [str(ROOT / p) for p in getattr(module, "PLUGINS", [])]


def batch_for(model, module, seed: int = 0) -> dict:
    """A seeded batch for ``model``'s inputs, by input name: normal floats, small integers, booleans."""
    rng = np.random.default_rng(seed)
    unknown = getattr(module, "UNKNOWN_DIM", UNKNOWN_DIM)
    out = {}
    for tensor in model.inputs:
        shape = (BATCH, *(unknown if d is None else d for d in tensor.shape[1:]))
        dtype = str(tensor.dtype)
        if "int" in dtype:
            out[tensor.name] = rng.integers(0, getattr(module, "INT_HIGH", INT_HIGH), size=shape).astype(dtype)
        elif dtype == "bool":
            out[tensor.name] = rng.uniform(size=shape) < 0.8
        else:
            out[tensor.name] = rng.normal(size=shape).astype(dtype)
    return out


def outputs_of(model, batch: dict) -> list[np.ndarray]:
    """The model called in inference mode on the batch (given by input name), as a list of outputs."""
    inputs = [batch[t.name] for t in model.inputs]
    result = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in model.output_names] if set(result) == set(model.output_names) \
            else [np.asarray(v) for v in result.values()]
    return [np.asarray(r) for r in result] if isinstance(result, (list, tuple)) else [np.asarray(result)]


def assert_same_model(ours, ref, module):
    """Equal parameters and weight shapes in order; equal outputs once ``ref``'s weights are copied in."""
    assert ours.count_params() == ref.count_params()
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in ref.weights]
    assert [t.name for t in ours.inputs] == [t.name for t in ref.inputs]
    ours.set_weights(ref.get_weights())
    batch = batch_for(ref, module)
    expected, got = outputs_of(ref, batch), outputs_of(ours, batch)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_spec_builds_the_reference_model(keras, name):
    module = reference(name)
    ref = module.build()
    plugins = getattr(module, "PLUGINS", [])
    spec = netspec.load(ROOT / module.SPEC, trust_plugins=bool(plugins))
    assert_same_model(spec.build(), ref, module)


def import_saved(model, folder: Path, plugins: list[str]):
    """``netspec import`` of ``model`` saved as ``folder/model.keras`` (the import's origin is that file name).

    A model netspec built is saved as ``netspec build -o`` saves it, with the spec it was built from
    stamped in the file (the import reads its blocks used once from it); any other with ``model.save``.
    """
    from netspec.build.saving import save_model
    from netspec.importing.importer import import_model, load_keras_file
    from netspec.spec import BUILT_FROM

    folder.mkdir()
    path = folder / "model.keras"
    save_model(model, path, getattr(model, BUILT_FROM, None))
    return import_model(load_keras_file(str(path)), plugins=plugins)


@pytest.mark.parametrize("name", NAMES)
def test_import_rebuilds_and_round_trips(keras, name, tmp_path):
    module = reference(name)
    ref = module.build()
    plugins = plugins_of(module)
    imported = import_saved(ref, tmp_path / "first", plugins)
    rebuilt = netspec.load(imported.text, trust_plugins=bool(plugins)).build()
    assert_same_model(rebuilt, ref, module)
    again = import_saved(rebuilt, tmp_path / "second", plugins)
    assert again.text == imported.text
