"""Schema defs for the graph: names, refs, inputs, nodes, blocks, and a def per layer and argument object."""

from __future__ import annotations

import inspect
from typing import Any, Sequence

from . import classes as K
from ..registry import constructor_params
from ..schemafile import LAYER_PREFIX
from .args import LAYER_CONSTRAINTS, arg_property, arg_type, is_omitted, is_required
from .types import ANY_JSON, BOOL, INT, INTERP, NAME, NULL, STR, described, obj, ref, with_interp

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
INTERP_PATTERN = r"^\$([A-Za-z_][A-Za-z0-9_]*|\{.+\})$"
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.([0-9]+|[A-Za-z_][A-Za-z0-9_]*))?$"
# A ref written with `${...}` inside it ("branch_${i}"): its final form is checked once resolved.
TEMPLATE_PATTERN = r"^[A-Za-z0-9_.]*(\$\{[^{}]+\}[A-Za-z0-9_.]*)+$"
EXPR_MAX_LENGTH = 2000
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
                        "example_shape": described(
                            with_interp([{"type": "array", "items": with_interp(INT(1))}]),
                            "A shape a user feeds (without batch): its sizes fill the null dimensions of `shape` "
                            "when `netspec export` has no data and no `input_shape` to take them from."),
                    },
                    required=["shape"],
                ),
                INTERP,
            ],
            "description": "A model or block input: its shape, or {shape, dtype, batch_size, sparse, optional, example_shape}.",
        },
        "dtype": {"enum": tensor_dtypes, "description": "A tensor dtype."},
        "dtypePolicy": {"enum": policies, "description": "A layer dtype policy: a dtype or a mixed policy."},
        "nodeName": described(NAME, "A unique name; default: the snake-case of the type (`conv2d`, `conv2d_1`)."),
        "nodeIn": {
            "anyOf": [
                ref("ref"),
                {"type": "array", "items": ref("ref"), "minItems": 1},
                {
                    "type": "object",
                    "propertyNames": NAME,
                    "additionalProperties": {
                        "anyOf": [ref("ref"), {"type": "array", "items": ref("ref"), "minItems": 1}],
                        "description": "A ref, or a list of refs for a keyword that takes a list "
                        "(`initial_state: [enc.1, enc.2]`).",
                    },
                    "minProperties": 1,
                },
            ],
            "description": "The node's inputs: a ref, a list of refs, or a mapping name: ref or list of refs "
            "(call keywords, expression variables, block inputs); default: the previous node's output.",
        },
        "repeat": described(with_interp(INT(0)), "Apply the node N times in a chain; `${i}` is the index."),
        "chain": described(
            with_interp([NAME]),
            "With `repeat` on a block node: the block output that feeds the next instance's first input. The "
            "node's ref is the last instance's; `name.out` lists every instance's `out`, `name_K.out` is one's.",
        ),
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


class ArgCollector:
    """Builds argument properties and remembers which arguments no rule could type."""

    def __init__(self) -> None:
        self.untyped: set[str] = set()

    def arg(self, owner: str, name: str, default: Any, doc: str, cls: type | None = None) -> dict:
        """The property of one constructor argument, typed by ``schemagen_args``'s rules.

        Args:
            owner: the canonical class name (``Conv2D``).
            name: the argument name.
            default: its default, or ``inspect.Parameter.empty`` when required.
            doc: its description from the class docstring ("" when undocumented).
            cls: the class, when there is one to read ``_SUPPORTED_<ARG>`` values from.

        Returns:
            The property, with ``x-netspec-kind`` when the value is an object netspec builds.
        """
        alternatives, kind, source = arg_type(owner, name, default, doc, cls)
        if source == "unknown":
            self.untyped.add(f"{owner}.{name}")
        prop = arg_property(alternatives, default, doc)
        if kind:
            prop["x-netspec-kind"] = kind
        return prop

    def class_def(self, public: str, cls: type, owner: str, path: str, base: dict) -> dict:
        """The def of one class: ``base`` properties plus one per constructor argument.

        Args:
            public: the name a spec writes as ``type:``.
            cls: the class.
            owner: its canonical name, which the argument rules are keyed by.
            path: its dotted path, for ``x-netspec-class``.
            base: properties every def of this kind has (the node keys, for layers).

        Returns:
            The closed object def.

        Raises:
            ValueError: a constructor argument has the name of a ``base`` property.
        """
        named, _ = K.constructor_args(cls)
        docs = K.doc_args(cls)
        properties = {**base, "type": {"const": public}}
        required = ["type"]
        for param in named:
            if is_omitted(owner, param.name):
                continue
            if param.name in properties:
                raise ValueError(f"{owner}.{param.name} collides with a netspec node key")
            default = inspect.Parameter.empty if is_required(owner, param.name, param.default) else param.default
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
            **LAYER_CONSTRAINTS.get(owner, {}),
        }


def _base_layer_args(collector: ArgCollector) -> dict:
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


def layer_defs(collector: ArgCollector) -> tuple[dict, list[str]]:
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


def object_kind_defs(collector: ArgCollector, kind: str, module: str, doc: str) -> dict:
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
                "chain": ref("chain"),
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
            "properties": {
                "block": NAME,
                **keys,
                "chain": ref("chain"),
            },
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
# Registered user layers.


def with_user_layers(schema: dict, classes: dict[str, type]) -> dict:
    """The schema extended with registered user layer classes, for editors.

    Each class gets a ``layer.<Name>`` def typed from its constructor signature and docstring,
    the same way core layers are, and is added to the node dispatch and the ``type`` completions.

    Args:
        schema: the core schema (not modified).
        classes: registered name -> class (``netspec.schema.registry.LAYERS``).
    """
    import copy

    out = copy.deepcopy(schema)
    defs = out["$defs"]
    collector = ArgCollector()
    base = _base_layer_args(collector)
    type_enum = defs["node"]["properties"]["type"]["anyOf"][0]["enum"]
    for name, cls in sorted(classes.items()):
        d = collector.class_def(name, cls, name, f"{cls.__module__}.{cls.__qualname__}", node_key_properties())
        inherited, to_layer = constructor_params(cls)
        for param, owner in inherited:  # what **kwargs forwards to base classes (never required)
            if param.name not in d["properties"] and not is_omitted(owner.__name__, param.name):
                core = defs.get(f"{LAYER_PREFIX}{owner.__name__}", {}).get("properties", {})
                d["properties"][param.name] = core.get(param.name) or collector.arg(
                    owner.__name__, param.name, param.default, K.doc_args(owner).get(param.name, ""), owner)
        if K.constructor_args(cls)[1] or to_layer:
            for key, prop in base.items():
                d["properties"].setdefault(key, prop)
        d["x-netspec-user"] = True
        defs[f"layer.{name}"] = d
        if name not in type_enum:
            type_enum.append(name)
            defs["node"]["allOf"].insert(0, *_dispatch([name], "layer"))
    type_enum.sort()
    return out
