"""The verification gate: check the exported model, run it, compare it with Keras per precision."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ExportError

if TYPE_CHECKING:
    from .formats import Precision

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Tolerance:
    """``|export - keras| <= atol * scale + rtol * |keras|`` element-wise.

    ``scale`` is ``max(1, range)`` for fp32 (``range`` = max - min of the Keras output), and
    the range itself for fp16 and int8 (1 when the output is constant).
    """

    rtol: float
    atol: float
    floor_one: bool  # scale = max(1, range) rather than range

    def bound(self, ref: np.ndarray) -> tuple[float, float]:
        """(absolute tolerance, scale) for a reference output."""
        span = float(ref.max() - ref.min()) if ref.size else 0.0
        scale = max(1.0, span) if self.floor_one else (span if span > 0 else 1.0)
        return self.atol * scale, scale


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-4, floor_one=True),
    "fp16": Tolerance(rtol=0.0, atol=2e-2, floor_one=False),
    # Static int8 moves every activation to a 256-level grid, and errors compound through the layers:
    # measured up to ~0.25 of the output range on small untrained regressors. The bound is a sanity
    # check (a broken quantization is off by the whole range); classifiers must keep their top-1
    # decisions, and held-out accuracy (when the spec has labelled data) is the real measure.
    "int8": Tolerance(rtol=0.0, atol=0.3, floor_one=False),
}
# Share of top-1 decisions an fp16/int8 classifier must keep (fp32: all decisions whose margin
# exceeds twice the tolerance, which the element-wise bound already implies).
TOP1_MIN = {"fp32": 1.0, "fp16": 0.99, "int8": 0.9}


@dataclass
class Parity:
    """One output at one batch size: errors, the bound, and top-1 agreement for classifiers."""

    output: str
    batch: int
    max_abs_error: float
    error_vs_range: float  # max abs error / scale
    bound: float
    ok: bool
    top1_agreement: float | None = None
    top1_decisive: int | None = None
    span: float = 0.0  # max - min of the Keras output (its range)
    # fp32 over the absolute bound: Keras's own float32 noise against float64 (netspec.export.noise.rejudge)
    noise: dict[str, Any] | None = None
    at: str = ""  # the input shapes fed, when the gate feeds several (unknown dimensions proven at two sizes)

    def describe(self) -> str:
        where = f" ({self.at})" if self.at else ""
        text = (f"{self.output} @ batch {self.batch}{where}: max |error| {self.max_abs_error:.3g} "
                f"(output range {self.span:.3g}; bound {self.bound:.3g})")
        if self.noise is not None:
            text += f"; {describe_noise(self.noise)}"
        if self.top1_decisive:
            text += f", top-1 agreement {self.top1_agreement:.1%} of {self.top1_decisive}"
        elif self.top1_agreement is not None:
            text += ", top-1: no sample with a clear winner"
        return text


@dataclass
class GateResult:
    """What the gate checked and found. ``ok`` is False with ``failure`` saying why."""

    precision: Precision
    checks: list[str] = field(default_factory=list)
    parity: list[Parity] = field(default_factory=list)
    failure: str | None = None
    diverging: dict[str, Any] | None = None  # {"node": name, "max_abs_error": ..., "bound": ...} or {"node": None, "note": ...}
    # fp16/int8: {"worst", "appears", "grows": [...]} of {"node", "tensor", "sqnr_db", "drop_db"}, or {"note": ...}
    located: dict[str, Any] | None = None
    # Why a dynamic batch was proven at smaller sizes than 1 and 8 (the memory budget), None when it was not
    batch_limit: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def summary(self) -> list[str]:
        """One line per output: its worst comparison, and top-1 agreement over all of them."""
        lines = []
        for name in dict.fromkeys(p.output for p in self.parity):
            runs = [p for p in self.parity if p.output == name]
            worst = max(runs, key=lambda p: p.error_vs_range)
            where = f" ({worst.at})" if worst.at else ""
            text = (f"{name}: max |error| {worst.max_abs_error:.3g} at batch {worst.batch}{where} (output range "
                    f"{worst.span:.3g}; bound {worst.bound:.3g}; worst of {len(runs)} comparisons)")
            agreed, decisive = top1_totals(runs)
            if decisive:
                text += f", top-1 agreement {agreed / decisive:.1%} of {decisive} samples"
            elif any(p.top1_agreement is not None for p in runs):
                text += ", top-1: no sample with a clear winner"
            lines.append(text)
            scaled = [p for p in runs if p.noise is not None and "bound" in p.noise]
            if scaled:
                n = max(scaled, key=lambda p: p.noise["worst"])  # type: ignore[index]
                lines.append(f"{name}: over the absolute bound at batch "
                             f"{' and '.join(str(p.batch) for p in scaled)}, passed the {describe_noise(n.noise or {})} "
                             f"(worst, at batch {n.batch})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The gate as ``--format json`` shows it (``report.gate``)."""
        return {"ok": self.ok, "precision": self.precision, "checks": self.checks,
                "parity": [asdict(p) for p in self.parity], "failure": self.failure, "diverging": self.diverging,
                "located": self.located, "batch_limit": self.batch_limit}


