"""Argument typing for the schema generator: which JSON Schema type each Keras constructor argument gets."""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from .classes import short_doc
from .types import BOOL, ENUM, INT, LIST, NULL, NUM, STR, with_interp

# ---------------------------------------------------------------------------------------------
# Which arguments a spec may set.

# Constructor arguments never offered to a spec (the argument is simply not in the schema, so a spec
# that sets it fails as an unknown argument).
OMITTED_ARGS: dict[str, str] = {
    "*.name": "the node key `name` names the layer",
    "*.quantization_config": "a QuantizationConfig object; quantization is not part of the spec language",
    "EinsumDense.gptq_unpacked_column_size": "internal to GPTQ quantization",
    "Bidirectional.weights": "initial weight arrays belong in checkpoints, not specs",
    "Embedding.weights": "initial weight arrays belong in checkpoints, not specs",
}

# Arguments Keras declares optional but refuses to go without.
REQUIRED_ARGS = {"CategoryEncoding.num_tokens"}

# Constraints between arguments, added to a layer's def.
LAYER_CONSTRAINTS: dict[str, dict] = {
    "Discretization": {"anyOf": [{"required": ["bin_boundaries"]}, {"required": ["num_bins"]}]},
}


def is_required(cls_name: str, arg: str, default: Any) -> bool:
    return default is inspect.Parameter.empty or f"{cls_name}.{arg}" in REQUIRED_ARGS


def is_omitted(cls_name: str, arg: str) -> bool:
    return f"{cls_name}.{arg}" in OMITTED_ARGS or f"*.{arg}" in OMITTED_ARGS


# Arguments no rule could type ("Class.arg"): they accept any JSON value except a mapping. Tighten
# them with an entry in OVERRIDES; the generator fails when this set and what it finds disagree.
# Empty for Keras 3.15: every argument is typed by a rule or an override.
UNTYPED_ARGS: set[str] = set()

# ---------------------------------------------------------------------------------------------
# Kinds, and the type of an argument no rule can type.

# Nothing is known: any JSON value except a mapping (mappings only exist for the kinds below).
ANY = [{"type": ["array", "boolean", "null", "number", "string"]}]

# Kinds: arguments whose Keras value is an object, built by netspec from a whitelist.
KIND_SCHEMAS: dict[str, list[dict]] = {
    "initializer": [{"$ref": "#/$defs/initializer"}],
    "regularizer": [{"$ref": "#/$defs/regularizer"}],
    "constraint": [{"$ref": "#/$defs/constraint"}],
    "activation": [{"$ref": "#/$defs/activation"}],
    "dtype": [{"$ref": "#/$defs/dtypePolicy"}],
    "layer": [{"$ref": "#/$defs/layerObject"}],
    "layers": LIST([{"$ref": "#/$defs/layerObject"}], min_items=1),
}

# ---------------------------------------------------------------------------------------------
# Overrides: arguments the rules below get wrong or cannot see. Keys are "Class.arg" (the canonical
# class name) or "*.arg"; values are a type or the name of a kind.

INT1 = INT(1)
RANGE2 = LIST(NUM(), 2)  # a (low, high) pair

