"""What the gate feeds, and what it costs: its batch sizes chosen under the memory budget, its inputs, the
float64 reference of the fp32 gate's second bound, and errors located at the target's fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from . import quantize, sizes
from ..budget import elements, export_runs, fitting_gate_batch, float64_run, format_bytes, generated_bytes, \
    headroom, intermediate, tensor_bytes
from ..errors import ExportError, NetspecError
from .targets import ExportSpec, Target

if TYPE_CHECKING:
    import keras

    from .signature import IONames
    from .quantize import InputInfo

# ``netspec.train.data.load_arrays``: (spec, "train" | "validation") -> arrays with ``.x`` (and ``.y``) by name.
LoadArrays = Callable[[ExportSpec, str], Any]

GATE_SEED = 20_261_101  # generated gate inputs differ from calibration inputs (seed 0 by default)
AGREEMENT_SAMPLES = 64  # fp16/int8 classifiers: top-1 agreement is measured on this many samples
DEFAULT_GATE_SIZES = (1, 8)  # a dynamic batch is proven at these sizes when they fit the budget


@dataclass(frozen=True)
class GatePlan:
    """The batch sizes the gate (and latency) feed, and the per-sample bytes they were priced with.

    ``limit`` says why a dynamic batch is proven at smaller sizes than :data:`DEFAULT_GATE_SIZES`
    (the memory budget), None when it is not.
    """

    sizes: tuple[int, ...]
    per_input: int  # bytes of one generated sample of every input
    per_sample: int  # bytes of every activation of one sample (float32)
    limit: str | None = None


# -- what the export allocates, priced before it does ------------------------------------------------


def gate_sizes(target: Target) -> list[int]:
    """Batch sizes the gate and the latency measurement feed when memory allows: 1 and 8, or the fixed batch size."""
    return list(DEFAULT_GATE_SIZES) if target.batch_size is None else [target.batch_size]


def activation_bytes(model) -> int:
    """Bytes of every layer output and costed intermediate for one sample, unknown dims at the fed sizes."""
    from ..kerasapi import inbound_nodes

    total = 0
    for layer in model.layers:
        for node in inbound_nodes(layer):
            total += sum(tensor_bytes(t) for t in node.output_tensors)
            cost = intermediate(layer, [(str(i), tuple(t.shape)[1:]) for i, t in enumerate(node.input_tensors)])
            total += 4 * cost[1] if cost is not None else 0
    return total


def check_runs(model: keras.Model, inputs: list[InputInfo], target: Target, spec: ExportSpec | None,
               sized: list[sizes.Sized] | None = None) -> GatePlan:
    """The gate's batch sizes within the memory budget; refuse an export whose gate batches or calibration
    samples cannot fit, before allocating them.

    The cost is batch x (one generated sample of every input + every activation of one sample),
    at the sizes :func:`netspec.export.quantize.generate` feeds (``sized``: the largest proven
    shapes of unknown dimensions); the bound is :func:`netspec.budget.headroom` (half of what
    the process can still allocate). A dynamic batch whose default largest gate batch (8) does
    not fit is proven at 1 and the largest batch that fits (1 alone when only it fits): a model
    that runs at batch 1 deploys, and a second size still proves the batch axis dynamic.

    Raises:
        ExportError: located at the target's ``batch_size`` or ``calibration.samples`` in the spec; for
            a dynamic batch, only when one sample does not fit.
    """
    per_input = sum(generated_bytes(i.shape, i.dtype) for i in inputs)
    per_sample = activation_bytes(model)
    if sized is not None and any(s.source is not None for s in sized):
        per_input, per_sample = _largest_feed(model, inputs, sized, per_sample)
    samples = target.calibration.samples if target.precision == "int8" else None
    room = headroom()
    chosen, limit = gate_sizes(target), None
    if target.batch_size is None:
        largest = fitting_gate_batch(per_input, per_sample, max(chosen), room.bytes)
        if 1 <= largest < max(chosen):
            full = export_runs(per_input, per_sample, max(chosen), None)[0]
            chosen = sorted({1, largest})
            limit = (f"batch {' and '.join(map(str, chosen))}, not {max(DEFAULT_GATE_SIZES)}: {full.what} would "
                     f"need {format_bytes(full.bytes)}, over the {format_bytes(room.bytes)} this export may allocate "
                     f"({room.source})")
    histogram = target.calibration.method != "minmax"
    for run in export_runs(per_input, per_sample, max(chosen), samples, target.batch_size or 1, histogram):
        if run.bytes > room.bytes:
            lower = f"lower {_option(spec, target, run.field)}"
            if run.field == "batch_size" and target.batch_size is None:  # batch 1 does not fit: nothing to lower
                lower = "one sample does not fit: export on a machine with more memory, or with smaller inputs"
            elif run.field == "calibration.samples" and \
                    export_runs(per_input, per_sample, 1, 1, target.batch_size or 1, histogram)[1].bytes > room.bytes:
                # one sample's recorded activations are the cost, not the sample count (EfficientNetB7 at 600 px)
                lower = ("fewer samples would not fit either (a sample's activations are recorded as it runs): "
                         "export on a machine with more memory, or with smaller inputs")
            raise target_error(spec, target, run.field,
                               f"{run.what} need {format_bytes(run.bytes)} ({format_bytes(per_input + per_sample)} a "
                               f"sample), over the {format_bytes(room.bytes)} this export may allocate ({room.source}); "
                               f"{lower}")
    return GatePlan(tuple(chosen), per_input, per_sample, limit)


def float64_reference(model, names: IONames, plan: GatePlan, weight_bytes: int) -> Callable[[Mapping[str, Any]], dict]:
    """The fp32 gate's float64 reference (:mod:`netspec.export.noise`), priced against the budget before each run.

    Raises (when called):
        ExportError: the float64 twin and a batch of its activations would not fit in memory.
    """
    from . import noise
    from .signature import call_model

    build = noise.float64_reference(model, lambda twin, x: call_model(twin, names, x))

    def run(x: Mapping[str, Any]) -> dict:
        batch = int(next(iter(x.values())).shape[0])
        cost, room = float64_run(plan.per_input, plan.per_sample, batch, weight_bytes), headroom()
        if cost.bytes > room.bytes:
            raise ExportError(f"{cost.what} needs {format_bytes(cost.bytes)}, over the {format_bytes(room.bytes)} "
                              f"this export may allocate ({room.source})")
        return build(x)

    return run


def _largest_feed(model, inputs: list[InputInfo], sized: list[sizes.Sized], declared_bytes: int) -> tuple[int, int]:
    """(input bytes, activation bytes) of one sample at the largest proven shape set.

    Activations are costed on the model's graph rebuilt at those shapes (symbolically); when it
    cannot be rebuilt, the declared-shape cost is scaled by how much larger the inputs are.
    """
    sets = [sizes.feeds(inputs, sized, k) for k in range(sizes.size_sets(sized))]
    largest = max(sets, key=lambda feed: sum(elements(i.shape) for i in feed))
    per_input = sum(generated_bytes(i.shape, i.dtype) for i in largest)
    traced = sizes.traced_at(model, {i.name: i.shape for i in largest})
    if traced is not None:
        return per_input, activation_bytes(traced)
    scale = max(1.0, sum(elements(i.shape) for i in largest) /
                max(1, sum(elements(tuple(t.shape)[1:]) for t in model.inputs)))
    return per_input, int(declared_bytes * scale)


def _option(spec, target: Target, field: str) -> str:
    if field == "batch_size" and _spec_value(spec, target, field) != target.batch_size:
        return "--batch-size"
    return f"the target's {field}" if not target.builtin else f"{field} (in an export: target of your own)"


def _spec_value(spec, target: Target, field: str):
    raw = ((spec.section("export") or {}).get(target.name) or {}) if spec is not None and hasattr(spec, "section") else {}
    for key in field.split("."):
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def target_error(spec, target: Target, field: str | None, message: str, hint: str | None = None) -> ExportError:
    """An error about ``target``, located at its ``field`` (or its entry) in the spec's ``export:`` section."""
    text = f"export target {target.name!r}: {message}"
    if spec is None or not hasattr(spec, "document") or target.builtin:
        return ExportError(text, hint=hint)
    path: tuple = ("export", target.name)
    if field is not None and _spec_value(spec, target, field) is not None:
        path += tuple(field.split("."))
    return ExportError(text, path=path, location=spec.document.source.value(path), hint=hint)


