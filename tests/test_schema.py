"""The JSON Schema: current with Keras, a valid 2020-12 schema, typed like Keras, and judging documents right."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from netspec.devtools import schemagen
from netspec.schema.derive import nodes as schemagen_nodes
from netspec.schema.derive import classes as K

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "netspec.schema.json"
INTERP = {"$ref": "#/$defs/interp"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return schemagen.generate()


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


# ---------------------------------------------------------------------------------------------
# Helpers.


def spec(*nodes: dict, **top) -> dict:
    """A minimal document with one input ``x`` of shape [8] and the given nodes."""
    return {"netspec": 1, "name": "t", "inputs": {"x": {"shape": [8]}}, "nodes": list(nodes), **top}


def errors_for(validator, document: dict) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def signature(alternatives: list[dict]) -> str:
    """A compact rendering of an argument's type: ``integer>=1|[integer>=1]x2|null``."""
    out = []
    for alt in alternatives:
        if alt == INTERP:
            continue
        if "$ref" in alt:
            out.append(alt["$ref"].rsplit("/", 1)[-1])
        elif "enum" in alt:
            out.append("enum[" + ",".join(alt["enum"]) + "]")
        elif alt.get("type") == "array":
            size = f"x{alt['maxItems']}" if alt.get("maxItems") == alt.get("minItems") and "maxItems" in alt else ""
            out.append(f"[{signature(alt['items']['anyOf'])}]{size}")
        else:
            bounds = "".join(f"{op}{alt[key]}" for key, op in (("minimum", ">="), ("maximum", "<=")) if key in alt)
            out.append(f"{alt.get('type', 'object')}{bounds}")
    return "|".join(out)


def arg_property(schema: dict, layer: str, arg: str) -> dict:
    return schema["$defs"][f"layer.{layer}"]["properties"][arg]


def layer_defs(schema: dict) -> dict[str, dict]:
    return {k[len("layer."):]: v for k, v in schema["$defs"].items() if k.startswith("layer.")}


# ---------------------------------------------------------------------------------------------
# The file and the schema itself.


def test_committed_file_is_current(schema):
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == schemagen.render(schema), (
        f"{SCHEMA_FILE.name} is stale for Keras {schema['x-netspec-keras']}: run `make schema`"
    )


def test_is_a_valid_2020_12_schema(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_render_is_deterministic(schema):
    assert schemagen.render(schemagen.generate()) == schemagen.render(copy.deepcopy(schema))


def test_check_mode_reports_stale_and_current(schema, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(schemagen, "generate", lambda: schema)
    target = tmp_path / "netspec.schema.json"
    assert schemagen.main(["--check", "-o", str(target)]) == 1
    assert "run `make schema`" in capsys.readouterr().err
    assert schemagen.main(["-o", str(target)]) == 0
    assert schemagen.main(["--check", "-o", str(target)]) == 0


def test_root_and_defs_names(schema):
    assert schema["required"] == ["netspec", "name", "inputs", "nodes"]
    assert schema["additionalProperties"] is False
    for name in ("name", "interp", "ref", "refs", "input", "dtype", "dtypePolicy", "nodeName", "nodeIn",
                 "repeat", "when", "else", "inputSpec", "outputShape", "node", "blockNode", "exprNode",
                 "shareNode", "block", "train", "exportTarget", "initializer", "regularizer", "constraint",
                 "activation", "layerObject"):
        assert name in schema["$defs"], name


def inline_mapping(alternatives: list[dict]) -> bool:
    """Whether an argument's type accepts a mapping other than through a kind's $ref."""
    for alt in alternatives:
        kinds = alt.get("type", [])
        if "object" in (kinds if isinstance(kinds, list) else [kinds]):
            return True
        if alt.get("type") == "array" and inline_mapping(alt["items"]["anyOf"]):
            return True
    return False


def test_every_argument_accepts_interpolation_and_no_free_mapping(schema):
    for layer, definition in layer_defs(schema).items():
        for arg, prop in definition["properties"].items():
            if arg in ("type", *schemagen_nodes.NODE_KEYS):
                continue
            assert prop["anyOf"][-1] == INTERP, f"{layer}.{arg}"
            if arg != "renorm_clipping":  # a closed {rmax, rmin, dmax} mapping of numbers
                assert not inline_mapping(prop["anyOf"]), f"{layer}.{arg} accepts a mapping"


def test_defaults_match_their_own_types(schema):
    for layer, definition in layer_defs(schema).items():
        for arg, prop in definition["properties"].items():
            if "default" in prop:
                check = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "anyOf": prop["anyOf"]})
                assert check.is_valid(prop["default"]), f"{layer}.{arg} default {prop['default']!r}"