def top1_totals(runs: list[Parity]) -> tuple[float, int]:
    """(decisions kept, decisions counted) over comparisons of one output."""
    kept: list[float] = []
    counted: list[int] = []
    for p in runs:
        if p.top1_decisive:
            # compare() sets top1_agreement whenever it sets top1_decisive
            assert p.top1_agreement is not None
            kept.append(p.top1_agreement * p.top1_decisive)
            counted.append(p.top1_decisive)
    return sum(kept), sum(counted)


def compare(name: str, ref: np.ndarray, got: np.ndarray, precision: str, classifier: bool) -> Parity:
    """Compare one output against its Keras reference with the precision's tolerance.

    fp32 must hold the element-wise bound everywhere. fp16 and int8 are judged by their top-1
    decisions when the output is a classifier's (aggregated over all batches by :func:`run_gate`),
    with twice the bound as a sanity cap on any element; otherwise by the bound.
    """
    tol = TOLERANCES[precision]
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    batch = int(ref.shape[0]) if ref.ndim else 1
    if ref.shape != got.shape:
        return Parity(name, batch, float("inf"), float("inf"), 0.0, False)
    atol, scale = tol.bound(ref)
    err = np.abs(got - ref)
    finite = bool(np.isfinite(got).all())
    max_err = float(err.max()) if err.size else 0.0
    within = finite and bool((err <= atol + tol.rtol * np.abs(ref)).all())
    span = float(ref.max() - ref.min()) if ref.size else 0.0
    p = Parity(name, batch, max_err, max_err / scale, atol, within, span=span)
    if classifier and ref.ndim == 2 and ref.shape[1] > 1:
        top2 = np.sort(ref, axis=1)[:, -2:]
        decisive = (top2[:, 1] - top2[:, 0]) > 2 * atol  # ties within the tolerance may flip
        agree = ref.argmax(axis=1) == got.argmax(axis=1)
        p.top1_decisive = int(decisive.sum())
        p.top1_agreement = float(agree[decisive].mean()) if p.top1_decisive else 1.0
        if precision == "fp32":
            p.ok = p.ok and p.top1_agreement == 1.0
        else:
            p.ok = finite and max_err <= 2 * atol
    return p


def run_gate(reference: Callable[[Arrays], dict], run: Callable[[Arrays], dict], batches: Sequence[Arrays],
             precision: str, classifiers: set[str], gate: GateResult,
             exact: Callable[[Arrays], dict] | None = None) -> GateResult:
    """Compare ``run`` (the export) with ``reference`` (Keras) on each input batch; fills ``gate``.

    For fp16/int8 classifiers, top-1 agreement over all batches must reach ``TOP1_MIN``. For fp32,
    an output over the absolute bound is judged again against Keras's own float32 noise when
    ``exact`` (the model in float64, :mod:`netspec.export.noise`) is given; it runs only then.
    """
    varied = [name for name in (batches[0] if batches else {})
              if len({tuple(np.shape(x[name])[1:]) for x in batches if name in x}) > 1]
    for x in batches:
        want = reference(x)
        at = ", ".join(f"{name} " + "x".join(str(d) for d in np.shape(x[name])[1:]) for name in varied)
        exact_out: dict = {}  # the float64 reference on this batch, run at most once
        try:
            got = run(x)
        except Exception as e:
            n = next(iter(x.values())).shape[0]
            gate.failure = f"the exported model failed to run at batch {n}: {exception_text(e)}"
            return gate
        for name, ref in want.items():
            if name not in got:
                gate.failure = f"the export has no output {name!r} (it has {', '.join(sorted(got))})"
                return gate
            p = compare(name, ref, got[name], precision, name in classifiers)
            if not p.ok and precision == "fp32" and exact is not None and np.isfinite(p.max_abs_error):
                exact, p = _noise_rejudge(p, x, ref, got[name], exact, exact_out, name, name in classifiers)
            p.at = at
            gate.parity.append(p)
            if not p.ok and gate.failure is None:
                gate.failure = f"output {p.describe()}"
    if gate.failure is None and precision != "fp32":
        for name in dict.fromkeys(p.output for p in gate.parity):
            agreed, decisive = top1_totals([p for p in gate.parity if p.output == name])
            share = agreed / decisive if decisive else 1.0
            if share < TOP1_MIN[precision]:
                gate.failure = (f"output {name}: top-1 agreement with Keras {share:.1%} of {int(decisive)} samples, "
                                f"under the {TOP1_MIN[precision]:.0%} required for {precision}")
    if gate.failure is None:
        sizes = sorted({next(iter(x.values())).shape[0] for x in batches})
        gate.checks.append(f"outputs match Keras ({precision} tolerance) at batch " + " and ".join(map(str, sizes)))
        scaled = sorted({p.output for p in gate.parity if p.noise is not None and "bound" in p.noise})
        if scaled:
            from .noise import K

            gate.checks[-1] += (f" (output {', '.join(scaled)} within {K:g}x Keras's own float32 error against "
                                "float64 where over the absolute bound)")
    return gate


