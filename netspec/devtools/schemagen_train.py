"""Schema defs for the ``train:`` and ``export:`` sections, and for the Keras objects ``train:`` names.

Each whitelisted optimizer, schedule, loss, metric and callback (``netspec.train.names``) gets a closed
def typed from its Keras constructor, so ``netspec validate`` reports an unknown or mistyped argument
at its YAML line without Keras.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..schema.derive import classes as K
from ..export import formats as F, targets as T
from ..train import names as N
from ..schema.derive.args import arg_property
from ..schema.derive.types import BOOL, ENUM, INT, INTERP, LIST, NAME, NULL, NUM, STR, described, obj, ref, with_interp

# ---------------------------------------------------------------------------------------------
# The train and export sections.


def _data_properties() -> dict:
    columns = {"anyOf": [STR[0], {"type": "array", "items": STR[0], "minItems": 1}]}
    by_name = {"type": "object", "propertyNames": NAME, "additionalProperties": columns, "minProperties": 1}
    return {
        "source": with_interp(ENUM("csv", "dataset", "image_dir", "npz")),
        "path": described(STR[0], "The data file or directory, relative to the spec."),
        "name": described(STR[0], "A dataset shipped with netspec (source: dataset): `digits`."),
        "x": described({"anyOf": [columns, by_name]}, "npz key or csv columns; a mapping by input name."),
        "y": described({"anyOf": [columns, by_name]}, "npz key or csv columns; a mapping by output name."),
        "classes": described({"type": "array", "items": STR[0], "minItems": 1, "uniqueItems": True},
                             "image_dir: the class folders, in label order; default: all, sorted."),
        "delimiter": described(with_interp([{"type": "string", "minLength": 1, "maxLength": 1}]),
                               "csv: the field delimiter; default `,`."),
        "shuffle": with_interp(BOOL),
        "cache": with_interp(BOOL),
    }


def train_def() -> dict:
    loss = ref("loss")
    metric_list = {"type": "array", "items": ref("metric")}
    by_output = {"type": "object", "propertyNames": NAME, "minProperties": 1}
    data = _data_properties()
    validation = obj(dict(data), description="Validation data, same fields as `data`; default source: data's.")
    data_def = obj({**data, "validation_split": with_interp([{"type": "number", "exclusiveMinimum": 0,
                                                              "exclusiveMaximum": 1}]),
                    "validation": validation}, ["source"], "Where the training data comes from.")
    checkpoint = obj({"monitor": described(STR[0], "The logged quantity that picks the best model; "
                                           "default `val_loss` (`loss` without validation data)."),
                      "mode": with_interp(ENUM("auto", "max", "min"))},
                     description="How the run directory's best model is chosen.")
    return obj(
        {
            "data": data_def,
            "batch_size": with_interp(INT(1)),
            "epochs": with_interp(INT(1)),
            "steps_per_epoch": with_interp(INT(1) + NULL),
            "optimizer": described(ref("optimizer"), "An optimizer name or {type: Adam, learning_rate: ...}."),
            "loss": described({"anyOf": [loss, {**by_output, "additionalProperties": loss}]},
                              "A loss, or a mapping output_name: loss."),
            "loss_weights": {"anyOf": [LIST(NUM(0))[0], {**by_output, "additionalProperties": with_interp(NUM(0))}]},
            "metrics": described(
                {"anyOf": [metric_list, {**by_output, "additionalProperties": {"anyOf": [ref("metric"), metric_list]}}]},
                "A list of metrics, or a mapping output_name: [metrics].",
            ),
            "callbacks": {"type": "array", "items": ref("callback")},
            "checkpoint": checkpoint,
            "seed": with_interp(INT(0)),
            "mixed_precision": described(with_interp(BOOL + ENUM("mixed_bfloat16", "mixed_float16")),
                                         "Keras mixed precision: true is `mixed_float16` (float16 compute, float32 variables)."),
            "distribute": with_interp(ENUM("mirrored", "multi_worker", "none")),
        },
        description="How `netspec train` trains this model.",
    )


SIZES = {"type": "array", "items": with_interp(INT(1)), "minItems": 1}


def export_target_def() -> dict:
    method = described(with_interp(ENUM(*F.CALIBRATION_METHODS)),
                       "How activation ranges are taken from the samples (onnxruntime's CalibrationMethod): "
                       "`minmax` (default), `entropy` or `percentile`. ONNX int8 targets.")
    calibration = obj(
        {
            "samples": described(with_interp(INT(1, T.MAX_SAMPLES)), "How many samples calibrate the activation "
                                 f"ranges; default {T.DEFAULT_SAMPLES}."),
            "seed": with_interp(INT(0)),
            # Bounded so that generated float32 inputs (and the width high - low) stay finite.
            "range": described({"type": "array", "items": NUM(-1e30, 1e30)[0], "minItems": 2, "maxItems": 2},
                               "[low, high] of generated float inputs; default [-1, 1]."),
            "method": method,
        },
        description="Representative data for int8 quantization: the spec's training data when it has some, "
                    "else inputs generated from the declared inputs.",
    )
    return obj(
        {
            "format": with_interp(ENUM(*F.FORMATS)),
            "opset": described(with_interp(INT(13, 18)), "ONNX opset."),
            "precision": with_interp(ENUM(*(p for f in F.FORMATS.values() for p in f.precisions))),
            "batch_size": described(with_interp(INT(1, T.MAX_BATCH_SIZE) + NULL),
                                    "A fixed batch size; null keeps it dynamic."),
            "calibration": described({"anyOf": [*method["anyOf"], calibration]},
                                     "int8 calibration: its settings, or the method alone (`calibration: entropy`)."),
            "per_channel": described(with_interp(BOOL), "int8 weights per output channel (default true) or "
                                     "per tensor. ONNX int8 targets."),
            "keep_float": described({"type": "array", "items": NAME, "uniqueItems": True},
                                    "Spec nodes left in float in an int8 export (their ONNX nodes are not "
                                    "quantized). ONNX int8 targets."),
            "input_shape": described(
                {"anyOf": [SIZES, {"type": "object", "propertyNames": NAME, "additionalProperties": SIZES,
                                   "minProperties": 1}, INTERP]},
                "Fixes inputs' dimensions (without batch) in the exported file, and the gate proves the export "
                "at them: a shape for a model with one input, or {input: shape}. `--input-shape` overrides it."),
            "include_preprocess": described(with_interp(BOOL), "Fold the inputs' numeric `preprocess:` (cast, "
                                            "rescale, mean/std) into the exported model, which then takes raw "
                                            "inputs (uint8 images); the gate proves raw input -> output."),
            "description": STR[0],
        },
        ["format"],
        "An export target, verified against the Keras model before it is reported as written.",
    )


# ---------------------------------------------------------------------------------------------
# The objects the train section names.

# Arguments the generic rules cannot type, by "Class.arg" or "*.arg" (checked before schemagen_args's).
OVERRIDES: dict[str, list[dict]] = {
    "*.learning_rate": NUM(0) + [{"$ref": "#/$defs/lrSchedule"}],
    "*.clipnorm": NUM(0) + NULL,
    "*.clipvalue": NUM(0) + NULL,
    "*.global_clipnorm": NUM(0) + NULL,
    "*.ema_overwrite_frequency": INT(1) + NULL,
    "*.gradient_accumulation_steps": INT(1) + NULL,
    "*.ignore_class": INT() + NULL,
    "*.thresholds": NUM(0, 1) + LIST(NUM(0, 1), min_items=1) + NULL,
    "*.threshold": NUM(0, 1) + NULL,
    "*.class_id": INT(0) + NULL,
    "*.top_k": INT(1) + NULL,
    "*.num_classes": INT(1),
    "*.target_class_ids": LIST(INT(0), min_items=1),
    "*.average": ENUM("macro", "micro", "weighted") + NULL,
    "*.recall": NUM(0, 1),
    "*.precision": NUM(0, 1),
    "*.sensitivity": NUM(0, 1),
    "*.specificity": NUM(0, 1),
    "AUC.num_labels": INT(1) + NULL,
    "AUC.label_weights": LIST(NUM(0), min_items=1) + NULL,
    "EarlyStopping.baseline": NUM() + NULL,
    "*.monitor": STR,
    "*.mode": ENUM("auto", "max", "min"),
    "*.verbose": INT(0, 1),
    "InverseTimeDecay.decay_steps": NUM(0, None),
    "InverseTimeDecay.decay_rate": NUM(0),
    "PiecewiseConstantDecay.boundaries": LIST(INT(0), min_items=1),
    "PiecewiseConstantDecay.values": LIST(NUM(0), min_items=2),
    "*.min_delta": NUM(0),
    "*.patience": INT(0),
    "*.cooldown": INT(0),
    "*.start_from_epoch": INT(0),
    "*.min_lr": NUM(0),
    "ReduceLROnPlateau.factor": NUM(0, 1),
    "*.label_smoothing": NUM(0, 1),
    "*.decay_steps": INT(1),
    "*.first_decay_steps": INT(1),
    "*.weight_decay": NUM(0) + NULL,
    "*.ema_momentum": NUM(0, 1),
    "*.beta_1": NUM(0, 1),
    "*.beta_2": NUM(0, 1),
    "*.k": INT(1),
    "*.num_thresholds": INT(2),
    "*.reduction": ENUM("mean", "mean_with_sample_weight", "none", "sum", "sum_over_batch_size") + NULL,
}
# Arguments a spec cannot set: netspec owns them, or they take Python objects.
OMITTED = {"*.loss_scale_factor", "*.fn"}
KINDS = {
    "optimizer": ("optimizers", N.OPTIMIZERS),
    "lrSchedule": ("optimizers.schedules", N.LR_SCHEDULES),
    "loss": ("losses", N.LOSSES),
    "metric": ("metrics", N.METRICS),
    "callback": ("callbacks", N.CALLBACKS),
}


class TrainCollector:
    """Types constructor arguments with this module's overrides first, then schemagen_args's rules."""

    def __init__(self, collector) -> None:
        self.base = collector  # schemagen_nodes.ArgCollector

    def arg(self, owner: str, name: str, default: Any, doc: str, cls: type | None = None) -> dict:
        found = OVERRIDES.get(f"{owner}.{name}", OVERRIDES.get(f"*.{name}"))
        if found is None:
            return self.base.arg(owner, name, default, doc, cls)
        return arg_property(found, default, doc)

    def class_def(self, kind: str, cls: type, path: str) -> dict:
        named, _ = K.constructor_args(cls)
        docs = K.doc_args(cls)
        properties: dict = {"type": {"const": cls.__name__}}
        required = ["type"]
        for p in named:
            omitted = {f"*.{p.name}", f"{cls.__name__}.{p.name}"} & OMITTED
            if omitted or (p.name == "name" and kind != "metric"):
                continue
            if p.name == "name":  # a metric's name is its log key (what a monitor names)
                from ..kerasapi import snake_case as to_snake_case  # Keras's own default for name=None

                properties["name"] = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                                      "default": p.default or to_snake_case(cls.__name__),
                                      "description": "The name it is logged under."}
                continue
            default = p.default
            properties[p.name] = self.arg(cls.__name__, p.name, default, docs.get(p.name, ""), cls)
            if default is inspect.Parameter.empty:
                required.append(p.name)
        return {
            "type": "object",
            "description": K.summary(cls),
            "x-netspec-class": path,
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }


def _strings(kind: str) -> list[str]:
    if kind == "optimizer":
        return sorted(N.OPTIMIZER_STRINGS) + list(N.OPTIMIZERS)
    if kind == "loss":
        return sorted(N.LOSS_STRINGS) + list(N.LOSSES)
    if kind == "metric":
        return sorted(N.METRIC_STRINGS)
    if kind == "callback":
        return ["TerminateOnNaN"]
    return []  # a schedule always needs arguments


def train_object_defs(collector) -> dict:
    """``<kind>`` and ``<kind>.<Class>`` defs for every train object kind.

    Args:
        collector: schemagen's argument collector (its rules type the arguments no override covers).
    """
    import importlib

    train = TrainCollector(collector)
    defs: dict = {}
    for kind, (module_name, names) in KINDS.items():
        module = importlib.import_module(f"keras.{module_name}")
        for name in names:
            defs[f"{kind}.{name}"] = train.class_def(kind, getattr(module, name), f"keras.{module_name}.{name}")
        # Names are identifiers here, with the whitelist offered for completion; netspec checks them
        # against the whitelist itself, so that the message can say why a Keras name is refused.
        typed = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": _named(list(names))},
            "allOf": [{"if": {"required": ["type"], "properties": {"type": {"const": n}}},
                       "then": {"$ref": f"#/$defs/{kind}.{n}"}} for n in names],
        }
        strings = _strings(kind)
        defs[kind] = {"anyOf": [_named(strings), typed] if strings else [typed],
                      "description": f"A whitelisted Keras {kind}: a name, or {{type: <class>, ...its args}}."}
    return defs


def _named(suggestions: list[str]) -> dict:
    return {"anyOf": [{"enum": suggestions}, {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}]}