# ---------------------------------------------------------------------------------------------
# Which layers, and how their arguments are typed.


@pytest.mark.parametrize("name", sorted(K.EXCLUDED_LAYERS))
def test_excluded_layers_are_absent(schema, validator, name):
    assert f"layer.{name}" not in schema["$defs"]
    assert name not in schema["$defs"]["node"]["properties"]["type"]["anyOf"][0]["enum"]
    assert not validator.is_valid(spec({"type": name}))


def test_aliases_share_their_canonical_schema(schema):
    alias, canonical = schema["$defs"]["layer.Convolution2D"], schema["$defs"]["layer.Conv2D"]
    assert alias["x-netspec-class"] == "keras.layers.Convolution2D"
    assert {k: v for k, v in alias["properties"].items() if k != "type"} == {
        k: v for k, v in canonical["properties"].items() if k != "type"
    }


def test_layer_def_shape(schema):
    dense = schema["$defs"]["layer.Dense"]
    assert dense["x-netspec-class"] == "keras.layers.Dense"
    assert dense["required"] == ["type", "units"]
    assert dense["additionalProperties"] is False
    assert dense["properties"]["type"] == {"const": "Dense"}
    assert {"name", "in", "repeat", "when", "else", "input_spec", "trainable", "dtype"} <= set(dense["properties"])
    assert not {"input_shape", "batch_input_shape", "input_dim", "quantization_config"} & set(dense["properties"])


ARG_TYPES = [
    ("Dense", "units", "integer>=1", None),
    ("Dense", "use_bias", "boolean", None),
    ("Dense", "activation", "activation", "activation"),
    ("Dense", "kernel_initializer", "initializer", "initializer"),
    ("Dense", "kernel_regularizer", "regularizer|null", "regularizer"),
    ("Dense", "bias_constraint", "constraint|null", "constraint"),
    ("Dense", "dtype", "dtypePolicy|null", "dtype"),
    ("Dense", "trainable", "boolean", None),
    ("Conv2D", "filters", "integer>=1", None),
    ("Conv2D", "kernel_size", "integer>=1|[integer>=1]x2", None),
    ("Conv2D", "strides", "integer>=1|[integer>=1]x2", None),
    ("Conv2D", "padding", "enum[same,valid]", None),
    ("Conv1D", "padding", "enum[causal,same,valid]", None),
    ("Conv2D", "data_format", "enum[channels_first,channels_last]|null", None),
    ("BatchNormalization", "axis", "integer", None),
    ("BatchNormalization", "momentum", "number>=0<=1", None),
    ("BatchNormalization", "epsilon", "number>=0", None),
    ("BatchNormalization", "gamma_initializer", "initializer", "initializer"),
    ("Bidirectional", "layer", "layerObject", "layer"),
    ("Bidirectional", "backward_layer", "layerObject|null", "layer"),
    ("Bidirectional", "merge_mode", "enum[ave,concat,mul,sum]|null", None),
    ("StackedRNNCells", "cells", "[layerObject]", "layers"),
    ("Dropout", "rate", "number>=0<=1", None),
    ("Dropout", "seed", "integer|null", None),
    ("Dropout", "noise_shape", "[integer>=1|null]|null", None),
    ("Reshape", "target_shape", "[integer>=-1]", None),
    ("ZeroPadding2D", "padding", "integer>=0|[integer>=0]x2|[[integer>=0]x2]x2", None),
    ("RandomZoom", "fill_mode", "enum[constant,nearest,reflect,wrap]", None),
    ("StringLookup", "vocabulary", "[string]|null", None),
]


