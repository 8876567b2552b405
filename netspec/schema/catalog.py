"""The layer catalogue: core layers from the JSON Schema, user layers from the registry, argument checks."""

from __future__ import annotations

import inspect
from typing import Any

from . import registry
from ..errors import did_you_mean, short
from ..graph import DeferredArg, has_deferred
from .issue import Issue
from .recheck import issues_of, strict_validator
from .schemafile import LAYER_PREFIX, load_schema, schema_path  # noqa: F401  (re-exported)
from .validator import Validator

# Base-Layer keyword arguments a spec may pass to user layers as well as core ones.
BASE_ARGS = ("trainable", "dtype")

# Keras 2 argument names that Keras 3 still takes through **kwargs (a survey of `kwargs.pop(` in
# keras/src/layers), and what a spec writes instead. The schema refuses them as unknown keys; these
# hints say why. `{value}` is the value the spec gave.
RENAMED_ARGS: dict[tuple[str, str], str] = {
    ("LeakyReLU", "alpha"): "alpha is the Keras 2 name of negative_slope: write negative_slope: {value}",
    ("Embedding", "input_length"): "Keras 3 ignores input_length (deprecated): remove it; the sequence length "
                                   "comes from the input's shape",
    ("LSTM", "implementation"): "Keras 3 ignores implementation (deprecated): remove it",
    ("GRU", "implementation"): "Keras 3 ignores implementation (deprecated): remove it",
    ("LSTMCell", "implementation"): "Keras 3 ignores implementation (deprecated): remove it",
    ("GRUCell", "implementation"): "Keras 3 ignores implementation (deprecated): remove it",
    ("*", "input_shape"): "a spec declares shapes under inputs:, not on a layer; remove input_shape",
    ("*", "input_dim"): "a spec declares shapes under inputs:, not on a layer; remove input_dim",
    ("*", "batch_input_shape"): "a spec declares shapes under inputs: (batch_size for a fixed batch); "
                                "remove batch_input_shape",
}

# Core layers whose call takes its tensors by name (two required: a list or a single ref is a
# wiring mistake); tests/test_language_edges.py checks this against the installed Keras.
NAMED_INPUTS: dict[str, tuple[str, ...]] = {
    "MultiHeadAttention": ("query", "value", "key"),
    "GroupQueryAttention": ("query", "value", "key"),
}


def renamed_arg_hint(layer_type: object, key: object, value: object) -> str | None:
    """The hint for a Keras 2 argument name ``key`` that ``layer_type`` refuses, or None."""
    if not isinstance(layer_type, str) or not isinstance(key, str):
        return None
    text = RENAMED_ARGS.get((layer_type, key)) or RENAMED_ARGS.get(("*", key))
    return text.format(value=short(value)) if text else None


def named_inputs_hint(layer_type: str, given: list[str]) -> tuple[str, str] | None:
    """(message, hint) when ``layer_type`` takes named inputs but was given ``given`` as a list or one ref."""
    names = NAMED_INPUTS.get(layer_type)
    if names is None:
        return None
    refs = given if 1 < len(given) <= len(names) else [given[0] if len(given) == 1 else "x"] * 2
    mapping = ", ".join(f"{n}: {r}" for n, r in zip(names, refs))
    what = f"a list of {len(given)} inputs" if len(given) > 1 else "one input"
    message = (f"{layer_type} takes its inputs by name ({', '.join(names[:2])} and optionally {names[2]}); "
               f"'in:' gives {what}")
    return message, f"write in: {{{mapping}}}"