def _noise_rejudge(p: Parity, x: Arrays, want, got, exact: Callable[[Arrays], dict], cache: dict, name: str,
                   classifier: bool) -> tuple[Callable[[Arrays], dict] | None, Parity]:
    """(``exact``, or None once it failed to run, and ``p`` judged against the float64 reference)."""
    from . import noise

    try:
        if not cache:
            cache.update(exact(x))
        value = cache[name]
    except Exception as e:  # no float64 twin (a layer without float64 kernels, over the budget): the absolute bound stands
        p.noise = {"note": exception_text(e)}
        return None, p
    return exact, noise.rejudge(p, want, got, value, classifier, TOLERANCES["fp32"].rtol)


def describe_noise(n: dict) -> str:
    """The noise-scaled bound's figures (or why they are missing) in words."""
    from .noise import describe

    return describe(n)


def exception_text(e: BaseException) -> str:
    """An exception's message on one line, at most 300 characters (converters and runtimes write pages)."""
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."


# -- runners ----------------------------------------------------------------------------------


def check_onnx(proto, gate: GateResult) -> None:
    """``onnx.checker`` with ``full_check`` (types and shapes too).

    Raises:
        ExportError: the model is invalid; the message names the ONNX node and its Keras layer.
    """
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        text = exception_text(e)
        node = re.search(r"Name: (\S+)", str(e))
        layer = layer_of(node.group(1)) if node else None
        where = f" (in layer {layer!r})" if layer else ""
        raise ExportError(f"the ONNX checker rejects the exported graph{where}: {text}") from None
    gate.checks.append("onnx.checker full_check")