@pytest.mark.parametrize("layer,arg,expected,kind", ARG_TYPES, ids=[f"{t[0]}.{t[1]}" for t in ARG_TYPES])
def test_argument_types(schema, layer, arg, expected, kind):
    prop = arg_property(schema, layer, arg)
    assert signature(prop["anyOf"]) == expected
    assert prop.get("x-netspec-kind") == kind


def test_required_arguments(schema):
    defs = schema["$defs"]
    assert defs["layer.Conv2D"]["required"] == ["type", "filters", "kernel_size"]
    assert defs["layer.Bidirectional"]["required"] == ["type", "layer"]
    assert defs["layer.Dropout"]["required"] == ["type", "rate"]
    assert defs["layer.Reshape"]["required"] == ["type", "target_shape"]
    assert defs["layer.BatchNormalization"]["required"] == ["type"]


def test_kind_vocabularies(schema):
    defs = schema["$defs"]
    activations = defs["activation"]["anyOf"][0]["enum"]
    assert {"relu", "softmax", "tanh", "gelu"} <= set(activations)
    assert not {"get", "serialize", "deserialize", "threshold"} & set(activations)
    assert {"glorot_uniform", "he_normal", "zeros", "ones"} <= set(defs["initializer"]["anyOf"][0]["enum"])
    assert {"l1", "l2", "l1l2", "orthogonal_regularizer"} <= set(defs["regularizer"]["anyOf"][0]["enum"])
    assert {"max_norm", "min_max_norm", "non_neg", "unit_norm"} <= set(defs["constraint"]["anyOf"][0]["enum"])
    assert {"initializer.HeNormal", "regularizer.L1L2", "constraint.MaxNorm"} <= set(defs)
    assert "float32" in defs["dtype"]["enum"] and "mixed_float16" not in defs["dtype"]["enum"]
    assert {"float32", "mixed_float16", "mixed_bfloat16"} <= set(defs["dtypePolicy"]["enum"])


# ---------------------------------------------------------------------------------------------
# Documents.

LENET = {
    "netspec": 1,
    "name": "lenet5",
    "description": "LeNet-5 for 32x32 grey images.",
    "params": {"classes": 10, "width": 6},
    "inputs": {"image": {"shape": [32, 32, 1]}},
    "nodes": [
        {"name": "c1", "type": "Conv2D", "filters": "$width", "kernel_size": 5, "activation": "tanh"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"name": "c3", "type": "Conv2D", "filters": "${width * 16 // 6}", "kernel_size": 5, "activation": "tanh"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 120, "activation": "tanh"},
        {"type": "Dense", "units": 84, "activation": "tanh"},
        {"name": "probs", "type": "Dense", "units": "$classes", "activation": "softmax"},
    ],
    "outputs": ["probs"],
}

BLOCKS = {
    "netspec": 1,
    "name": "blocks",
    "inputs": {
        "image": {"shape": [224, 224, 3]},
        "tokens": {"shape": [None], "dtype": "int32"},
        "mask": {"shape": [64], "dtype": "bool", "batch_size": 8},
        "feats": [16],
    },
    "blocks": {
        "conv_bn_relu": {
            "params": {"filters": "required", "kernel_size": 3, "strides": 1},
            "vars": {"padding": "${'same' if strides == 1 else 'valid'}"},
            "inputs": ["x"],
            "nodes": [
                {"type": "Conv2D", "filters": "$filters", "kernel_size": "$kernel_size", "strides": "$strides",
                 "padding": "$padding", "use_bias": False},
                {"type": "BatchNormalization"},
                {"name": "out", "type": "ReLU"},
            ],
            "outputs": ["out"],
        },
        "transition": {
            "params": {"reduction": 0.5},
            "inputs": ["x"],
            "nodes": [{"type": "Conv2D", "filters": "${int(in_shape[-1] * reduction)}", "kernel_size": 1}],
        },
    },
    "nodes": [
        {"name": "stem", "block": "conv_bn_relu", "in": "image", "filters": 32, "strides": 2},
        {"name": "body", "block": "conv_bn_relu", "filters": 64, "repeat": 3},
        {"name": "sq", "expr": "x ** 2"},
        {"name": "both", "expr": "ops.concatenate([a, b], axis=-1)", "in": {"a": "sq", "b": "body"}},
        {"name": "first", "expr": "x[:, :, 0]", "output_shape": [4]},
        {"name": "again", "share": "stem", "in": "image"},
        {"name": "maybe", "type": "Dropout", "rate": 0.1, "when": "${classes > 2}", "else": "first"},
        {"name": "checked", "type": "Identity", "input_spec": {"min_ndim": 2, "axes": {"-1": 4}}},
        {"name": "pam", "type": "PAM", "anything": {"goes": True}},
    ],
    "outputs": {"class_probs": "both", "value": "body.out", "first": "stem.0"},
}