OVERRIDES: dict[str, list[dict] | str] = {
    # Wrapped layers and cells.
    "RNN.cell": "layer",  # Keras also takes a list of cells; a spec writes StackedRNNCells for that
    "StackedRNNCells.cells": "layers",
    "Pipeline.layers": "layers",
    # Shapes and axes.
    "Reshape.target_shape": LIST(INT(-1)),
    "Permute.dims": LIST(INT1, min_items=1),
    "Dot.axes": INT() + LIST(INT(), 2),
    "Concatenate.axis": INT(),
    "*.noise_shape": LIST(INT1 + NULL) + NULL,
    "PReLU.shared_axes": INT() + LIST(INT()) + NULL,
    "MultiHeadAttention.attention_axes": INT() + LIST(INT()) + NULL,
    "MultiHeadAttention.output_shape": INT1 + LIST(INT1) + NULL,
    "EinsumDense.output_shape": INT1 + LIST(INT1 + NULL),
    "EinsumDense.bias_axes": STR + NULL,
    "EinsumDense.equation": STR,
    "Normalization.axis": INT() + LIST(INT()) + NULL,
    "RandomGaussianBlur.kernel_size": INT1,
    "RandAugment.interpolation": ENUM("bilinear", "nearest"),  # its docstring does not quote them
    "ContrastLimitedAdaptiveHistogramEqualization.tile_grid_size": LIST(INT1, 2),
    # Values: scalars or (low, high) pairs, arrays of numbers.
    "Normalization.mean": NUM() + LIST(NUM()) + NULL,
    "Normalization.variance": NUM(0) + LIST(NUM(0)) + NULL,
    "Rescaling.scale": NUM() + LIST(NUM()),
    "Rescaling.offset": NUM() + LIST(NUM()),
    "RandomPosterization.factor": INT(1, 8),
    "RandomErasing.scale": RANGE2,
    "RandomElasticTransform.scale": NUM(0) + RANGE2,
    "RandomErasing.fill_value": NUM() + NULL,
    "RandomGaussianBlur.sigma": NUM(0) + RANGE2,
    "Discretization.bin_boundaries": LIST(NUM()) + NULL,
    "Masking.mask_value": NUM(),
    "MaxNumBoundingBoxes.fill_value": NUM(),
    "ReLU.max_value": NUM(0) + NULL,
    "ReLU.negative_slope": NUM(0),
    "LeakyReLU.negative_slope": NUM(0),
    "MelSpectrogram.max_freq": NUM(0) + NULL,
    "MelSpectrogram.window": ENUM("hamming", "hann") + NULL,
    "STFTSpectrogram.window": ENUM("hamming", "hann") + LIST(NUM(), min_items=1) + NULL,
    "STFTSpectrogram.scaling": ENUM("density", "spectrum") + NULL,
    "ReversibleEmbedding.logit_soft_cap": NUM(0) + NULL,
    "BatchNormalization.renorm_clipping": [
        {
            "type": "object",
            "properties": {k: with_interp(NUM(0)) for k in ("dmax", "rmax", "rmin")},
            "additionalProperties": False,
        }
    ] + NULL,
    # Modes whose docstring omits an option, or marks None as an option.
    "Bidirectional.merge_mode": ENUM("ave", "concat", "mul", "sum") + NULL,
    "*.use_cudnn": ENUM("auto") + BOOL,
    "*.flash_attention": BOOL + NULL,
    "*.sliding_window": INT1 + NULL,
    # Lookup and text layers: vocabularies are written inline; a string would be a file path that
    # Keras reads from disk, so it is not offered. Standardize/split callables are not offered either.
    "StringLookup.vocabulary": LIST(STR, min_items=1) + NULL,
    "TextVectorization.vocabulary": LIST(STR, min_items=1) + NULL,
    "IntegerLookup.vocabulary": LIST(INT(), min_items=1) + NULL,
    "*.idf_weights": LIST(NUM(0), min_items=1) + NULL,
    "StringLookup.mask_token": STR + NULL,
    "StringLookup.oov_token": STR,
    "IntegerLookup.mask_token": INT() + NULL,
    "IntegerLookup.oov_token": INT(),
    "IntegerLookup.vocabulary_dtype": ENUM("int64"),
    "*.salt": INT(0) + LIST(INT(0), 2) + NULL,
    "Hashing.mask_value": INT() + STR + NULL,
    "*.encoding": ENUM("utf-8", "utf-16-be", "utf-32-be"),
    "TextVectorization.standardize": ENUM("lower", "lower_and_strip_punctuation", "strip_punctuation") + NULL,
    "TextVectorization.split": ENUM("character", "whitespace") + NULL,
    "TextVectorization.ngrams": INT1 + LIST(INT1) + NULL,
    # Initializers, regularizers, constraints.
    "Constant.value": NUM(),
    "STFT.window": ENUM("hamming", "hann") + LIST(NUM(), min_items=1) + NULL,
    "STFT.scaling": ENUM("density", "spectrum") + NULL,
    "*.input_axes": LIST(INT()) + NULL,
    "*.output_axes": LIST(INT()) + NULL,
    "MaxNorm.max_value": NUM(0),
    "MinMaxNorm.min_value": NUM(0),
    "MinMaxNorm.max_value": NUM(0),
    # Norm constraints sum over one axis or several (a Conv2D kernel's [0, 1, 2]: Keras's own docstring).
    "MaxNorm.axis": INT() + LIST(INT(), min_items=1),
    "MinMaxNorm.axis": INT() + LIST(INT(), min_items=1),
    "UnitNorm.axis": INT() + LIST(INT(), min_items=1),
    "VarianceScaling.scale": NUM(0),
}