def gate_batches(inputs, target: Target, real: dict | None = None, others: list | None = None,
                 plan_sizes: tuple[int, ...] | None = None) -> list[dict]:
    """Gate inputs: batch 1 and batch 8 (a fixed batch size: batches of that size), generated with the gate's seed.

    ``plan_sizes`` (:attr:`GatePlan.sizes`) replaces 1 and 8 when the memory budget chose smaller
    sizes. For fp16/int8, more batches of the largest size follow, so top-1 agreement is measured
    on 64 samples. With ``real`` samples (the spec's own data), the same batches of them are compared
    first. ``others``: the inputs at other proven shapes (unknown dimensions at their second size),
    each fed at the gate's batch sizes after the rest.
    """
    base = list(plan_sizes) if plan_sizes else gate_sizes(target)
    batch_sizes = list(base)
    if target.precision != "fp32":
        per = max(base)
        batch_sizes += [per] * max(0, (AGREEMENT_SAMPLES - sum(batch_sizes)) // per)
    value_range = target.calibration.range
    sets = []
    if real is not None:
        start = 0
        for n in batch_sizes:
            if start + n > len(next(iter(real.values()))):
                break
            sets.append({k: v[start:start + n] for k, v in real.items()})
            start += n
    sets += [quantize.generate(inputs, n, GATE_SEED + k, value_range) for k, n in enumerate(batch_sizes)]
    for j, other in enumerate(others or [], start=1):
        sets += [quantize.generate(other, n, GATE_SEED + 1000 * j + k, value_range)
                 for k, n in enumerate(base)]
    return sets


def real_samples(spec: ExportSpec | None, load_arrays: LoadArrays | None) -> dict | None:
    """Samples of the spec's data for the gate: validation data (never seen by int8 calibration), else
    training data; None when the spec has no data (or the data cannot be read)."""
    for part in ("validation", "train"):
        try:
            data = quantize.spec_data(spec, part, load_arrays)
        except NetspecError:
            return None  # the gate still runs on generated inputs; train/validate report data errors
        if data is not None:
            return {k: np.asarray(v) for k, v in data.x.items()}
    return None


