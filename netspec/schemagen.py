"""Generates the JSON Schema of the spec language (schemas/netspec.schema.json) from the installed Keras."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from netspec import schemagen_keras as K
from netspec.schemagen_keras import BOOL, ENUM, INT, INTERP, LIST, NULL, NUM, STR, with_interp
from netspec.schemagen_train import train_object_defs

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:netspec:schema:1"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "schemas" / "netspec.schema.json"

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
INTERP_PATTERN = r"^\$([A-Za-z_][A-Za-z0-9_]*|\{.+\})$"
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.([0-9]+|[A-Za-z_][A-Za-z0-9_]*))?$"
# A ref written with `${...}` inside it ("branch_${i}"): its final form is checked once resolved.
TEMPLATE_PATTERN = r"^[A-Za-z0-9_.]*(\$\{[^{}]+\}[A-Za-z0-9_.]*)+$"
EXPR_MAX_LENGTH = 2000


def ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def obj(properties: dict, required: Sequence[str] = (), description: str | None = None, **extra: Any) -> dict:
    """A closed object schema (additionalProperties false unless ``extra`` says otherwise)."""
    out: dict = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def described(schema: dict, description: str) -> dict:
    return {**schema, "description": description}


ANY_JSON: dict = {}
NAME = ref("name")
SHAPE = {"type": "array", "items": with_interp(INT(1) + NULL)}
NODE_KEYS = ("name", "in", "repeat", "when", "else", "input_spec")


# ---------------------------------------------------------------------------------------------
# Names, refs, inputs and the keys every node may carry.


def basic_defs(tensor_dtypes: list[str], policies: list[str]) -> dict:
    return {
        "name": {"type": "string", "pattern": NAME_PATTERN, "description": "An input, node, block or param name."},
        "interp": {
            "type": "string",
            "pattern": INTERP_PATTERN,
            "description": "A whole-value `$param` or `${expr}`; takes the type of the value.",
            "x-netspec-noun": "a $param or ${expr}",
        },
        "ref": {
            "anyOf": [
                {"type": "string", "pattern": REF_PATTERN},
                INTERP,
                {"type": "string", "pattern": TEMPLATE_PATTERN},
            ],
            "description": "An input or node name, or `name.K` / `name.out_name` for one output of a "
            "multi-output node or block.",
        },
        "refs": {
            "anyOf": [
                ref("ref"),
                {"type": "array", "items": ref("ref"), "minItems": 1},
                {"type": "object", "propertyNames": NAME, "additionalProperties": ref("ref"), "minProperties": 1},
            ],
            "description": "A ref, a list of refs, or a mapping name: ref.",
        },
        "input": {
            "anyOf": [
                described(SHAPE, "Shorthand: the shape, without the batch dimension."),
                obj(
                    {
                        "shape": described(with_interp([SHAPE]), "The shape without the batch dimension; "
                                           "null is an unknown dimension."),
                        "dtype": described(with_interp([ref("dtype")]), "Defaults to float32."),
                        "batch_size": with_interp(INT(1) + NULL),
                        "sparse": with_interp(BOOL),
                        "optional": with_interp(BOOL),
                    },
                    required=["shape"],
                ),
                INTERP,
            ],
            "description": "A model or block input: its shape, or {shape, dtype, batch_size, sparse, optional}.",
        },
        "dtype": {"enum": tensor_dtypes, "description": "A tensor dtype."},
        "dtypePolicy": {"enum": policies, "description": "A layer dtype policy: a dtype or a mixed policy."},
        "nodeName": described(NAME, "A unique name; default: the snake-case of the type (`conv2d`, `conv2d_1`)."),
        "nodeIn": described(ref("refs"), "The node's inputs; default: the previous node's output."),
        "repeat": described(with_interp(INT(0)), "Apply the node N times in a chain; `${i}` is the index."),
        "when": described(with_interp(BOOL), "When false the node is left out and passes its input through."),
        "else": described(ref("ref"), "What a left-out node (`when: false`) passes through."),
        "inputSpec": obj(
            {
                "dtype": with_interp([ref("dtype")]),
                "shape": with_interp([SHAPE]),
                "ndim": with_interp(INT(0)),
                "min_ndim": with_interp(INT(0)),
                "max_ndim": with_interp(INT(0)),
                "axes": {
                    "type": "object",
                    "propertyNames": {"pattern": r"^-?[0-9]+$"},
                    "additionalProperties": with_interp(INT(1)),
                },
                "allow_last_axis_squeeze": with_interp(BOOL),
            },
            description="Constraints on the node's input, as in `keras.InputSpec` (shape includes the batch).",
        ),
        "outputShape": described(
            with_interp([SHAPE]),
            "The expected output shape of an `expr` node, without the batch dimension.",
        ),
    }


def node_key_properties() -> dict:
    return {
        "name": ref("nodeName"),
        "in": ref("nodeIn"),
        "repeat": ref("repeat"),
        "when": ref("when"),
        "else": ref("else"),
        "input_spec": ref("inputSpec"),
    }


# ---------------------------------------------------------------------------------------------
# Layers and the objects their arguments take.


class _Collector:
    """Builds argument properties and remembers which arguments no rule could type."""

    def __init__(self) -> None:
        self.untyped: set[str] = set()

    def arg(self, owner: str, name: str, default: Any, doc: str, cls: type | None = None) -> dict:
        alternatives, kind, source = K.arg_type(owner, name, default, doc, cls)
        if source == "unknown":
            self.untyped.add(f"{owner}.{name}")
        prop: dict = {"anyOf": [*alternatives, INTERP]}
        if doc:
            prop["description"] = K.short_doc(doc)
        if default is not inspect.Parameter.empty:
            ok, value = K.json_default(default)
            if ok:
                prop["default"] = value
        if kind:
            prop["x-netspec-kind"] = kind
        return prop

    def class_def(self, public: str, cls: type, owner: str, path: str, base: dict) -> dict:
        """The def of one class: ``base`` properties plus one per constructor argument."""
        named, _ = K.constructor_args(cls)
        docs = K.doc_args(cls)
        properties = {**base, "type": {"const": public}}
        required = ["type"]
        for param in named:
            if K.is_omitted(owner, param.name):
                continue
            if param.name in properties:
                raise ValueError(f"{owner}.{param.name} collides with a netspec node key")
            default = inspect.Parameter.empty if K.is_required(owner, param.name, param.default) else param.default
            properties[param.name] = self.arg(owner, param.name, default, docs.get(param.name, ""), cls)
            if default is inspect.Parameter.empty:
                required.append(param.name)
        description = K.summary(cls)
        if owner != public:
            description = f"Alias of `{path.rsplit('.', 1)[0]}.{owner}`. {description}"
        return {
            "type": "object",
            "description": description,
            "x-netspec-class": path,
            "properties": properties,
            "required": required,
            "additionalProperties": False,
            **K.LAYER_CONSTRAINTS.get(owner, {}),
        }


def _base_layer_args(collector: _Collector) -> dict:
    """The arguments of the base ``Layer`` that a spec may set on any layer taking ``**kwargs``."""
    return {
        "trainable": collector.arg("Layer", "trainable", True, "Boolean, whether the layer's weights are trainable."),
        "dtype": collector.arg("Layer", "dtype", None, "The layer's dtype policy: a dtype name (`float32`) or a "
                               "mixed policy (`mixed_float16`). Defaults to the global policy."),
    }


def _dispatch(names: Sequence[str], prefix: str) -> list[dict]:
    """if/then pairs sending an object with ``type: X`` to the def ``<prefix>.X``."""
    return [
        {"if": {"required": ["type"], "properties": {"type": {"const": n}}}, "then": ref(f"{prefix}.{n}")}
        for n in names
    ]


def layer_defs(collector: _Collector) -> tuple[dict, list[str]]:
    """``layer.<Name>`` for every usable layer, and the sorted list of names."""
    public = K.layer_classes()
    base = _base_layer_args(collector)
    defs = {}
    for name, cls in public.items():
        owner = K.canonical_name(name, cls, public)
        d = collector.class_def(name, cls, owner, f"keras.layers.{name}", node_key_properties())
        if K.constructor_args(cls)[1]:
            for key, prop in base.items():
                d["properties"].setdefault(key, prop)
        defs[f"layer.{name}"] = d
    return defs, list(public)


def layer_object_def() -> dict:
    # A layer written as an argument value (Bidirectional.layer): a `type:` node without graph keys.
    no_graph_keys = {key: False for key in NODE_KEYS if key != "name"}
    return {
        "type": "object",
        "description": "A layer given as an argument of another layer (wrapped layer, RNN cell).",
        "required": ["type"],
        "properties": no_graph_keys,
        "allOf": [ref("node")],
    }


def layer_type(names: list[str]) -> dict:
    return {
        "anyOf": [{"enum": names}, NAME],
        # Excluded Keras classes cannot be named, not even by a user class of the same name.
        "not": {"enum": sorted(K.EXCLUDED_LAYERS)},
        "description": "A Keras core layer, or a registered user layer class.",
        "x-message": "expected a layer class name: a core Keras layer such as 'Dense', or a registered "
                     "user layer (netspec never imports dotted paths)",
    }


def object_kind_defs(collector: _Collector, kind: str, module: str, doc: str) -> dict:
    """``<kind>`` (a string identifier or a ``{type: Class, ...}`` mapping) and ``<kind>.<Class>``."""
    strings, classes = K.object_classes(module)
    defs = {}
    for name, cls in classes.items():
        owner = cls.__name__ if classes.get(cls.__name__) is cls else name  # IdentityInitializer -> Identity
        defs[f"{kind}.{name}"] = collector.class_def(name, cls, owner, f"keras.{module}.{name}", {})
    defs[kind] = {
        "description": doc,
        "anyOf": [
            {"enum": strings},
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": list(classes)}},
                "allOf": _dispatch(list(classes), kind),
            },
        ],
    }
    return defs


# ---------------------------------------------------------------------------------------------
# Nodes and blocks.


def node_defs(layer_names: list[str]) -> dict:
    forms = ("type", "block", "expr", "share")
    keys = node_key_properties()
    expr = {"type": "string", "minLength": 1, "maxLength": EXPR_MAX_LENGTH,
            "description": "A safe expression over the node's inputs and the params (one Keras layer)."}
    return {
        "node": {
            "type": "object",
            "description": "A node: exactly one of `type` (a layer), `block`, `expr` or `share`.",
            "properties": {
                "type": layer_type(layer_names),
                "block": described(NAME, "An instance of this block; the other keys are its params."),
                "expr": expr,
                "share": described(NAME, "Apply the same layer(s) as this node again, to new inputs."),
                **keys,
            },
            "oneOf": [{"required": [form]} for form in forms],
            "allOf": [
                *_dispatch(layer_names, "layer"),
                {"if": {"required": ["block"]}, "then": ref("blockNode")},
                {"if": {"required": ["expr"]}, "then": ref("exprNode")},
                {"if": {"required": ["share"]}, "then": ref("shareNode")},
            ],
        },
        "blockNode": {
            "type": "object",
            "description": "An instance of a block; keys other than the node keys are the block's params.",
            "properties": {"block": NAME, **keys},
            "required": ["block"],
            "propertyNames": NAME,
            "additionalProperties": ANY_JSON,
        },
        "exprNode": obj({"expr": expr, **keys, "output_shape": ref("outputShape")}, ["expr"]),
        "shareNode": obj({"share": NAME, **{k: v for k, v in keys.items() if k != "input_spec"}}, ["share"]),
        "block": obj(
            {
                "description": STR[0],
                "params": {
                    "type": "object",
                    "propertyNames": NAME,
                    "description": "Param defaults; the string `required` marks a required param.",
                },
                "vars": {"type": "object", "propertyNames": NAME, "description": "Derived, block-local values."},
                "inputs": {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True,
                           "default": ["x"], "description": "Input names; default [x]."},
                "nodes": {"type": "array", "items": ref("node"), "minItems": 1},
                "outputs": described(ref("refs"), "The block's outputs; default: the last node."),
            },
            ["nodes"],
            "A reusable, parametrised sub-graph.",
        ),
    }


# ---------------------------------------------------------------------------------------------
# Training and export.


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


def export_target_def() -> dict:
    calibration = obj(
        {
            "samples": with_interp(INT(1)),
            "seed": with_interp(INT(0)),
            "range": described({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                               "[low, high] of generated float inputs; default [-1, 1]."),
        },
        description="Representative data for int8 quantization: the spec's training data when it has some, "
                    "else inputs generated from the declared inputs.",
    )
    return obj(
        {
            "format": with_interp(ENUM("litert", "onnx")),
            "opset": described(with_interp(INT(13, 18)), "ONNX opset."),
            "precision": with_interp(ENUM("fp16", "fp32", "int8")),
            "batch_size": described(with_interp(INT(1) + NULL), "A fixed batch size; null keeps it dynamic."),
            "calibration": calibration,
            "description": STR[0],
        },
        ["format"],
        "An export target, verified against the Keras model before it is reported as written.",
    )


# ---------------------------------------------------------------------------------------------
# The document.


def generate() -> dict:
    """The JSON Schema (draft 2020-12) of the spec language for the installed Keras.

    Returns:
        The schema as plain data; ``render`` turns it into the committed file's text.
    """
    import keras

    collector = _Collector()
    tensor_dtypes, policies = K.dtype_names()
    defs = basic_defs(tensor_dtypes, policies)
    layers, layer_names = layer_defs(collector)
    defs.update(layers)
    defs["layerObject"] = layer_object_def()
    defs["activation"] = {
        "anyOf": [{"enum": K.activation_names()}, NULL[0]],
        "description": "A `keras.activations` name; null for none.",
    }
    defs.update(object_kind_defs(collector, "initializer", "initializers",
                                 "An initializer name, or {type: <class>, ...its args}."))
    defs.update(object_kind_defs(collector, "regularizer", "regularizers",
                                 "A regularizer name, or {type: L1 | L2 | L1L2 | OrthogonalRegularizer, ...}."))
    defs.update(object_kind_defs(collector, "constraint", "constraints",
                                 "A constraint name, or {type: <class>, ...its args}."))
    defs.update(node_defs(layer_names))
    defs["train"] = train_def()
    defs.update(train_object_defs(collector))
    defs["exportTarget"] = export_target_def()
    _check_untyped(collector.untyped)
    return {
        "$schema": SCHEMA_URI,
        "$id": SCHEMA_ID,
        "title": "netspec spec, version 1",
        "description": "A declarative network: YAML that netspec compiles to a functional Keras model.",
        "x-netspec-keras": keras.__version__,
        "type": "object",
        "properties": {
            "netspec": {"const": 1, "description": "The language version."},
            "name": described(NAME, "The model name."),
            "description": STR[0],
            "params": {"type": "object", "propertyNames": NAME,
                       "description": "Named values used by `$name` and `${expr}`, evaluated in order."},
            "plugins": {"type": "array", "items": {"type": "string", "minLength": 1},
                        "description": "Modules or spec-relative .py files registering user layers "
                        "(loaded only when trusted)."},
            "inputs": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("input"),
                       "minProperties": 1},
            "blocks": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("block")},
            "nodes": {"type": "array", "items": ref("node"), "minItems": 1},
            "outputs": described(ref("refs"), "Default: the last node."),
            "train": ref("train"),
            "export": {"type": "object", "propertyNames": NAME, "additionalProperties": ref("exportTarget")},
        },
        "required": ["netspec", "name", "inputs", "nodes"],
        "additionalProperties": False,
        "$defs": defs,
    }


def _check_untyped(found: set[str]) -> None:
    if found != K.UNTYPED_ARGS:
        raise RuntimeError(
            "the set of untyped arguments changed; type them in schemagen_keras.OVERRIDES or update "
            f"UNTYPED_ARGS. New: {sorted(found - K.UNTYPED_ARGS)}; gone: {sorted(K.UNTYPED_ARGS - found)}"
        )


def with_user_layers(schema: dict, classes: dict[str, type]) -> dict:
    """The schema extended with registered user layer classes, for editors.

    Each class gets a ``layer.<Name>`` def typed from its constructor signature and docstring,
    the same way core layers are, and is added to the node dispatch and the ``type`` completions.

    Args:
        schema: the core schema (not modified).
        classes: registered name -> class (``netspec.registry.LAYERS``).
    """
    import copy

    out = copy.deepcopy(schema)
    defs = out["$defs"]
    collector = _Collector()
    base = _base_layer_args(collector)
    type_enum = defs["node"]["properties"]["type"]["anyOf"][0]["enum"]
    for name, cls in sorted(classes.items()):
        d = collector.class_def(name, cls, name, f"{cls.__module__}.{cls.__qualname__}", node_key_properties())
        if K.constructor_args(cls)[1]:
            for key, prop in base.items():
                d["properties"].setdefault(key, prop)
        d["x-netspec-user"] = True
        defs[f"layer.{name}"] = d
        if name not in type_enum:
            type_enum.append(name)
            defs["node"]["allOf"].insert(0, *_dispatch([name], "layer"))
    type_enum.sort()
    return out


def render(schema: dict) -> str:
    """The deterministic text of the schema file."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netspec.schemagen [-o PATH] [--check]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m netspec.schemagen", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="schema file to write")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is not up to date")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is stale: run `make schema`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