TRAIN = {
    "data": {"source": "npz", "path": "data/digits.npz", "x": "images", "y": "labels", "validation_split": 0.1},
    "batch_size": 64,
    "epochs": 20,
    "optimizer": {"type": "Adam", "learning_rate": 1.0e-3},
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "callbacks": [{"type": "EarlyStopping", "patience": 3, "monitor": "val_loss"}],
    "seed": 42,
    "distribute": "none",
}

EXPORT = {
    "cpu": {"format": "onnx", "opset": 17},
    "edge": {"format": "onnx", "opset": 17, "precision": "int8", "batch_size": 1, "calibration": {"samples": 256}},
    "gpu": {"format": "onnx", "precision": "fp16"},
    "phone": {"format": "litert", "precision": "int8"},
}


def dense(**args) -> dict:
    return {"type": "Dense", "units": 4, **args}


VALID = {
    "lenet_example": LENET,
    "blocks_expressions_inputs": BLOCKS,
    "train_and_export": {**LENET, "train": TRAIN, "export": EXPORT},
    "units_param": spec({"type": "Dense", "units": "$classes"}),
    "units_expression": spec({"type": "Dense", "units": "${classes * 2}"}),
    "kernel_size_list": spec({"type": "Conv2D", "filters": 8, "kernel_size": [1, 7]}),
    "kernel_size_list_of_params": spec({"type": "Conv2D", "filters": 8, "kernel_size": ["$k", 1]}),
    "nested_padding": spec({"type": "ZeroPadding2D", "padding": [[3, 3], [3, 3]]}),
    "regularizer_object": spec(dense(kernel_regularizer={"type": "L2", "l2": 1e-4}, kernel_initializer="he_normal")),
    "initializer_object": spec(dense(kernel_initializer={"type": "VarianceScaling", "scale": 2.0, "mode": "fan_out"})),
    "constraint_string": spec(dense(kernel_constraint="max_norm")),
    "no_activation": spec(dense(activation=None)),
    "bidirectional": spec({"type": "Bidirectional", "layer": {"type": "LSTM", "units": 32, "return_sequences": True}}),
    "wrapped_layer_named": spec({"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2, "name": "inner"}}),
    "stacked_cells": spec({"type": "RNN", "cell": {"type": "StackedRNNCells",
                                                   "cells": [{"type": "LSTMCell", "units": 4}]}}),
    "repeat_when": spec(dense(name="d", repeat="$depth", when=True, input_spec={"ndim": 2})),
    "template_ref": spec(dense(**{"in": "branch_${i}"})),
    "layer_base_args": spec(dense(trainable=False, dtype="mixed_float16")),
    "user_layer": spec({"type": "PAM", "heads": 4}),
}

INVALID = {
    "typo_in_argument": spec({"type": "Conv2D", "fliters": 8, "kernel_size": 3}),
    "units_bool": spec({"type": "Dense", "units": True}),
    "units_negative": spec({"type": "Dense", "units": -4}),
    "units_zero": spec({"type": "Dense", "units": 0}),
    "units_word": spec({"type": "Dense", "units": "ten"}),
    "padding_typo": spec({"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "vaid"}),
    "kernel_size_three_dims": spec({"type": "Conv2D", "filters": 8, "kernel_size": [1, 7, 7]}),
    "missing_required": spec({"type": "Conv2D", "filters": 8}),
    "rate_above_one": spec({"type": "Dropout", "rate": 1.5}),
    "type_and_block": spec({"type": "Dense", "block": "b", "units": 3}),
    "no_node_form": spec({"name": "n", "units": 3}),
    "unknown_regularizer": spec(dense(kernel_regularizer={"type": "L3", "l3": 1})),
    "unknown_regularizer_arg": spec(dense(kernel_regularizer={"type": "L2", "l3": 1})),
    "regularizer_dotted_path": spec(dense(kernel_regularizer={"type": "os.system"})),
    "initializer_dotted_path": spec(dense(kernel_initializer="os.system")),
    "activation_unknown": spec(dense(activation="exec")),
    "activation_mapping": spec(dense(activation={"type": "relu"})),
    "dtype_unknown": spec(dense(dtype="float")),
    "nested_layer_with_graph_keys": spec({"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2, "in": "x"}}),
    "nested_layer_excluded": spec({"type": "TimeDistributed", "layer": {"type": "Lambda"}}),
    "legacy_input_shape": spec(dense(input_shape=[8])),
    "lookup_vocabulary_file": spec({"type": "StringLookup", "vocabulary": "/etc/passwd"}),
    "expr_with_args": spec({"expr": "x + 1", "units": 3}),
    "expr_too_long": spec({"expr": "x" + " + x" * 600}),
    "share_with_args": spec({"share": "a", "units": 3}),
    "block_param_bad_name": spec({"block": "b", "not-a-name": 1}),
    "repeat_negative": spec(dense(repeat=-1)),
    "when_yes_string": spec(dense(when="yes")),
    "bad_ref": spec(dense(**{"in": "a.b.c"})),
    "unknown_top_level_key": {**spec(dense()), "outputz": ["d"]},
    "missing_nodes": {"netspec": 1, "name": "t", "inputs": {"x": [8]}},
    "empty_nodes": spec(),
    "version_2": {**spec(dense()), "netspec": 2},
    "bad_model_name": {**spec(dense()), "name": "my-net"},
    "input_zero_dim": {**spec(dense()), "inputs": {"x": {"shape": [0]}}},
    "input_unknown_key": {**spec(dense()), "inputs": {"x": {"shape": [8], "ragged": True}}},
    "no_inputs": {**spec(dense()), "inputs": {}},
    "train_unknown_key": {**spec(dense()), "train": {**TRAIN, "epoch": 3}},
    "train_bad_distribute": {**spec(dense()), "train": {**TRAIN, "distribute": "tpu"}},
    "train_bad_split": {**spec(dense()), "train": {**TRAIN, "data": {**TRAIN["data"], "validation_split": 1.5}}},
    "export_bad_opset": {**spec(dense()), "export": {"cpu": {"format": "onnx", "opset": 12}}},
    "export_bad_format": {**spec(dense()), "export": {"cpu": {"format": "tflite"}}},
    "export_bad_precision": {**spec(dense()), "export": {"cpu": {"format": "onnx", "precision": "int4"}}},
    "export_bad_calibration": {**spec(dense()), "export": {"e": {"format": "onnx", "calibration": {"samples": 0}}}},
}


@pytest.mark.parametrize("document", list(VALID.values()), ids=list(VALID))
def test_valid_documents(validator, document):
    assert errors_for(validator, document) == []


@pytest.mark.parametrize("document", list(INVALID.values()), ids=list(INVALID))
def test_invalid_documents(validator, document):
    assert errors_for(validator, document) != []


# ---------------------------------------------------------------------------------------------
# Contract with Keras: a minimal argument set built from each layer's schema validates and
# constructs, and every enumerated string value is accepted by the constructor.

# Required arguments a schema-derived minimum cannot make meaningful.
EXAMPLES = {
    "EinsumDense.equation": "ab,bc->ac",
    "Bidirectional.layer": {"type": "LSTM", "units": 2},
    "TimeDistributed.layer": {"type": "Dense", "units": 2},
    "SpectralNormalization.layer": {"type": "Dense", "units": 2},
    "RNN.cell": {"type": "SimpleRNNCell", "units": 2},
    "StackedRNNCells.cells": [{"type": "SimpleRNNCell", "units": 2}, {"type": "GRUCell", "units": 2}],
    "Pipeline.layers": [{"type": "Identity"}],
    "Activation.activation": "relu",
    "Discretization.num_bins": 4,  # one of num_bins and bin_boundaries is needed
}


def minimal(alternative: dict):
    if "enum" in alternative:
        return alternative["enum"][0]
    kind = alternative.get("type")
    if kind == "integer":
        return alternative.get("minimum", 1)
    if kind == "number":
        return min(max(0.5, alternative.get("minimum", 0.5)), alternative.get("maximum", 0.5))
    if kind == "boolean":
        return False
    if kind == "string":
        return "a"
    if kind == "array":
        return [minimal(alternative["items"]["anyOf"][0])] * alternative.get("minItems", 1)
    raise AssertionError(f"no minimal value for {alternative}")


def canonical_defs(schema: dict, keras) -> dict[str, dict]:
    """The layer defs of distinct classes (aliases such as Convolution2D build the same class)."""
    public = K.layer_classes()
    return {name: d for name, d in layer_defs(schema).items()
            if K.canonical_name(name, getattr(keras.layers, name), public) == name}


def minimal_args(name: str, definition: dict) -> dict:
    args = {key.split(".")[1]: value for key, value in EXAMPLES.items() if key.startswith(name + ".")}
    for arg in definition["required"][1:]:
        if arg not in args:
            args[arg] = minimal(definition["properties"][arg]["anyOf"][0])
    return args


def build(keras, name: str, args: dict):
    """A Keras layer from schema-valid arguments (nested layers included); test-only."""
    built = {}
    for key, value in args.items():
        if isinstance(value, dict) and "type" in value:
            value = build(keras, value["type"], {k: v for k, v in value.items() if k != "type"})
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            value = [build(keras, v["type"], {k: x for k, x in v.items() if k != "type"}) for v in value]
        elif isinstance(value, list):
            value = tuple(value)
        built[key] = value
    return getattr(keras.layers, name)(**built)


def test_every_layer_builds_from_its_minimal_arguments(schema, validator, keras):
    failures = []
    for name, definition in canonical_defs(schema, keras).items():
        args = minimal_args(name, definition)
        errors = errors_for(validator, spec({"type": name, **args}))
        if errors:
            failures.append(f"{name}: schema refuses {args}: {errors[:2]}")
            continue
        try:
            build(keras, name, args)
        except ImportError:  # STFTSpectrogram needs scipy, an optional dependency of Keras
            continue
        except Exception as e:  # noqa: BLE001 - collect every refusal
            failures.append(f"{name}({args}): {type(e).__name__}: {e}")
    assert failures == []


def test_every_enumerated_value_is_accepted_by_keras(schema, keras):
    failures = []
    for name, definition in canonical_defs(schema, keras).items():
        base = minimal_args(name, definition)
        for arg, prop in definition["properties"].items():
            if arg == "type" or "x-netspec-kind" in prop or "anyOf" not in prop:
                continue
            for alternative in prop["anyOf"]:
                for value in alternative.get("enum", []):
                    try:
                        build(keras, name, {**base, arg: value})
                    except ImportError:
                        continue
                    except Exception as e:  # noqa: BLE001
                        failures.append(f"{name}({arg}={value!r}): {type(e).__name__}: {str(e)[:120]}")
    assert failures == []


def test_kind_strings_are_accepted_by_keras(schema, keras):
    defs = schema["$defs"]
    for value in defs["activation"]["anyOf"][0]["enum"]:
        keras.activations.get(value)
    for kind, module in (("initializer", keras.initializers), ("regularizer", keras.regularizers),
                         ("constraint", keras.constraints)):
        for value in defs[kind]["anyOf"][0]["enum"]:
            try:
                module.get(value)
            except ImportError:  # the STFT initializer needs scipy
                continue
    for value in defs["dtypePolicy"]["enum"]:
        keras.layers.Identity(dtype=value)
