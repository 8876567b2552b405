"""``netspec export``: build or load the model, rewrite, convert, quantize, verify, then write atomically and report."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import compat, formats, modelcheck, quantize, sizes, verify
from ..budget import allocation_guard
from .signature import IONames, call_model, io_names
from .preprocess import fold
from ..build.saving import atomic_path
from ..contract import METADATA_KEY
from ..errors import ExportError, GateError, hint_for
from .report import ExportReport
from .runs import AGREEMENT_SAMPLES, GATE_SEED, GatePlan, LoadArrays, activation_bytes, check_runs, \
    float64_reference, gate_batches, gate_sizes, real_samples, target_error
from .targets import ExportSpec, Target

# Re-exported for callers of the pipeline (the CLI's LoadArrays, tests): they live in netspec.export.runs.
__all__ = ["AGREEMENT_SAMPLES", "GATE_SEED", "LoadArrays", "activation_bytes", "check_runs", "export", "gate_batches",
           "keras_function", "load_model", "measure_latency", "median_ms", "target_error"]


# -- the model --------------------------------------------------------------------------------


def load_model(source, weights: str | None = None):
    """The Keras model and its spec (None for a ``.keras`` file).

    Args:
        source: a :class:`netspec.Spec` or the path of a ``.keras`` file (loaded with ``safe_mode=True``).
        weights: a trained ``.keras`` or ``.weights.h5`` file whose weights replace the fresh ones.

    Raises:
        ExportError: the file cannot be loaded or its weights do not fit the spec's model.
    """
    from ..build.saving import load_model as load_keras_file
    from ..kerasapi import assign_weights

    if isinstance(source, (str, Path)):
        return load_keras_file(source), None  # safe_mode, expression layers registered
    model = source.build()
    if weights:
        trained = load_keras_file(weights) if str(weights).endswith(".keras") else None
        try:
            if trained is not None:
                assign_weights(model, trained.get_weights())
            else:
                model.load_weights(str(weights))
        except Exception as e:
            raise ExportError(f"the weights in {weights} do not fit the spec's model: {verify.exception_text(e)}") from None
    return model, source


def classifier_outputs(model, names: IONames) -> set[str]:
    """Outputs made by a softmax (a Softmax layer or ``activation: softmax``) over a 2-D output."""
    import keras

    from ..kerasapi import inbound_nodes, producer

    out = set()
    tensors = model.outputs if not isinstance(model.outputs, dict) else list(model.outputs.values())
    for name, tensor in zip(names.outputs, tensors):
        layer = producer(tensor)
        while isinstance(layer, keras.layers.Identity) and inbound_nodes(layer):
            layer = producer(inbound_nodes(layer)[0].input_tensors[0])
        act = getattr(layer, "activation", None)
        if len(tensor.shape) == 2 and (isinstance(layer, keras.layers.Softmax) or act is keras.activations.softmax):
            out.add(name)
    return out


def refuse(findings: list[compat.Finding], target: Target) -> None:
    """Raise for the first refused finding (with the count of the rest).

    Raises:
        ExportError: located at the first refused layer or expression.
    """
    refused = [f for f in findings if f.action == "refused"]
    if refused:
        first = refused[0]
        raise ExportError(f"target {target.name!r} ({target.format}) cannot take node {first.node!r}: {first.message}",
                          path=first.path, location=first.location, more=len(refused) - 1)


def spec_metadata(spec: ExportSpec, target: Target) -> dict[str, str]:
    """The resolved spec (the spec as written plus its params after overrides), its SHA-256, netspec's version,
    the target."""
    from ..contract import METADATA_KEY, Contract, spec_stamp

    contract = Contract.of_graph(spec.graph)
    return {**spec_stamp(spec.data, spec.graph.params, spec.path),
            "netspec.target": json.dumps(target.to_dict(), sort_keys=True), METADATA_KEY: contract.to_json()}


def keras_file_metadata(path: str | Path) -> dict[str, str]:
    """netspec's version, the ``.keras`` file exported and its SHA-256 (an export of a file, not a spec), and
    what netspec stamped in that file (its spec, hash and contract: a trained ``best.keras`` keeps them)."""
    from ..source.kerasfile import open_archive
    from ..version import __version__

    carried = {k: v for k, v in open_archive(path).netspec.items() if k not in ("netspec.version", "netspec.source")}
    return {**carried, "netspec.version": __version__, "netspec.source": str(path),
            "netspec.keras_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


# -- export -------------------------------------------------------------------------------------


def export(source: ExportSpec | str | Path, target: Target, output: str | Path, *, weights: str | None = None,
           load_arrays: LoadArrays | None = None, latency: bool = True) -> ExportReport:
    """Export a spec's model (or a ``.keras`` file) for ``target``; write ``output`` only if the gate passes.

    Args:
        source: a :class:`netspec.Spec` or a ``.keras`` path.
        target: the target (see :mod:`netspec.export.targets`).
        output: the file to write (``.onnx`` or ``.tflite``).
        weights: trained weights for a spec's model.
        load_arrays: ``(spec, part) -> arrays with .x/.y`` for calibration and held-out accuracy
            (``netspec.train.data.load_arrays``); None: calibrate on generated inputs.
        latency: measure runtime latency against Keras for the report.

    Returns:
        The report.

    Raises:
        ExportError: the target refuses part of the spec (located), or conversion fails.
        GateError: the gate failed; nothing was written.
    """
    def fail(message: str) -> ExportError:
        return target_error(source, target, None, message)

    with allocation_guard(fail, f"exporting for target {target.name!r}"):
        return _export(source, target, output, weights=weights, load_arrays=load_arrays, latency=latency)


def _export(source: ExportSpec | str | Path, target: Target, output: str | Path, *, weights: str | None,
            load_arrays: LoadArrays | None, latency: bool) -> ExportReport:
    from .rewrite import export_rewrites

    started = time.perf_counter()
    fmt = formats.FORMATS[target.format]
    report = ExportReport(str(output), target)
    load_arrays = _once_per_part(load_arrays)
    named = formats.named_for(output)
    if named is not fmt and (named is not None or not fmt.any_name):
        raise ExportError(f"target {target.name!r} writes {target.suffix} files. Received: -o {output}")
    if not isinstance(source, (str, Path)):  # a spec: refuse what the target cannot take before building
        refuse(compat.check(source, target.format), target)
    t_load = time.perf_counter()
    model, spec = load_model(source, weights)
    report.seconds["load"] = time.perf_counter() - t_load  # the model built and its weights read
    if spec is None:  # a .keras file: the same refusals, by layer, before conversion
        modelcheck.refuse_layers(modelcheck.check_model(model, target.format), target, str(source))
    check_keep_float(model, spec, target)
    names = io_names(model, spec.graph if spec is not None else None)
    keras_model, folded = model, fold(model, spec, source, names, lambda m: target_error(
        spec, target, "include_preprocess", m)) if target.include_preprocess else None
    if folded is not None:  # the model takes raw inputs; the spec's data is made raw to feed it
        model, load_arrays = folded.model, folded.arrays(load_arrays)
    declared = quantize.describe_inputs(model) if folded is None else folded.inputs(quantize.describe_inputs(model))
    # The spec's data is read here only when it may size unknown dimensions (else after conversion, as the gate needs it).
    dynamic = any(d is None for i in declared for d in i.shape)
    real = real_samples(spec, load_arrays) if dynamic else None
    # Unknown dimensions: the sizes fed and proven (netspec.export.sizes), checked by building at them.
    sized = sizes.plan(model, declared, target, spec, real, lambda f, m: target_error(spec, target, f, m))
    fixed = {s.name: s.shapes[0] for s in sized if s.fixed}
    if fixed:  # by input name: convert fixes these dimensions in the exported file
        report.target = target = replace(target, input_shape=fixed)
    inputs = sizes.feeds(declared, sized, 0)
    plan = check_runs(model, inputs, target, spec, sized)  # before any batch or calibration sample is generated
    report.inputs = {i.name: {"shape": [target.batch_size, *fixed.get(i.name, i.shape)], "dtype": i.dtype}
                     for i in declared}
    for s in sized:
        if s.dynamic:
            report.inputs[s.name]["proven_shapes"] = [list(x) for x in s.shapes]
    classifiers = classifier_outputs(keras_model, names)

    calib = None
    if target.precision == "int8":
        calib, report.calibration = quantize.calibration_arrays(spec, inputs, target.calibration, load_arrays)
    t0 = time.perf_counter()
    with export_rewrites(model, target.format) as rewrites:
        report.rewrites = list(rewrites)
        artifact = fmt.convert(model, names, target, calib)
    if fmt.embeds_metadata:
        if spec is not None:
            report.metadata = spec_metadata(spec, target)
        else:
            assert isinstance(source, (str, Path))  # load_model returns no spec only for a .keras path
            report.metadata = keras_file_metadata(source)
        if folded is not None:
            report.metadata[METADATA_KEY] = folded.contract.to_json()
    float_artifact = artifact  # fp16/int8 failures are located against it
    artifact = fmt.finish(artifact, target, calib, report.metadata)
    report.seconds["convert"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    gate = verify.GateResult(target.precision)
    report.gate = gate
    reference = folded.reference if folded is not None else lambda x: call_model(model, names, x)
    loaded = fmt.load(artifact, gate, model, names, target)
    data, run, report.nodes, report.outputs = loaded.data, loaded.run, loaded.nodes, loaded.outputs
    if target.precision == "fp32" and fmt.reload is not None:
        artifact = float_artifact = None  # the gate runs ``data``; a failure is located from it (formats.Format.reload)
    if not dynamic:
        real = real_samples(spec, load_arrays)
    others = [sizes.feeds(declared, sized, k) for k in range(1, sizes.size_sets(sized))]
    sets = gate_batches(inputs, target, real, others, plan.sizes)
    gate.batch_limit = plan.limit
    exact = float64_reference(model, names, plan, 4 * sum(int(np.prod(w.shape)) for w in model.weights)) \
        if target.precision == "fp32" else None
    verify.run_gate(reference, run, sets, target.precision, classifiers, gate, exact)
    if gate.ok:
        if plan.limit:
            gate.checks.append(f"gate batches limited by the memory budget: {plan.limit}")
        gate.checks[-1] += ", on samples of the spec's data and generated inputs" if real is not None \
            else ", on generated inputs"
        proven = sizes.describe(sized)
        if proven:
            gate.checks.append(proven)
    if not gate.ok and target.precision == "fp32" and fmt.divergence is not None:
        try:
            if artifact is None and fmt.reload is not None:
                artifact = fmt.reload(data)
            gate.diverging = fmt.divergence(model, artifact, sets[0])
        except Exception as e:  # locating is best effort; the gate's own failure is what matters
            gate.diverging = {"node": None, "note": f"could not compare intermediate outputs: {verify.exception_text(e)}"}
    if not gate.ok and target.precision != "fp32" and fmt.localize is not None:
        try:
            gate.located = fmt.localize(float_artifact, artifact, sets[:2], target.precision)
        except Exception as e:  # best effort, as for fp32
            gate.located = {"note": f"could not compare intermediate activations: {verify.exception_text(e)}"}
    report.seconds["gate"] = time.perf_counter() - t1
    for name in names.outputs:
        span = max((p.span for p in gate.parity if p.output == name), default=0.0)
        bound = verify.TOLERANCES["fp32"].atol * max(1.0, span)  # what fp32 parity is measured against
        if span < 10 * bound:
            report.warnings.append(
                f"output {name} varies by only {span:.3g} over the gate's inputs, less than 10x the fp32 "
                f"tolerance ({bound:.3g}), so matching it proves little; untrained deep networks often do: export trained "
                "weights (--weights)")
    if not gate.ok:
        raise GateError(_gate_message(report, spec), report)

    heldout = quantize.heldout_arrays(spec, load_arrays) if target.precision != "fp32" else None
    if heldout is not None and heldout.y is not None and classifiers:
        report.accuracy = quantize.accuracy_change(reference, run, heldout.x, heldout.y, classifiers,
                                                   target.batch_size or (max(plan.sizes) if plan.limit else 32))
    if fmt.stamp is not None and report.metadata:  # the gate's figures, now known, go into the file
        report.metadata["netspec.gate"] = report.gate_figures()
        data = fmt.stamp(data, report.metadata)
    if loaded.write is not None:  # an artifact of several files (OpenVINO .xml + .bin) writes them itself
        report.size_bytes = loaded.write(Path(output), data)
    else:
        with atomic_path(output) as tmp:
            tmp.write_bytes(data)
        report.size_bytes = len(data)
    if latency:
        report.latency_ms = measure_latency(keras_function(model, names), run, inputs, target, plan)
    report.seconds["total"] = time.perf_counter() - started
    return report


def _once_per_part(load_arrays: LoadArrays | None) -> LoadArrays | None:
    """``load_arrays`` reading each part once (calibration, the gate and held-out accuracy share it)."""
    if load_arrays is None:
        return None
    cache: dict = {}

    def load(spec, part):
        if part not in cache:
            cache[part] = load_arrays(spec, part)
        return cache[part]

    return load


def check_keep_float(model, spec: ExportSpec | None, target: Target) -> None:
    """Refuse a ``keep_float`` name that is not a node of the spec (or a layer of the ``.keras`` model).

    Raises:
        ExportError: with a did-you-mean; located at the spec's ``keep_float`` when it is written there.
    """
    known = [n.name for n in spec.graph.nodes] if spec is not None else [layer.name for layer in model.layers]
    for name in target.keep_float:
        if name not in known:
            what = "node of the spec" if spec is not None else "layer of the model"
            raise target_error(spec, target, "keep_float", f"keep_float names no {what}. Received: {name!r}",
                               hint=hint_for(name, known))


def _gate_message(report: ExportReport, spec) -> str:
    gate = report.gate
    assert gate is not None  # only called for a failed gate, which _export stores in the report first
    text = f"export to {report.file} failed its verification gate ({report.target.name}): {gate.failure}; nothing written"
    if gate.diverging and gate.diverging.get("node") is None:
        text += f"\n  ({gate.diverging['note']})"
    elif gate.diverging:
        d = gate.diverging
        where = ""
        node = spec.graph.node(d["node"]) if spec is not None else None
        if node is not None:
            where = f" ({node.location})"
        text += (f"\n  first diverging node: {d['node']!r}{where}, max |error| {d['max_abs_error']:.3g} "
                 f"(bound {d['bound']:.3g})")
    if gate.located and "note" in gate.located:
        text += f"\n  ({gate.located['note']})"
    elif gate.located:
        text += _located_lines(gate.located, spec, report.target.precision, report.target.format)
    return text


def _located_lines(located: dict, spec, precision: str, format: str = "onnx") -> str:
    """The nodes where an fp16/int8 export's error appears, grows most and is worst, with their spec lines,
    and for int8 what the format's target can change (``format``: its name in :data:`formats.FORMATS`)."""
    def name(entry: dict) -> str:
        node = spec.graph.node(entry["node"]) if spec is not None else None
        return f"{entry['node']!r}" + (f" ({node.location})" if node is not None else "")

    worst = located["worst"]
    lines = [f"\n  {precision} activations against float (SQNR, lower is worse): worst at node {name(worst)}, "
             f"{worst['sqnr_db']:.1f} dB (tensor {worst['tensor']})"]
    if located.get("appears") is not None:
        a = located["appears"]
        lines.append(f"\n  error appears at node {name(a)}: {a['sqnr_db']:.1f} dB")
    for g in located.get("grows") or []:
        lines.append(f"\n  error grows at node {name(g)}: {g['drop_db']:.1f} dB lost against its inputs "
                     f"({g['sqnr_db']:.1f} dB)")
    if precision == "int8":
        lines.append(int8_hint(format))
    return "".join(lines)


