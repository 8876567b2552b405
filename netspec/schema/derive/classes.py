"""Keras introspection for the schema generator: the classes a spec may name, their constructors and docs."""

from __future__ import annotations

import inspect
import re

# ---------------------------------------------------------------------------------------------
# Which classes a spec may name.

# Public `keras.layers` classes a spec must not use, and why.
EXCLUDED_LAYERS: dict[str, str] = {
    "Layer": "abstract base class; a spec names a concrete layer or a registered user layer class",
    "Wrapper": "abstract base of wrappers; use Bidirectional, TimeDistributed, SpectralNormalization",
    "InputLayer": "made by netspec from the spec's `inputs:` section",
    "Lambda": "runs an arbitrary Python callable (marshalled bytecode, CVE-2024-3660); use `expr:` nodes",
    "TFSMLayer": "loads a TensorFlow SavedModel (a graph with its own ops) from a file path",
    "TorchModuleWrapper": "wraps an arbitrary torch.nn.Module object",
    "JaxLayer": "wraps arbitrary JAX callables (call_fn, init_fn)",
    "FlaxLayer": "wraps an arbitrary Flax module object and its methods",
}

# The initializer/regularizer/constraint base classes: strings and `type:` values never name them.
_ABSTRACT_OBJECTS = {"Initializer", "initializer", "Regularizer", "regularizer", "Constraint", "constraint"}
# Identifiers `keras.initializers.get` refuses as bare strings (Constant's from_config needs a
# value); a spec writes `{type: Constant, value: ...}`.
_NOT_STRINGS = {"Constant", "constant"}

# ---------------------------------------------------------------------------------------------
# Docstrings.


def doc_args(cls: type) -> dict[str, str]:
    """The "Args:" section of a class docstring, as ``{name: one-line description}``."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    out: dict[str, str] = {}
    current = None
    base = None
    in_args = False
    for line in lines:
        if re.match(r"^\s*(Args|Arguments):\s*$", line):
            in_args, base, current = True, None, None
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        base = indent if base is None else base
        if indent < base:
            in_args = False
            continue
        match = re.match(r"^(\*{0,2}\w+)(\s*\([^)]*\))?:\s*(.*)$", line.strip())
        if indent == base and match:
            current = match.group(1)
            out[current] = match.group(3)
        elif current:
            out[current] += " " + line.strip()
    # Some docstrings run the "Input shape:" section into the last argument.
    return {k: re.split(r"\s+(?:Input|Output) shape:", v)[0] for k, v in out.items()}


def summary(cls: type) -> str:
    """The first paragraph of a class docstring, on one line."""
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


# A sentence end: not "e.g.", "i.e." or a list number ("1. Be ...").
_SENTENCE_END = re.compile(r"(?<!\d)(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z`\"(])")


def short_doc(text: str, limit: int = 300) -> str:
    """A description shortened to whole sentences within ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    ends = [m.start() for m in _SENTENCE_END.finditer(text) if m.start() < limit]
    return text[: ends[-1] + 1] if ends else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# What the installed Keras offers.


def layer_classes() -> dict[str, type]:
    """Every public ``keras.layers`` class a spec may name (aliases included), by public name."""
    import keras

    out = {}
    for name in dir(keras.layers):
        obj = getattr(keras.layers, name)
        if name.startswith("_") or name in EXCLUDED_LAYERS:
            continue
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
            out[name] = obj
    return dict(sorted(out.items()))


def canonical_name(public_name: str, cls: type, public: dict[str, type]) -> str:
    """The class's own name when it is public, else the public name (GroupQueryAttention)."""
    return cls.__name__ if public.get(cls.__name__) is cls else public_name


def constructor_args(cls: type[object]) -> tuple[list[inspect.Parameter], bool]:
    """The named constructor parameters, and whether it takes ``**kwargs`` (the base Layer's)."""
    # cls is type[object] (a class object), so cls.__init__ reads as the class's constructor.
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def object_classes(module_name: str) -> tuple[list[str], dict[str, type]]:
    """String identifiers and classes of ``keras.<module_name>.get`` (initializers, ...).

    Returns:
        (string identifiers usable without arguments, {class name: class}); base classes and
        classes whose constructor needs arguments are left out of the strings.
    """
    from ...kerasapi import object_registry

    strings, classes = [], {}
    for key, obj in object_registry(module_name).items():
        if key in _ABSTRACT_OBJECTS:
            continue
        if inspect.isclass(obj) and key[0].isupper():
            classes[key] = obj
        if key in _NOT_STRINGS:
            continue
        if inspect.isclass(obj) and any(p.default is p.empty for p in constructor_args(obj)[0]):
            continue
        strings.append(key)
    return sorted(strings), dict(sorted(classes.items()))


def activation_names() -> list[str]:
    """Names accepted by ``keras.activations.get`` that need no argument but the tensor."""
    from ...kerasapi import object_registry

    names = []
    for key, fn in object_registry("activations").items():
        params = list(inspect.signature(fn).parameters.values())[1:]
        if all(p.default is not p.empty for p in params):
            names.append(key)
    return sorted(names)


def dtype_names() -> tuple[list[str], list[str]]:
    """(tensor dtypes for inputs, dtype policy names for layers)."""
    import keras

    from ...kerasapi import tensor_dtypes

    # float8 dtypes only make sense as quantized weights, never as a spec's input or layer dtype.
    tensor = sorted(d for d in tensor_dtypes() if not d.startswith("float8"))
    policies = []
    for name in tensor + ["mixed_bfloat16", "mixed_float16"]:
        try:
            keras.dtype_policies.get(name)
        except ValueError:  # int8 names a quantization mode, not a dtype policy
            continue
        policies.append(name)
    return tensor, sorted(policies)
