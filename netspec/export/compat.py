"""Export compatibility from the spec alone (no TensorFlow): what a target refuses or netspec rewrites, by YAML line.

The tables below are data, measured on this stack (keras 3.15, tf2onnx 1.17, onnxruntime 1.31,
TF Lite 2.21, OpenVINO 2026.4) by tests/test_export_layers.py, which exports every other layer kind
and checks that each refusal here is real (OpenVINO: every layer group of tests/export_cases.py
passed its gate when this table was written; tests/test_export_openvino.py keeps a refusal real).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal

from ..errors import Location
from .formats import FORMATS

Action = Literal["refused", "rewritten"]

# Random augmentation layers are identities at inference. Keras 3.15 traces them to identities at
# training=False (older versions left their random ops in the graph); netspec leaves them out of
# the exported graph all the same, so no version's random ops can reach it.
AUGMENTATION = frozenset(
    "AugMix CutMix MixUp RandAugment RandomBrightness RandomColorDegeneration RandomColorJitter "
    "RandomContrast RandomElasticTransform RandomErasing RandomFlip RandomGaussianBlur RandomGrayscale "
    "RandomHue RandomInvert RandomPerspective RandomPosterization RandomRotation RandomSaturation "
    "RandomSharpness RandomShear RandomTranslation RandomZoom".split()
)

# Layers export_rewrites() rewrites, by class: the REWRITES entry that enables each, and what it does.
# Normalization keeps its mean and variance as eager tensors, which a traced function captures as
# extra inputs (tf2onnx leaves them as graph inputs nobody feeds); the rewrite makes them constants.
LAYER_REWRITES: dict[str, tuple[str, str]] = {
    "Normalization": ("normalization", "its mean and variance are exported as constants: (x - mean) / "
                      "max(sqrt(variance), epsilon), or mean + x * max(sqrt(variance), epsilon) with invert"),
}

# What export_rewrites() may change, per format (``Format.rewrites``).
REWRITES: dict[str, frozenset[str]] = {name: f.rewrites for name, f in FORMATS.items()}

# Expression functions export_rewrites() replaces, and the REWRITES entry that enables each.
EXPRESSION_REWRITES = {"activations.gelu": "gelu", "ops.gelu": "gelu", "activations.celu": "celu", "ops.celu": "celu"}

_STRINGS = ("works on strings, which neither ONNX (through tf2onnx) nor LiteRT builtins nor OpenVINO's converter take; "
            "preprocess outside the model")
_RNN = ("its loop over time uses TensorList ops, which LiteRT builtins lack (they need the Flex delegate); "
        "export to ONNX, which takes it")
_LOOKUP = "holds a lookup table (a TensorFlow hash table), which the converters do not take; map ids outside the model"

# layer type -> {format: reason}; "*" means every format.
LAYERS: dict[str, dict[str, str]] = {
    "TextVectorization": {"*": _STRINGS},
    "StringLookup": {"*": _STRINGS},
    "Hashing": {"*": "hashes with FarmHash (Fingerprint64), which ONNX, LiteRT and OpenVINO lack; hash outside the model"},
    "HashedCrossing": {"*": "hashes with FarmHash (Fingerprint64), which ONNX, LiteRT and OpenVINO lack; hash outside "
                            "the model"},
    "IntegerLookup": {"*": _LOOKUP},
    "Discretization": {"onnx": "uses Bucketize, which ONNX lacks; bucketize outside the model (LiteRT takes it)",
                       "openvino": "uses Bucketize with float boundaries, which OpenVINO's converter fails on; "
                                   "bucketize outside the model or export to LiteRT"},
    "Equalization": {"*": "Keras 3.15 cannot trace it into a functional graph (its symbolic output is its "
                     "input: a cycle); equalize outside the model"},
    "MelSpectrogram": {"onnx": "uses an FFT (RFFT), which tf2onnx 1.17 does not convert (LiteRT takes it)"},
    "CategoryEncoding": {"litert": "uses DenseBincount, which LiteRT builtins lack; encode outside the model "
                         "or export to ONNX",
                         "openvino": "uses DenseBincount, which OpenVINO's converter has no rule for; encode outside "
                                     "the model or export to ONNX"},
    **{t: {"litert": "3-D pooling (MaxPool3D/AvgPool3D) is not a LiteRT builtin; export to ONNX"}
       for t in ("MaxPooling3D", "MaxPool3D", "AveragePooling3D", "AvgPool3D", "AdaptiveAveragePooling3D",
                 "AdaptiveMaxPooling3D")},
    **{t: {"litert": _RNN} for t in ("SimpleRNN", "GRU", "LSTM", "RNN", "Bidirectional", "ConvLSTM1D",
                                     "ConvLSTM2D", "ConvLSTM3D")},
}


@dataclass(frozen=True)
class ArgRule:
    """A layer argument value (``activation: gelu``) that a format refuses or netspec rewrites."""

    arg: str
    value: Any
    formats: tuple[str, ...]
    action: Action
    reason: str
    layers: frozenset[str] | None = None  # None: any layer with this argument


ARGS: tuple[ArgRule, ...] = (
    *(ArgRule(arg, "gelu", ("onnx",), "rewritten",
              "exact gelu emits Erfc, which ONNX lacks; exported as 0.5*x*(1+erf(x/sqrt(2))) (error ~1e-7)")
      for arg in ("activation", "recurrent_activation")),
    *(ArgRule(arg, "celu", ("onnx",), "rewritten",
              "celu emits Expm1, which ONNX lacks; exported as max(0,x)+min(0,alpha*(exp(x/alpha)-1)) (error ~1e-7)")
      for arg in ("activation", "recurrent_activation")),
    ArgRule("interpolation", "bicubic", ("onnx",), "refused",
            "bicubic resizing converts but differs from TensorFlow by ~3e-3, over the fp32 tolerance; "
            "use bilinear (~4e-6) or nearest (exact)", frozenset({"Resizing", "UpSampling2D"})),
)


@dataclass(frozen=True)
class Finding:
    """One thing a target cannot take (``refused``) or that netspec changes on export (``rewritten``)."""

    action: Action
    node: str
    message: str
    path: tuple
    location: Location

    def __str__(self) -> str:
        return f"{self.location}: {self.action}: node {self.node!r}: {self.message}"

    def to_dict(self) -> dict:
        return {"action": self.action, "node": self.node, "message": self.message,
                "file": self.location.file, "line": self.location.line, "column": self.location.column}


def layer_refusal(layer_type: str, fmt: str) -> str | None:
    """Why ``fmt`` refuses a layer type, or None."""
    reasons = LAYERS.get(layer_type, {})
    return reasons.get(fmt) or reasons.get("*")


def check(spec, fmt: str) -> list[Finding]:
    """Everything in ``spec`` that ``fmt`` refuses or that netspec rewrites, in YAML order.

    A node written once in a block but instantiated many times is reported once.
    """
    from ..expressions.check import export_caveats

    src = spec.document.source
    found: dict[tuple, Finding] = {}

    def add(action: Action, node, message: str, path: tuple, location: Location) -> None:
        found.setdefault((location.line, location.column, message), Finding(action, node.name, message, path, location))

    for node in spec.graph.nodes:
        if node.kind == "expr":
            path = node.path + ("expr",)
            for offset, message in export_caveats(node.expr):
                qual = message.partition(":")[0]
                if not FORMATS[fmt].expression_caveats:  # the expression table's caveats are about tf2onnx
                    continue
                if EXPRESSION_REWRITES.get(qual) in REWRITES[fmt]:
                    form = "0.5*x*(1+erf(x/sqrt(2)))" if "gelu" in qual else "max(0,x)+min(0,alpha*(exp(x/alpha)-1))"
                    add("rewritten", node, f"{qual}: exported as {form}", path, src.inside(path, offset))
                else:
                    add("refused", node, message, path, src.inside(path, offset))
        elif node.kind == "layer":
            for sub_path, layer_type, args in _layers(node.type, node.args, ()):
                path = node.path + sub_path
                reason = layer_refusal(layer_type, fmt)
                if reason:
                    add("refused", node, f"{layer_type} {reason}", path + ("type",), src.value(path + ("type",)))
                elif layer_type in LAYER_REWRITES and LAYER_REWRITES[layer_type][0] in REWRITES[fmt]:
                    add("rewritten", node, f"{layer_type}: {LAYER_REWRITES[layer_type][1]}",
                        path + ("type",), src.value(path + ("type",)))
                elif layer_type in AUGMENTATION and "augmentation" in REWRITES[fmt]:
                    add("rewritten", node, f"{layer_type} is an identity at inference; left out of the exported graph",
                        path + ("type",), src.value(path + ("type",)))
                for rule in ARGS:
                    if fmt in rule.formats and args.get(rule.arg) == rule.value and \
                            (rule.layers is None or layer_type in rule.layers):
                        loc = src.value(path + (rule.arg,))
                        add(rule.action, node, f"{rule.arg}: {rule.value}: {rule.reason}", path + (rule.arg,), loc)
    return sorted(found.values(), key=lambda f: (f.location.line, f.location.column))


def _layers(layer_type: str, args: dict, path: tuple) -> Iterator[tuple[tuple, str, dict]]:
    """The node's layer and the layers in its ``layer:``/``cell:``-style arguments (wrappers)."""
    yield path, layer_type, args
    for key, value in args.items():
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            yield from _layers(value["type"], {k: v for k, v in value.items() if k != "type"}, path + (key,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, dict) and isinstance(v.get("type"), str):
                    yield from _layers(v["type"], {k: w for k, w in v.items() if k != "type"}, path + (key, i))


def summary(findings: list[Finding], target_name: str) -> str:
    """Text for ``netspec validate --target``."""
    refused = [f for f in findings if f.action == "refused"]
    lines = [str(f) for f in findings]
    rewritten = len(findings) - len(refused)
    tail = (f"target {target_name!r}: {len(refused)} refused, {rewritten} rewritten" if findings
            else f"target {target_name!r}: nothing to refuse or rewrite")
    return "\n".join([*lines, tail])