def int8_hint(format: str) -> str:
    """What an int8 target of ``format`` can change when its gate fails: the options it takes
    (:attr:`formats.Format.int8_options`; :func:`netspec.export.targets.target_from` refuses the others)."""
    form = formats.FORMATS[format]
    if form.int8_options:
        return ("\n  (keep_float: [nodes] in the target, or --keep-float, leaves them in float; "
                "calibration: entropy or percentile clips outliers)")
    return (f"\n  (the {form.label} int8 converter {form.int8_fixed}: it takes no keep_float or calibration "
            f"method; its target takes calibration.samples (more, or the spec's own data) and calibration.range, "
            f"or export fp32, or int8 through {formats.int8_option_formats()} with keep_float)")


def keras_function(model, names: IONames) -> Callable:
    """The model as a compiled ``tf.function`` (dynamic batch) returning numpy arrays by output name."""
    from .signature import serving_function

    serve, _ = serving_function(model, names, None)

    def run(x):
        return {k: v.numpy() for k, v in serve(*[x[n] for n in names.inputs]).items()}

    return run


def measure_latency(reference: Callable, run: Callable, inputs, target: Target, plan: GatePlan | None = None,
                    budget_s: float = 0.5) -> dict:
    """Median milliseconds of the export's runtime and of Keras (a compiled tf.function) at the gate's
    batch sizes (1 and 8, the fixed batch size, or those the memory budget chose: ``plan``)."""
    sizes = list(plan.sizes) if plan is not None else gate_sizes(target)
    out: dict[str, dict[int, float]] = {"export": {}, "keras": {}}
    for n in sizes:
        x = quantize.generate(inputs, n, 1)
        out["export"][n] = median_ms(lambda: run(x), budget_s)
        out["keras"][n] = median_ms(lambda: reference(x), budget_s)
    return out


def median_ms(fn: Callable[[], Any], budget_s: float = 0.5, min_runs: int = 3, max_runs: int = 200) -> float:
    """Median wall time of ``fn`` after one warm-up call, run until ``budget_s`` or ``max_runs``."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget_s and len(times) < max_runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))