# ---------------------------------------------------------------------------------------------
# Name rules.

# Counts that must be positive.
POSITIVE_INTS = {
    "units", "filters", "num_heads", "key_dim", "value_dim", "head_dim", "num_query_heads",
    "num_key_value_heads", "input_dim", "output_dim", "n", "groups", "depth_multiplier", "num_bins",
    "num_tokens", "max_tokens", "output_sequence_length", "height", "width", "max_number", "bins",
    "num_chains", "chain_depth", "num_ops", "power_iterations", "lora_rank", "lora_alpha",
    "fft_length", "sequence_stride", "sequence_length", "sampling_rate", "num_mel_bins",
    "frame_length", "frame_step",
}
NONNEGATIVE_INTS = {"num_oov_indices"}
# Probabilities and fractions.
RATES = {"rate", "dropout", "recurrent_dropout", "momentum", "renorm_momentum"}
NONNEGATIVE_NUMBERS = {"epsilon", "stddev", "l1", "l2", "min_power", "ref_power", "top_db", "min_freq"}
# Window-like arguments: an int, or one int per spatial dimension.
WINDOWS = {"kernel_size", "strides", "pool_size", "dilation_rate", "size", "output_size"}


def _dims(cls_name: str) -> int | None:
    """The number of spatial dimensions a layer works on, from its name (Conv2D -> 2)."""
    match = re.search(r"([123])D", cls_name)
    return int(match.group(1)) if match else None


def _mentions_list(doc: str) -> bool:
    return bool(re.search(r"\b(tuple|list)s?\b", doc, re.IGNORECASE))


def _name_rule(cls_name: str, arg: str, default: Any, doc: str) -> list[dict] | str | None:
    """A type or kind from the argument's name; None when no rule applies."""
    if arg.endswith("_initializer"):
        return "initializer"
    if arg.endswith("_regularizer"):
        return "regularizer"
    if arg.endswith("_constraint"):
        return "constraint"
    if arg in ("activation", "recurrent_activation"):
        return "activation"
    if arg == "dtype" or arg.endswith("_dtype"):
        return "dtype"
    if arg in ("layer", "backward_layer"):
        return "layer"
    if arg == "data_format":
        return ENUM("channels_first", "channels_last")
    if arg == "value_range":
        return RANGE2
    if arg == "seed":
        return INT()
    if arg == "factor" or arg.endswith("_factor"):
        return NUM() + RANGE2
    if arg == "axis":
        return INT() + (LIST(INT(), min_items=1) if _mentions_list(doc) else [])
    if arg in POSITIVE_INTS:
        return INT1
    if arg in NONNEGATIVE_INTS:
        return INT(0)
    if arg in RATES:
        return NUM(0, 1)
    if arg in NONNEGATIVE_NUMBERS:
        return NUM(0)
    n = _dims(cls_name)
    if arg in WINDOWS:
        return INT1 + (LIST(INT1, n) if n and (n > 1 or _mentions_list(doc)) else [])
    if arg == "output_padding":
        return INT(0) + (LIST(INT(0), n) if n else [])
    if arg in ("padding", "cropping") and not isinstance(default, str):
        if n in (None, 1):
            return INT(0) + LIST(INT(0), 2)
        return INT(0) + LIST(INT(0), n) + LIST(LIST(INT(0), 2), n)
    return None


# ---------------------------------------------------------------------------------------------
# Docstring and default rules.

_QUOTED = re.compile(r"[\"']`?([A-Za-z0-9_.\-]+)`?[\"']")


def quoted_options(doc: str) -> list[str]:
    """The quoted string values a docstring mentions (``"valid"``, ``"same"``, ...)."""
    return sorted(set(_QUOTED.findall(doc)))


def _string_type(default: str | None, doc: str) -> list[dict]:
    options = quoted_options(doc)
    if default is None or default in options:
        if len(options) > 1 or (options and default is not None):
            return ENUM(*options)
    return STR


def _from_default(default: Any, doc: str) -> list[dict] | None:
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return INT()
    if isinstance(default, float):
        return NUM()
    if isinstance(default, str):
        return _string_type(default, doc)
    if isinstance(default, (tuple, list)) and default:
        return LIST(_item_type(default, doc), len(default))
    return None


