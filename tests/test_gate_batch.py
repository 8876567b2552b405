"""Gate batches under the memory budget: a dynamic batch whose default gate batch (8) does not fit is proven at
1 and the largest batch that fits (1 alone when only it fits); the report says which and why; only a batch
of 1 that does not fit is refused (NASNetLarge at 331x331 needed 17.3 GiB for a batch of 8)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, replace

import pytest

import netspec
from netspec import budget as nb
from netspec.errors import ExportError
from netspec.export import export, quantize, runs
from netspec.export.targets import BUILTIN

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_gate_batch")

SPEC = textwrap.dedent("""\
    netspec: 1
    name: small
    inputs:
      image: {shape: [8, 8, 3]}
    nodes:
      - {name: conv, type: Conv2D, filters: 4, kernel_size: 3, activation: relu, in: image}
      - {name: pool, type: GlobalAveragePooling2D}
      - {name: head, type: Dense, units: 3, activation: softmax}
    """)


@pytest.fixture(scope="module")
def small():
    return netspec.load(SPEC)


@pytest.fixture(scope="module")
def per_batch(keras, small):
    """Bytes one sample of the gate costs (inputs, and activations in Keras and the export)."""
    model = small.build()
    inputs = quantize.describe_inputs(model)
    return nb.export_runs(sum(nb.generated_bytes(i.shape, i.dtype) for i in inputs), runs.activation_bytes(model),
                          1, None)[0].bytes


@dataclass(frozen=True)
class Case:
    id: str
    room: float  # headroom, in gate samples
    target: str
    batch_size: int | None  # the target's fixed batch size (None: dynamic)
    sizes: tuple[int, ...] | None  # batches proven (None: refused)
    refusal: str = ""


CASES = [
    Case("fits-default-1-and-8", 100, "onnx-cpu", None, (1, 8)),
    Case("room-for-5-proves-1-and-5", 5.5, "onnx-cpu", None, (1, 5)),
    Case("room-for-2-proves-1-and-2", 2.2, "onnx-cpu", None, (1, 2)),
    Case("room-for-1-proves-1-alone", 1.5, "onnx-cpu", None, (1,)),
    Case("int8-room-for-3", 3.5, "onnx-int8", None, (1, 3)),
    Case("not-even-one-sample-refused", 0.5, "onnx-cpu", None, None, "one sample does not fit"),
    Case("fixed-batch-not-chosen-refused", 5.5, "onnx-cpu", 8, None, "lower --batch-size"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gate_batches_fit_the_budget(keras, small, per_batch, monkeypatch, tmp_path, case):
    keras.utils.set_random_seed(0)  # the same weights in any test order (int8 of some random draws fails its gate)
    room = int(case.room * per_batch)
    monkeypatch.setattr(runs, "headroom", lambda: nb.Memory(room, "a test budget"))
    target = replace(BUILTIN[case.target], batch_size=case.batch_size)
    if target.precision == "int8":  # calibration samples are priced too: keep them within the room
        target = replace(target, calibration=replace(target.calibration, samples=1))
    out = tmp_path / "m.onnx"
    fed: list[int] = []
    real_generate = quantize.generate
    monkeypatch.setattr(quantize, "generate", lambda inputs, n, *a, **k: fed.append(n) or real_generate(inputs, n, *a, **k))
    if case.sizes is None:
        with pytest.raises(ExportError) as info:
            export(small, target, out, latency=False)
        assert case.refusal in info.value.message and "this export may allocate (a test budget)" in info.value.message
        assert not out.exists()
        return
    report = export(small, target, out, latency=True)
    gate = report.gate
    assert gate.ok and out.exists()
    proven = sorted({p.batch for p in gate.parity})
    assert tuple(proven) == case.sizes
    assert max(fed) == max(case.sizes)  # no batch over the budget was ever generated (latency included)
    assert set(report.latency_ms["export"]) == set(case.sizes)
    text = report.text()
    if case.sizes == (1, 8):
        assert gate.batch_limit is None and "limited by the memory budget" not in text
        return
    limit = f"batch {' and '.join(map(str, case.sizes))}, not 8: a gate batch of 8 samples"
    assert gate.batch_limit.startswith(limit) and "(a test budget)" in gate.batch_limit, gate.batch_limit
    assert f"gate batches limited by the memory budget: {limit}" in text, text
    assert report.to_dict()["gate"]["batch_limit"] == gate.batch_limit
    assert json.loads(report.metadata["netspec.gate"])["batch_limit"] == gate.batch_limit


@pytest.mark.parametrize("inputs, activations, largest, room, want", [
    (10, 20, 8, 10_000, 8),  # fits: the default
    (10, 20, 8, 250, 5),  # 5 x 50 bytes
    (10, 20, 8, 49, 0),  # not one sample
    (0, 0, 8, 0, 8),  # nothing to allocate
])
def test_fitting_gate_batch(inputs, activations, largest, room, want):
    assert nb.fitting_gate_batch(inputs, activations, largest, room) == want