class Catalog:
    """What a spec may name as ``type:``, and how its arguments are checked."""

    schema: dict
    validator: Validator
    core: set[str]

    def __init__(self, schema: dict | None = None) -> None:
        self.schema = schema if schema is not None else load_schema()
        # The committed schema is scanned by tests/test_schemacheck.py, not on every command.
        self.validator = Validator(self.schema, scan=schema is not None)
        defs = self.schema["$defs"]
        self.core = {k[len(LAYER_PREFIX):] for k in defs if k.startswith(LAYER_PREFIX)}

    @property
    def strict_validator(self) -> Validator:
        """The validator for interpolated values: the schema with no ``${...}`` alternative (built on first use)."""
        return strict_validator(self.schema)

    def known(self, name: object) -> bool:
        """Whether ``name`` is a core or registered layer; installed plugins load on the first miss."""
        if not isinstance(name, str):
            return False
        if name in self.core or name in registry.LAYERS:
            return True
        from .plugins import load_entry_points

        load_entry_points()
        return name in registry.LAYERS

    def is_core(self, name: str) -> bool:
        """Whether ``name`` is a core Keras layer of the schema (not a registered user layer)."""
        return name in self.core

    def names(self) -> list[str]:
        """Every layer type a spec may name, core and registered (installed plugins loaded first)."""
        from .plugins import load_entry_points

        load_entry_points()
        return sorted(self.core | set(registry.LAYERS))

    def layer_schema(self, name: str) -> dict:
        """The schema of core layer ``name`` (its ``layer.<name>`` def)."""
        return self.schema["$defs"][LAYER_PREFIX + name]

    def object_types(self, kind: str) -> set[str]:
        """Class names a spec may use for an object argument kind (``initializer`` -> {"HeNormal", ...})."""
        prefix = kind + "."
        return {k[len(prefix):] for k in self.schema["$defs"] if k.startswith(prefix)}

    def arg_kind(self, name: str, arg: str) -> str | None:
        """``x-netspec-kind`` of a core layer argument (initializer, regularizer, layer, ...)."""
        if name not in self.core:
            base = self.core_base_of(name, arg)
            if base is not None:  # an argument a user layer forwards to its core Keras base class
                return self.arg_kind(base, arg)
            # User layers: the Keras naming convention says which arguments are objects.
            for suffix in ("initializer", "regularizer", "constraint"):
                if arg == suffix or arg.endswith("_" + suffix):
                    return suffix
            return None
        prop = self.layer_schema(name).get("properties", {}).get(arg, {})
        return prop.get("x-netspec-kind")

    def check_args(self, name: str, args: dict[str, Any]) -> tuple[Issue, int] | None:
        """Check resolved constructor arguments.

        Returns:
            None when valid, else ``(best_issue, number_of_other_issues)``.
        """
        instance = {"type": name, **{k: _placeholder(v) for k, v in args.items()}}
        if name in self.core:
            # Interpolated values are checked as the literal they stand for (netspec.schema.recheck); while some
            # value still waits for shapes, its ${...} text stands in for it and must pass as such.
            deferred = any(has_deferred(v) for v in args.values())
            validator = self.validator if deferred else self.strict_validator
            best, more = issues_of(instance, {"$ref": f"#/$defs/{LAYER_PREFIX}{name}"}, (), validator)
            return None if best is None else (best, more)
        issues = _check_signature(registry.LAYERS[name], args)
        for key, value in args.items():  # arguments forwarded to a core base class: typed as there
            base = self.core_base_of(name, key)
            if base is None or issues or has_deferred(value):
                continue
            prop = self.layer_schema(base)["properties"][key]
            best, _ = issues_of(_placeholder(value), prop, (key,), self.strict_validator)
            if best is not None:
                issues.append(best)
        return (issues[0], len(issues) - 1) if issues else None

    def core_base_of(self, name: str, arg: str) -> str | None:
        """The core layer whose argument ``arg`` user layer ``name`` takes through ``**kwargs``, if any.

        ``class ScaledDense(keras.layers.Dense)`` forwarding ``**kwargs`` takes Dense's ``activation``;
        its value is then checked, and deserialized, as Dense's is.
        """
        cls = registry.LAYERS.get(name)
        if cls is None:
            return None
        for param, owner in registry.constructor_params(cls)[0]:
            if param.name == arg and owner is not cls:
                core = owner.__name__
                ok = core in self.core and owner.__module__.startswith("keras.")
                return core if ok and arg in self.layer_schema(core).get("properties", {}) else None
        return None


def _placeholder(value: Any) -> Any:
    """Deferred (shape-dependent) values are checked when built; here they stand as their ${...} text."""
    if isinstance(value, DeferredArg):
        return value.raw if isinstance(value.raw, str) else "${deferred}"
    if isinstance(value, list):
        return [_placeholder(v) for v in value]
    if isinstance(value, dict):
        return {k: _placeholder(v) for k, v in value.items()}
    return value


def _check_signature(cls: type[object], args: dict[str, Any]) -> list[Issue]:
    """Unknown and missing constructor arguments of a user layer class."""
    # Arguments of base classes that **kwargs reaches count; only the class's own can be required
    # (it may pass a base's required argument itself: super().__init__(64, **kwargs)).
    params = registry.constructor_params(cls)[0]
    named = {p.name: p for p, _ in params}
    first = next(k for k in cls.__mro__ if "__init__" in vars(k))  # the constructor cls(...) runs
    own = {p.name for p, owner in params if owner is first}
    allowed = set(named) | set(BASE_ARGS)
    issues: list[Issue] = []
    for key in args:
        if key not in allowed:
            match = did_you_mean(key, allowed)
            issues.append(Issue((key,), f"unknown argument {short(key)} for {cls.__name__}", "additionalProperties",
                                f"did you mean {match!r}?" if match else None, at_key=True))
    for p in named.values():
        if p.default is inspect.Parameter.empty and p.name in own and p.name not in args:
            issues.append(Issue((), f"missing required argument {p.name!r} for {cls.__name__}", "required"))
    return issues
