"""Export targets: the built-in profiles and a spec's ``export:`` section, as plain frozen data (no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..contract import fold_problem
from ..errors import ExportError, format_bytes, hint_for
from .formats import CALIBRATION_METHODS, FORMATS, FormatName, Precision, int8_option_formats, labels_with_opset

if TYPE_CHECKING:
    from ..graph import Graph
    from ..source.loader import Document

DEFAULT_OPSET = 17
OPSETS = range(13, 19)  # what tf2onnx 1.17 converts to
DEFAULT_SAMPLES = 128
# What a target may ask export to feed, checked before anything is generated or converted: TensorFlow
# crashes on a fixed batch of 10^7, and calibration samples are generated all at once.
MAX_BATCH_SIZE = 4096
MAX_SAMPLES = 10_000  # calibration runs every sample: onnxruntime and LiteRT suggest hundreds
MAX_FEED_BYTES = 1 << 30  # the inputs of one calibration set or one gate batch
GENERATED_UNKNOWN_DIM = 8  # the size generated samples give a null dimension (quantize.UNKNOWN_DIM)
_ITEMSIZE = {"float64": 8, "int64": 8, "uint64": 8, "complex64": 8, "complex128": 16, "float16": 2,
             "bfloat16": 2, "int16": 2, "uint16": 2, "int8": 1, "uint8": 1, "bool": 1, "string": 8}


class ExportSpec(Protocol):
    """What export reads of a :class:`netspec.Spec` (the facade sits above export, so export names it by shape)."""

    document: Document
    graph: Graph

    @property
    def name(self) -> str: ...

    @property
    def data(self) -> dict: ...

    @property
    def path(self) -> str | None: ...

    def section(self, key: str) -> Any: ...

    def build(self, budget: Any = None) -> Any: ...


@dataclass(frozen=True)
class Calibration:
    """Representative inputs for int8 quantization.

    Args:
        samples: how many samples calibrate the activation ranges.
        seed: the seed of generated samples.
        range: ``[low, high]`` of generated float inputs (default ``[-1, 1]``, what
            ``keras.applications`` preprocessing gives); ignored when real data is used.
        method: how activation ranges are taken from the samples, a :data:`CALIBRATION_METHODS`
            name: ``minmax`` (the observed range), ``entropy`` (the range that keeps the
            distribution's information) or ``percentile`` (the 99.999th percentile, outliers clipped).
    """

    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    range: tuple[float, float] | None = None
    method: str = "minmax"


@dataclass(frozen=True)
class Target:
    """Where and how a model is exported.

    Args:
        name: the target's name (built-in profile or ``export:`` key).
        format: a :data:`~netspec.export.formats.FORMATS` name: ``onnx`` or ``litert``.
        precision: ``fp32``, ``fp16`` (ONNX only: see ``Format.precisions``) or ``int8`` (static quantization).
        opset: the ONNX opset, 13-18 (formats with ``has_opset``).
        batch_size: a fixed batch size, or None for a dynamic batch axis.
        calibration: int8 calibration settings.
        input_shape: shapes (without batch) that fix inputs' dimensions in the exported file, by input
            name (``"*"``: the only input); the gate proves the export at them. None keeps the model's.
        per_channel: int8 weights quantized per output channel (True) or per tensor.
        keep_float: spec nodes (Keras layers) left in float in an int8 export.
        include_preprocess: the inputs' numeric ``preprocess:`` folded into the exported graph, which then
            takes raw inputs (see :mod:`netspec.export.preprocess`).
        description: one line for ``--list-targets``.
        builtin: whether this is a built-in profile.
    """

    name: str
    format: FormatName
    precision: Precision = "fp32"
    opset: int = DEFAULT_OPSET
    batch_size: int | None = None
    calibration: Calibration = field(default_factory=Calibration)
    description: str = ""
    input_shape: dict[str, tuple[int, ...]] | None = None
    per_channel: bool = True
    keep_float: tuple[str, ...] = ()
    builtin: bool = False
    include_preprocess: bool = False

    @property
    def suffix(self) -> str:
        """The output file's suffix (``.onnx``, ``.tflite``)."""
        return FORMATS[self.format].suffix

    def to_dict(self) -> dict[str, Any]:
        """The target as ``--format json`` and the exported metadata show it."""
        data = asdict(self)
        data["calibration"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data["calibration"].items()}
        if self.input_shape is None:
            del data["input_shape"]  # JSON and metadata of targets without one stay as they were
        else:
            data["input_shape"] = {k: list(v) for k, v in self.input_shape.items()}
        data["keep_float"] = list(self.keep_float)
        if not self.include_preprocess:
            del data["include_preprocess"]  # as input_shape: targets without it keep their JSON
        return data


BUILTIN: dict[str, Target] = {
    t.name: t
    for t in (
        Target("onnx-cpu", "onnx", "fp32", description="ONNX fp32, dynamic batch, for onnxruntime on CPU", builtin=True),
        Target("onnx-gpu-fp16", "onnx", "fp16",
               description="ONNX with fp16 weights and compute, fp32 inputs and outputs (CUDA/TensorRT)", builtin=True),
        Target("onnx-int8", "onnx", "int8",
               description="ONNX static int8 (QDQ, per-channel weights), calibrated on representative inputs",
               builtin=True),
        Target("litert", "litert", "fp32", description="LiteRT (TFLite) fp32, builtin ops only", builtin=True),
        Target("litert-int8", "litert", "int8",
               description="LiteRT full-integer int8 (fp32 inputs and outputs), calibrated on representative inputs",
               builtin=True),
        Target("openvino-cpu", "openvino", "fp32",
               description="OpenVINO IR (.xml + .bin) fp32, dynamic batch, for the OpenVINO CPU runtime", builtin=True),
        Target("openvino-int8", "openvino", "int8",
               description="OpenVINO IR int8 (NNCF post-training quantization), calibrated on representative inputs",
               builtin=True),
    )
}


def spec_targets(spec: ExportSpec | None) -> dict[str, Target]:
    """The targets of a spec's ``export:`` section (params interpolated), by name.

    Raises:
        ExportError: a target's fields do not fit together (located in the YAML).
    """
    out: dict[str, Target] = {}
    if spec is None:
        return out
    for name, raw in (spec.section("export") or {}).items():
        out[name] = _from_section(spec, name, raw)
    return out


def _from_section(spec: ExportSpec, name: str, raw: dict[str, Any]) -> Target:
    def fail(key: str | tuple, message: str) -> ExportError:
        path = ("export", name, *((key,) if isinstance(key, str) else key))
        return ExportError(f"export target {name!r}: {message}", path=path,
                           location=spec.document.source.value(path))

    fmt = raw["format"]
    precision = raw.get("precision", "fp32")
    form = FORMATS[fmt]
    if precision not in form.precisions:
        raise fail("precision", f"{form.label} targets are {' or '.join(form.precisions)}. "
                                f"Received: precision={precision!r}")
    if not form.has_opset and "opset" in raw:
        raise fail("opset", f"opset applies to {labels_with_opset()} targets only")
    cal = raw.get("calibration") or {}
    if isinstance(cal, str):  # ``calibration: entropy``: the method alone
        cal = {"method": cal}
    for key in ("calibration", "per_channel", "keep_float"):
        if key in raw and precision != "int8":
            raise fail(key, f"{key} applies to int8 targets only. Received: precision={precision!r}")
    for key, value, default in (("calibration", cal.get("method", "minmax"), "minmax"),
                                ("per_channel", raw.get("per_channel", True), True),
                                ("keep_float", raw.get("keep_float") or [], [])):
        if value != default and not form.int8_options:
            where = ("calibration", "method") if key == "calibration" and "method" in raw[key] else key
            raise fail(where, f"{key} applies to int8 targets of {int8_option_formats()}; the {form.label} "
                              f"converter {form.int8_fixed}")
    for i, node in enumerate(raw.get("keep_float") or []):
        if spec.graph.node(node) is None:
            names = [n.name for n in spec.graph.nodes]
            raise ExportError(f"export target {name!r}: keep_float names no node of the spec. Received: {node!r}",
                              path=("export", name, "keep_float", i), hint=hint_for(node, names),
                              location=spec.document.source.value(("export", name, "keep_float", i)))
    low_high = cal.get("range")
    if low_high is not None and not low_high[0] < low_high[1]:
        raise fail("calibration", f"calibration.range must be [low, high] with low < high. Received: {low_high}")
    # JSON Schema counts 4.0 as an integer; numpy and TensorFlow do not.
    calibration = Calibration(samples=_int(cal.get("samples", DEFAULT_SAMPLES)), seed=_int(cal.get("seed", 0)),
                              range=tuple(low_high) if low_high is not None else None,
                              method=cal.get("method", "minmax"))
    target = Target(name, fmt, precision, opset=_int(raw.get("opset", DEFAULT_OPSET)),
                    batch_size=_int(raw.get("batch_size")), calibration=calibration,
                    description=raw.get("description", ""), input_shape=_input_shape(raw, spec.graph.inputs, fail),
                    per_channel=raw.get("per_channel", True), keep_float=tuple(raw.get("keep_float") or ()),
                    include_preprocess=bool(raw.get("include_preprocess", False)))
    if target.include_preprocess and not any(getattr(d, "preprocess", None) for d in spec.graph.inputs):
        raise fail("include_preprocess", "include_preprocess folds the inputs' preprocess: into the exported "
                   "model, and no input declares one")
    for d in spec.graph.inputs if target.include_preprocess else ():
        unfoldable = fold_problem(d.preprocess) if d.preprocess is not None else None
        if unfoldable is not None:
            raise fail("include_preprocess", f"input {d.name!r}: {unfoldable}")
    problem = feed_problem(target, spec.graph.inputs)
    if problem is not None:
        where_in, message = problem
        if where_in == ("calibration", "samples") and "samples" not in cal:  # the default count: blame the int8
            where_in = ("calibration",) if "calibration" in raw else ("precision",)
        raise fail(where_in, message)
    return target


def _input_shape(raw: dict[str, Any], inputs, fail) -> dict[str, tuple[int, ...]] | None:
    """A target's ``input_shape:`` (a shape for the only input, or shapes by input name), checked against the inputs."""
    given = raw.get("input_shape")
    if given is None:
        return None
    decls = {d.name: d for d in inputs}
    if isinstance(given, list):
        if len(decls) != 1:
            raise fail("input_shape", f"the spec has {len(decls)} inputs ({', '.join(decls)}): give input_shape by "
                                      "input name ({name: [dims]})")
        given = {next(iter(decls)): given}
    out = {}
    for key, shape in given.items():
        where = ("input_shape",) if isinstance(raw["input_shape"], list) else ("input_shape", key)
        if key not in decls:
            raise fail(where, f"input_shape names {key!r}, which is not an input; inputs: {', '.join(decls)}")
        shape = tuple(_int(d) for d in shape)
        declared = decls[key].shape
        if len(shape) != len(declared) or any(d is not None and d != g for d, g in zip(declared, shape)):
            shown = ", ".join("null" if d is None else str(d) for d in declared)
            raise fail(where, f"input_shape of input {key!r} must fill its null dimensions and keep the others: "
                              f"its shape is [{shown}]. Received: {list(shape)}")
        out[key] = shape
    return out


def _int(value):
    return int(value) if isinstance(value, float) else value


def sample_bytes(inputs, fixed: dict[str, tuple[int, ...]] | None = None) -> int:
    """Bytes of one sample of the declared inputs, null dimensions at the size export feeds first.

    That is the target's ``input_shape`` (``fixed``), else the input's ``example_shape``, else
    :data:`GENERATED_UNKNOWN_DIM` (the spec's data, read only at export, may set other sizes).

    Args:
        inputs: the spec's :class:`~netspec.graph.InputDecl` list (shape without batch, dtype).
        fixed: a target's ``input_shape`` by input name.
    """
    total = 0
    for decl in inputs:
        n = _ITEMSIZE.get(decl.dtype, 4)
        name = getattr(decl, "name", None)  # test doubles and bare declarations may have no name
        given = (fixed or {}).get(name) if name is not None else None
        shape = given or getattr(decl, "example_shape", None) or decl.shape
        for d in shape:
            n *= GENERATED_UNKNOWN_DIM if d is None else d
        total += n
    return total


def feed_problem(target: Target, inputs) -> tuple[tuple, str] | None:
    """Why ``target`` would feed export more input than :data:`MAX_FEED_BYTES`, or None.

    Returns:
        ``(key path inside the target, message)``: the fixed batch, or int8 calibration samples.
    """
    per = sample_bytes(inputs, target.input_shape)
    if target.batch_size is not None and target.batch_size * per > MAX_FEED_BYTES:
        return ("batch_size",), (f"a batch of {target.batch_size:,} samples of {format_bytes(per)} is "
                                 f"{format_bytes(target.batch_size * per)} of input; export feeds at most "
                                 f"{format_bytes(MAX_FEED_BYTES)} at once")
    samples = target.calibration.samples
    if target.precision == "int8" and samples * per > MAX_FEED_BYTES:
        return ("calibration", "samples"), (f"calibration with {samples:,} samples of {format_bytes(per)} is "
                                            f"{format_bytes(samples * per)} of input; export generates at most "
                                            f"{format_bytes(MAX_FEED_BYTES)}; lower calibration.samples")
    return None


def all_targets(spec: ExportSpec | None = None) -> dict[str, Target]:
    """Built-in profiles, then the spec's own targets (which may reuse a built-in name to override it)."""
    return {**BUILTIN, **spec_targets(spec)}


def get_target(name: str, spec: ExportSpec | None = None) -> Target:
    """A target by name: the spec's ``export:`` section first, then the built-in profiles.

    Raises:
        ExportError: no target has that name; the message lists them with a did-you-mean.
    """
    targets = all_targets(spec)
    if name in targets:
        return targets[name]
    raise ExportError(f"unknown export target {name!r}; targets: {', '.join(targets)}",
                      hint=hint_for(name, targets))


def with_overrides(target: Target, *, opset: int | None = None, batch_size: int | None | str = "keep",
                   input_shape: dict[str, tuple[int, ...]] | None = None,
                   calibration: str | None = None, per_channel: bool | None = None,
                   keep_float: list[str] | None = None, include_preprocess: bool | None = None) -> Target:
    """The target with command-line overrides (``--opset``, ``--batch-size``, ``--input-shape``, and the
    int8 options ``--calibration``, ``--per-channel``/``--no-per-channel``, ``--keep-float``).

    Names in ``keep_float`` are checked against the model by the export (a spec's nodes or a
    ``.keras`` file's layers).
    """
    changes: dict[str, Any] = {}
    if include_preprocess is not None:
        changes["include_preprocess"] = include_preprocess
    if input_shape:
        changes["input_shape"] = dict(input_shape)
    int8 = {"--calibration": calibration, "--per-channel": per_channel, "--keep-float": keep_float}
    for option, value in int8.items():
        if value is None:
            continue
        if target.precision != "int8":
            raise ExportError(f"{option} applies to int8 targets; {target.name!r} is {target.precision}")
        if not FORMATS[target.format].int8_options:
            raise ExportError(f"{option} applies to int8 targets of {int8_option_formats()}; the "
                              f"{FORMATS[target.format].label} converter {FORMATS[target.format].int8_fixed}")
    if calibration is not None:
        if calibration not in CALIBRATION_METHODS:
            raise ExportError(f"--calibration must be {' | '.join(CALIBRATION_METHODS)}. Received: {calibration!r}",
                              hint=hint_for(calibration, list(CALIBRATION_METHODS)))
        changes["calibration"] = replace(target.calibration, method=calibration)
    if per_channel is not None:
        changes["per_channel"] = per_channel
    if keep_float is not None:
        changes["keep_float"] = tuple(dict.fromkeys(keep_float))
    if opset is not None:
        if not FORMATS[target.format].has_opset:
            raise ExportError(f"--opset applies to {labels_with_opset()} targets; {target.name!r} is {target.format}")
        if opset not in OPSETS:
            raise ExportError(f"--opset must be {OPSETS.start}-{OPSETS.stop - 1} (what tf2onnx 1.17 converts). "
                              f"Received: {opset}")
        changes["opset"] = opset
    if batch_size != "keep":
        # "keep" is the only string: the CLI passes an int from --batch-size, or None for 'dynamic'
        assert not isinstance(batch_size, str), batch_size
        if batch_size is not None and not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ExportError(f"--batch-size must be 1-{MAX_BATCH_SIZE} or 'dynamic'. Received: {batch_size}")
        changes["batch_size"] = batch_size
    return replace(target, **changes) if changes else target


def describe_targets(spec: ExportSpec | None = None) -> str:
    """The text of ``netspec export --list-targets``."""
    rows = []
    for t in all_targets(spec).values():
        origin = "built-in" if t.builtin else "spec"
        batch = "dynamic" if t.batch_size is None else str(t.batch_size)
        opset = str(t.opset) if FORMATS[t.format].has_opset else "-"
        rows.append((t.name, t.format, t.precision, opset, batch, origin, t.description))
    head = ("target", "format", "precision", "opset", "batch", "from", "description")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(6)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head[:6], widths)) + "  " + head[6]]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:6], widths)) + "  " + r[6] for r in rows]
    return "\n".join(line.rstrip() for line in lines)