def _item_type(values: tuple | list, doc: str) -> list[dict]:
    first = values[0]
    if isinstance(first, (tuple, list)):
        return LIST(_item_type(first, doc), len(first))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and "float" not in doc.lower():
        return INT()
    return NUM()


def _supported_values(cls: type | None, arg: str) -> list[dict] | None:
    for attr in (f"_SUPPORTED_{arg.upper()}", f"_SUPPORTED_{arg.upper()}S"):
        values = getattr(cls, attr, None)
        if isinstance(values, (tuple, list, set, frozenset)) and all(isinstance(v, str) for v in values):
            return ENUM(*values)
    return None


_DOC_TYPES: list[tuple[re.Pattern, Callable[[str], list[dict]]]] = [
    (re.compile(r"^(optional\s+)?(an?\s+)?(positive\s+)?(python\s+)?(int|integer)s?\b", re.I),
     lambda doc: INT() + (LIST(INT()) if _mentions_list(doc.split(".")[0]) else [])),
    (re.compile(r"^(optional\s+)?(an?\s+)?(single\s+|small\s+|positive\s+)?(python\s+)?float", re.I),
     lambda doc: NUM() + (RANGE2 if _mentions_list(doc.split(".")[0]) else [])),
    (re.compile(r"^(an?\s+)?(bool|boolean)\b", re.I), lambda doc: BOOL),
    (re.compile(r"^(an?\s+)?(str|string)\b", re.I), lambda doc: _string_type(None, doc)),
    (re.compile(r"^(a\s+)?(tuple|list)s? of integers", re.I), lambda doc: LIST(INT())),
]


def _from_doc(doc: str) -> list[dict] | None:
    text = doc.strip()
    for pattern, make in _DOC_TYPES:
        if pattern.match(text):
            return make(text)
    return None


def arg_type(
    cls_name: str, arg: str, default: Any, doc: str, cls: type | None = None
) -> tuple[list[dict], str | None, str]:
    """The type of one constructor argument.

    Args:
        cls_name: the canonical class name (``Conv2D``).
        arg: the argument name.
        default: its default, or ``inspect.Parameter.empty`` when required.
        doc: its description from the class docstring ("" when undocumented).
        cls: the class, whose ``_SUPPORTED_<ARG>`` tuple (some image layers have one) beats the docstring.

    Returns:
        (alternatives, kind or None, source), where source says which rule decided
        ("override", "class", "name", "default", "doc" or "unknown").
    """
    required = is_required(cls_name, arg, default)
    dflt = None if required else default
    found: list[dict] | str | None = OVERRIDES.get(f"{cls_name}.{arg}", OVERRIDES.get(f"*.{arg}"))
    source = "override"
    if found is None:
        found, source = _supported_values(cls, arg), "class"
    if found is None:
        found, source = _name_rule(cls_name, arg, dflt, doc), "name"
    if found is None:
        found, source = _from_default(dflt, doc), "default"
    if found is None:
        found, source = _from_doc(doc), "doc"
    if found is None:
        found, source = ANY, "unknown"
    kind = found if isinstance(found, str) else None  # a kind names its schemas; rules never give ""
    alternatives = list(KIND_SCHEMAS[found] if isinstance(found, str) else found)
    if not required and default is None and NULL[0] not in alternatives and kind != "activation":
        alternatives += NULL
    return alternatives, kind, source


# ---------------------------------------------------------------------------------------------
# The argument's property.


def arg_property(alternatives: list[dict], default: Any, doc: str) -> dict:
    """The schema property of one constructor argument: its type, description and default.

    Args:
        alternatives: the argument's type (``interp`` is added as its last alternative).
        default: its default, or ``inspect.Parameter.empty`` when required.
        doc: its description from the class docstring ("" when undocumented).

    Returns:
        The property; it has a default only when the Python default has a JSON form.
    """
    prop: dict = with_interp(alternatives)
    if doc:
        prop["description"] = short_doc(doc)
    if default is not inspect.Parameter.empty:
        ok, value = json_default(default)
        if ok:
            prop["default"] = value
    return prop


def json_default(value: Any) -> tuple[bool, Any]:
    """(True, value as JSON) when a Python default has a JSON form, else (False, None)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, (tuple, list)):
        items = [json_default(v) for v in value]
        if all(ok for ok, _ in items):
            return True, [v for _, v in items]
    return False, None
