"""The valid corpus (tests/specs/valid/*.yaml): each spec compiles, with the parameter count and
output names its header states, and its saved model computes what the built one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import netspec

from conftest import TEST_SPECS, comment_headers

CASES = sorted((TEST_SPECS / "valid").glob("*.yaml"))


def headers(path: Path) -> dict[str, str]:
    return comment_headers(path, ("params", "outputs"))


def sample_inputs(model):
    """Random inputs keyed by input name (a bare array for a one-input model); one batch size for
    all, the fixed one where an input declares it."""
    rng = np.random.default_rng(0)
    batch = next((t.shape[0] for t in model.inputs if t.shape[0] is not None), 2)
    out = {}
    for t in model.inputs:
        shape = [batch] + [5 if d is None else d for d in t.shape[1:]]
        dtype = str(t.dtype)
        if "int" in dtype:
            out[t.name] = rng.integers(0, 10, size=shape).astype(dtype)
        elif dtype == "bool":
            out[t.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            out[t.name] = rng.standard_normal(shape).astype(dtype)
    return out if len(out) > 1 else next(iter(out.values()))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_valid_spec(path, keras, tmp_path):
    exp = headers(path)
    spec = netspec.load(path)
    result = spec.check()
    assert result.total_params == int(exp["params"])
    assert [name for name, _ in result.outputs] == exp["outputs"].split()
    model = spec.build()
    assert model.count_params() == int(exp["params"])
    x = sample_inputs(model)
    want = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    got = netspec.load_model(tmp_path / "m.keras").predict(x, verbose=0)
    if isinstance(want, dict):
        assert list(want) == exp["outputs"].split()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_corpus_exists():
    assert len(CASES) >= 2
