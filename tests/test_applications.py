"""ResNet50 and MobileNetV2 specs compile to keras.applications' architectures."""

from __future__ import annotations

from collections import Counter

import pytest

import netspec

from conftest import SPECS

pytestmark = pytest.mark.slow

CASES = [
    ("resnet50", "ResNet50", 25_636_712),
    ("mobilenet_v2", "MobileNetV2", 3_538_984),
]


def signature(model) -> Counter:
    """Each layer's class, output shape and parameter count, as a multiset (names differ)."""
    return Counter((type(l).__name__, tuple(l.output.shape), l.count_params()) for l in model.layers)


@pytest.mark.parametrize("spec_name, app, params", CASES, ids=[c[0] for c in CASES])
def test_same_architecture_as_keras_applications(keras, spec_name, app, params):
    spec = netspec.load(SPECS / f"{spec_name}.yaml")
    result = spec.check()
    ours = spec.build()
    ref = getattr(keras.applications, app)(weights=None)
    assert ours.count_params() == ref.count_params() == params
    assert result.total_params == params
    ref_trainable = sum(int(w.numpy().size) for w in ref.trainable_weights)
    assert result.trainable_params == ref_trainable
    assert len(ours.layers) == len(ref.layers)
    assert signature(ours) == signature(ref)
    assert tuple(ours.output.shape) == tuple(ref.output.shape) == (None, 1000)


def test_resnet50_spec_is_written_with_blocks():
    text = (SPECS / "resnet50.yaml").read_text()
    spec = netspec.load(SPECS / "resnet50.yaml")
    assert len(spec.graph.nodes) > 150 and text.count("\n") < 80