def ort_session(model_bytes: bytes, gate: GateResult | None = None, threads: int = 0):
    """An onnxruntime CPU session.

    Raises:
        ExportError: onnxruntime cannot load the model.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # errors come back as exceptions
    if threads:
        opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"onnxruntime cannot load the exported model: {exception_text(e)}") from None
    if gate is not None:
        gate.checks.append(f"onnxruntime {ort.__version__} session")
    return session


def ort_runner(session) -> Callable[[Arrays], dict]:
    names = [o.name for o in session.get_outputs()]

    def run(x: Arrays) -> dict:
        return dict(zip(names, session.run(names, dict(x))))

    return run


def litert_runner(model_bytes: bytes, gate: GateResult | None = None) -> Callable[[Arrays], dict]:
    """A LiteRT interpreter's ``serving_default`` signature as a runner.

    The interpreter is ``ai_edge_litert``'s (package ``ai-edge-litert``), LiteRT's maintained
    runtime; ``tf.lite.Interpreter`` is deprecated and scheduled for deletion.

    Raises:
        ExportError: the interpreter cannot load the model.
    """
    from ai_edge_litert.interpreter import Interpreter

    from .convert import quiet_native_stderr

    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_content=model_bytes)
        runner = interpreter.get_signature_runner("serving_default")
    except Exception as e:
        raise ExportError(f"the LiteRT interpreter cannot load the exported model: {exception_text(e)}") from None
    if gate is not None:
        gate.checks.append(f"LiteRT interpreter (ai-edge-litert {litert_version()}, serving_default signature)")

    first = [True]

    def run(x: Arrays) -> dict:
        if first[0]:  # the first call creates the XNNPACK delegate, which announces itself from C++
            first[0] = False
            with quiet_native_stderr():
                return {k: np.asarray(v) for k, v in runner(**x).items()}
        return {k: np.asarray(v) for k, v in runner(**x).items()}

    return run


def litert_version() -> str:
    """The installed ``ai-edge-litert`` version (``?`` when its metadata is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "?"


def litert_op_count(model_bytes: bytes) -> int:
    """How many ops the main subgraph of a LiteRT flatbuffer has (0 when it cannot be read).

    Read from the flatbuffer with ``ai_edge_litert``'s generated schema (public), not from an
    interpreter's ``_get_ops_details`` (private): same count, no interpreter, ~50x faster.
    """
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(model_bytes, 0)
        return model.Subgraphs(0).OperatorsLength() if model.SubgraphsLength() else 0
    except Exception:
        return 0


# -- where an fp32 export diverges --------------------------------------------------------------

_SCOPE = re.compile(r"^(?:StatefulPartitionedCall/)?[^/]+/([^/]+?)(?:_\d+)?/")


def layer_of(onnx_node_name: str) -> str | None:
    """The Keras layer a tf2onnx node came from (``functional_1/conv1_1/Conv`` -> ``conv1``)."""
    m = _SCOPE.match(onnx_node_name)
    return m.group(1) if m else None


def nodes_of_layers(proto, layers: Iterable[str]) -> dict[str, list[str]]:
    """The ONNX nodes each Keras layer (spec node) in ``layers`` made, by layer name (see :func:`layer_of`)."""
    wanted = set(layers)
    out: dict[str, list[str]] = {}
    for node in proto.graph.node:
        layer = layer_of(node.name)
        if layer is not None and layer in wanted:
            out.setdefault(layer, []).append(node.name)
    return out


def first_divergence(model, proto, x: Arrays) -> dict | None:
    """The first layer (in Keras's topological order) whose output the ONNX graph does not reproduce.

    Each Keras layer's output is compared with the ONNX tensors made under its name scope (or,
    for nodes tf2onnx made without a scope, with any tensor of the same size), allowing the
    channels-first layouts tf2onnx uses inside the graph.

    Returns:
        ``{"node", "max_abs_error", "bound"}``, or None when every layer matches (or none can be compared).
    """
    import keras
    import onnx

    from ..kerasapi import inbound_nodes

    layers, tensors = [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or len(inbound_nodes(layer)) != 1:
            continue
        out = layer.output
        if isinstance(out, (list, tuple, dict)):
            continue
        layers.append(layer)
        tensors.append(out)
    if not layers:
        return None
    probe = keras.Model(model.inputs, tensors)
    args = [x[t.name] for t in model.inputs]
    ref = probe(args, training=False)
    ref = [np.asarray(r) for r in (ref if isinstance(ref, (list, tuple)) else [ref])]

    graph = onnx.ModelProto()
    graph.CopyFrom(proto)
    existing = {o.name for o in graph.graph.output}
    by_scope: dict[str, list[str]] = {}
    all_names = []
    for node in graph.graph.node:
        scope = layer_of(node.name)
        for out in node.output:
            if out and out not in existing:
                graph.graph.output.append(onnx.ValueInfoProto(name=out))
                existing.add(out)
            all_names.append(out)
            if scope:
                by_scope.setdefault(scope, []).append(out)
    session = ort_session(graph.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, dict(x))))
    tol = TOLERANCES["fp32"]
    for layer, want in zip(layers, ref):
        candidates = by_scope.get(layer.name) or [n for n in all_names if values.get(n) is not None
                                                  and np.size(values[n]) == want.size]
        errors = [e for e in (_layout_error(want, values.get(n)) for n in candidates) if e is not None]
        if not errors:
            continue
        best = min(errors)
        atol, _ = tol.bound(want)
        if best > atol + tol.rtol * float(np.abs(want).max(initial=0.0)):
            return {"node": layer.name, "max_abs_error": best, "bound": atol}
    return None


def _layout_error(want: np.ndarray, got) -> float | None:
    """Max abs difference of ``got`` against ``want`` in the same, channels-first or flat layout."""
    if got is None or np.size(got) != want.size or not np.issubdtype(np.asarray(got).dtype, np.number):
        return None
    got = np.asarray(got, dtype=np.float64)
    w = want.astype(np.float64)
    options = []
    if got.shape == w.shape:
        options.append(got)
    if w.ndim >= 3 and got.ndim == w.ndim:
        perm = (0, w.ndim - 1, *range(1, w.ndim - 1))  # NHWC -> NCHW
        if got.shape == tuple(w.shape[i] for i in perm):
            options.append(np.transpose(got, np.argsort(perm)))
    if not options:
        options.append(got.reshape(w.shape))
    return min(float(np.abs(o - w).max(initial=0.0)) for o in options)
