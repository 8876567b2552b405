"""Keras layer objects to spec arguments: ``get_config()`` reduced to what differs from the defaults."""

from __future__ import annotations

import inspect
import json
from typing import Any

from ..errors import ModelImportError, short
from ..resolve.scope import snake_case
from ..schema.keywords import is_number
from .values import array_value, is_array, plain_arrays

# Object kinds whose values are built by netspec from whitelists (catalog ``x-netspec-kind``).
OBJECT_KINDS = ("initializer", "regularizer", "constraint")

# Arguments a wrapper sets on the layers it wraps, whatever they were given: Bidirectional forces
# ``zero_output_for_mask = return_sequences`` on its forward and backward RNNs. They are left out of
# the wrapped layer's spec arguments (the wrapper sets them again when the spec is built).
WRAPPER_SETS = {"Bidirectional": frozenset({"zero_output_for_mask"})}
# Wrapper arguments whose default is derived from another argument (Bidirectional's backward layer
# is the forward layer run backwards): tried left out first; _verify writes them when they differ.
DERIVED_DEFAULTS = {"Bidirectional": frozenset({"backward_layer"})}


def normalize(value: Any) -> Any:
    """A comparable form of a config value: tuples as lists, serialized arrays as what they hold,
    serialized objects as (class, config)."""
    if is_array(value):  # the source's np.array([...]) and the spec's list of the same numbers
        return normalize(array_value(value))
    if isinstance(value, (list, tuple)) and len(value) == 1 and not isinstance(value[0], (list, tuple, dict)):
        return normalize(value[0])  # np.array([0.0]) is written 0.0, or [0.0] where only a list is taken
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        if "class_name" in value and "config" in value:
            inner = value["config"]
            if isinstance(inner, dict):  # a wrapped layer's name is generated (forward_lstm_3): not structure
                inner = {k: v for k, v in inner.items() if k != "name"}
            return {"@class": value["class_name"], "@config": normalize(inner)}
        return {k: normalize(v) for k, v in sorted(value.items())}
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return ("float", value)  # 1.0 and 1 differ in Keras configs only by type; keep them apart
    return value


def _same(a: Any, b: Any) -> bool:
    return normalize(a) == normalize(b)


class ArgConverter:
    """Turns layer objects into spec ``{type, args}``; caches per class and config."""

    def __init__(self, catalog) -> None:
        import keras

        self.keras = keras
        self.catalog = catalog
        self.global_policy = keras.config.dtype_policy().name
        self._cache: dict[str, dict] = {}
        self._object_defaults: dict[tuple[str, str], dict | None] = {}

    # -- public ------------------------------------------------------------------------------

    def layer_args(self, layer, type_name: str, where: str, wrapper_sets: frozenset = frozenset()) -> dict[str, Any]:
        """The spec arguments of ``layer`` (a core Keras layer named ``type_name`` in the schema).

        Args:
            wrapper_sets: arguments the wrapper around ``layer`` sets itself (left out).

        Raises:
            ModelImportError: an argument has no spec form (names the layer and the argument).
        """
        config = plain_arrays({k: v for k, v in layer.get_config().items() if k not in wrapper_sets}, where)
        key = type_name + ",".join(sorted(wrapper_sets)) + json.dumps(normalize(config), sort_keys=True, default=repr)
        if key not in self._cache:
            self._cache[key] = self._reduce(layer, type_name, config, where)
        return dict(self._cache[key])

    # -- reduction ---------------------------------------------------------------------------

    def _reduce(self, layer, type_name: str, config: dict, where: str) -> dict[str, Any]:
        cls = type(layer)
        reference = self._reference_config(layer, cls, config, where)
        required = _required_params(cls)
        props = self.catalog.layer_schema(type_name).get("properties", {})
        out: dict[str, Any] = {}
        for key, value in config.items():
            if key == "name":
                continue
            if key == "trainable":
                if value is False:
                    out[key] = False
                continue
            if key == "dtype":
                policy = _policy_name(value)
                if policy != self.global_policy:
                    out[key] = policy
                continue
            if key not in required and reference is not None and key in reference and _same(reference[key], value):
                continue
            if key in DERIVED_DEFAULTS.get(type_name, ()):
                continue
            if key == "vocabulary_size" and key not in props:
                if config.get("vocabulary") is not None:
                    continue  # Keras reports the size of the vocabulary the config holds: derived
                raise ModelImportError(
                    f"{where}: {type_name} has a vocabulary of {value} learned by adapt(), which Keras keeps out of "
                    "its config; a spec holds a vocabulary written out (vocabulary: [...])")
            if reference is None and "default" in props.get(key, {}) and _same(props[key]["default"], _lists(value)):
                continue
            if key not in props:
                raise ModelImportError(
                    f"{where}: argument {key}={short(value)} of {type_name} cannot be written in a spec "
                    f"(the spec language does not offer {type_name}.{key})")
            out[key] = self.spec_value(type_name, key, value, layer, where)
            if is_number(out[key]) and allows_list(props[key]) and not allows_number(props[key]):
                out[key] = [out[key]]  # a one-item array read as its number, where only a list is taken
        for key, value in out.items():  # [3, 3] -> 3 where Keras expands an int itself (verified below)
            single = single_int(value)
            if single is not None and allows_int(props.get(key, {})):
                out[key] = single
        self._verify(layer, cls, type_name, config, out, where)
        return out

    def _reference_config(self, layer, cls, config: dict, where: str) -> dict | None:
        """The config of ``cls`` built with only its required arguments (taken from ``layer``)."""
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        required = {}
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty:
                if p.name in config and not isinstance(config[p.name], dict):
                    required[p.name] = _tuples(config[p.name])
                else:
                    live = getattr(layer, p.name, None)
                    if live is None:
                        return None
                    required[p.name] = live
        try:
            return cls(**required).get_config()
        except Exception:  # a class that cannot be built from its required arguments alone
            return None

    def _verify(self, layer, cls, type_name: str, config: dict, out: dict, where: str) -> None:
        """Rebuild the layer from the spec arguments; add back any argument whose default differs
        (a default that depends on another argument: MaxPooling2D's strides follow pool_size)."""
        props = self.catalog.layer_schema(type_name).get("properties", {})
        for _ in range(4):
            try:
                rebuilt = cls(**self.to_keras(type_name, out, layer, where)).get_config()
            except (TypeError, ValueError) as e:  # an adapted Discretization: num_bins and bin_boundaries
                raise ModelImportError(f"{where}: {type_name} does not rebuild from its own config's arguments: "
                                       f"{short(str(e), 200)}") from None
            differing = [k for k, v in config.items() if k != "name" and not _same(rebuilt.get(k), v)]
            if not differing:
                return
            for key in differing:
                if key in ("trainable", "dtype") or key not in props:
                    raise ModelImportError(f"{where}: cannot reproduce {type_name}.{key}={short(config[key])}")
                value = self.spec_value(type_name, key, config[key], layer, where)
                single = single_int(value)
                if key not in out and single is not None and allows_int(props[key]):
                    value = single  # tried first; the list form follows if Keras reads it otherwise
                out[key] = value
        raise ModelImportError(f"{where}: the spec arguments do not rebuild {type_name} with the same "
                               f"config (differs in {', '.join(differing)})")

    # -- values --------------------------------------------------------------------------------

    def spec_value(self, type_name: str, key: str, value: Any, layer, where: str) -> Any:
        """One config value in spec form (objects as names or ``{type: ...}``, tuples as lists)."""
        kind = self.catalog.arg_kind(type_name, key) if type_name in self.catalog.core else None
        if value is None:
            return None
        if kind in OBJECT_KINDS:
            return self._object(kind, value, f"{where}: {key}")
        if kind == "activation":
            if not isinstance(value, str):
                raise ModelImportError(f"{where}: activation {short(value)} is not a keras.activations name")
            return value
        if kind == "dtype":
            return _policy_name(value)
        forced = WRAPPER_SETS.get(type_name, frozenset())
        if kind == "layer":
            return self.nested_layer(getattr(layer, key, None) or _sublayer(layer, key), f"{where}.{key}", forced)
        if kind == "layers":
            subs = getattr(layer, key, None) or []
            return [self.nested_layer(s, f"{where}.{key}[{i}]", forced) for i, s in enumerate(subs)]
        return _lists(value)

    def nested_layer(self, layer, where: str, wrapper_sets: frozenset = frozenset()) -> dict:
        """A layer given as an argument (wrapped layer, RNN cell) as ``{type: ..., args}``."""
        type_name = type(layer).__name__
        if layer is None or type_name not in self.catalog.core or getattr(self.keras.layers, type_name, None) is not type(layer):
            raise ModelImportError(f"{where}: wrapped layer {type_name} is not a core Keras layer")
        return {"type": type_name, **self.layer_args(layer, type_name, where, wrapper_sets)}

    def object_value(self, kind: str, value: Any, where: str) -> Any:
        """A serialized initializer, regularizer or constraint in spec form (a name, or ``{type: ...}``).

        Raises:
            ModelImportError: a class netspec does not build for ``kind``.
        """
        return self._object(kind, plain_arrays(value, where), where)

    def _object(self, kind: str, value: Any, where: str) -> Any:
        allowed = self.catalog.object_types(kind)
        if isinstance(value, str):
            return value
        if not isinstance(value, dict) or "class_name" not in value:
            raise ModelImportError(f"{where}: {kind} {short(value)} has no spec form")
        cls_name = value["class_name"]
        registered, module = value.get("registered_name"), value.get("module")
        keras_own = module is None or str(module) == "keras" or str(module).startswith("keras.")
        if (registered and registered != cls_name) or not keras_own:
            # a user class named like Keras's own (PointNet's OrthogonalRegularizer, a custom L2): building Keras's
            # class instead would change the model (its loss) and still pass the import's architecture check
            raise ModelImportError(f"{where}: {kind} {registered or cls_name!r} is a user class, not Keras's own; a spec "
                                   f"builds only keras.{kind}s (known: {', '.join(sorted(allowed))})")
        if cls_name not in allowed:
            raise ModelImportError(f"{where}: {kind} {cls_name!r} is not one netspec can build "
                                   f"(known: {', '.join(sorted(allowed))})")
        config = value.get("config") or {}
        for key, item in config.items():
            if isinstance(item, dict) and "class_name" in item:  # an object inside (arrays are plain by now)
                raise ModelImportError(f"{where}: {kind} {cls_name} has {key}={short(item)}, which a spec cannot "
                                       f"hold (a spec's {cls_name} takes numbers)")
        default = self._default_object(kind, cls_name)
        extra = {k: _lists(v) for k, v in config.items()
                 if default is None or k not in default or not _same(default[k], v)}
        props = self.catalog.schema["$defs"].get(f"{kind}.{cls_name}", {}).get("properties", {})
        for key, item in extra.items():
            if isinstance(item, list) and key in props and not allows_list(props[key]):
                raise ModelImportError(f"{where}: {kind} {cls_name} has {key}={short(item)}, an array of "
                                       f"{len(item)}; a spec's {cls_name} takes one number for {key}")
        if not extra:
            strings = self._strings(kind)
            for name in (snake_case(cls_name), cls_name):  # "he_normal" reads as the Keras docs write it
                if name in strings:
                    return name
        return {"type": cls_name, **extra}

    def _strings(self, kind: str) -> set[str]:
        """The names the schema takes as a bare string for ``kind`` (Constant is not one)."""
        schema = self.catalog.schema["$defs"].get(kind, {})
        for alt in schema.get("anyOf", []):
            if "enum" in alt:
                return set(alt["enum"])
        return set()

    def _default_object(self, kind: str, cls_name: str) -> dict | None:
        if (kind, cls_name) not in self._object_defaults:
            cls = getattr(getattr(self.keras, kind + "s"), cls_name)
            try:
                self._object_defaults[(kind, cls_name)] = cls().get_config()
            except Exception:  # Constant needs a value: every config entry is written out
                self._object_defaults[(kind, cls_name)] = None
        return self._object_defaults[(kind, cls_name)]

    def to_keras(self, type_name: str, args: dict, layer, where: str) -> dict:
        """Spec arguments back to constructor arguments, as netspec's compiler builds them."""
        out = {}
        for key, value in args.items():
            kind = self.catalog.arg_kind(type_name, key)
            if kind in OBJECT_KINDS and isinstance(value, dict):
                cls = getattr(getattr(self.keras, kind + "s"), value["type"])
                try:
                    out[key] = cls(**{k: _tuples(v) for k, v in value.items() if k != "type"})
                except (TypeError, ValueError) as e:
                    raise ModelImportError(f"{where}: {key} {value['type']}: {short(str(e), 200)}") from None
            elif kind == "layer" and isinstance(value, dict):
                out[key] = self._rebuild(value)
            elif kind == "layers" and isinstance(value, list):
                out[key] = [self._rebuild(v) for v in value]
            else:
                out[key] = _tuples(value)
        return out

    def _rebuild(self, spec: dict):
        cls = getattr(self.keras.layers, spec["type"])
        args = {k: v for k, v in spec.items() if k != "type"}
        return cls(**self.to_keras(spec["type"], args, None, ""))


def single_int(value: Any) -> int | None:
    """The one integer a nested list of equal integers repeats, else None."""
    if not isinstance(value, list) or not value:
        return None
    flat: list = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            flat.append(v)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in flat) and len(set(flat)) == 1:
        return flat[0]
    return None


def allows_int(prop: dict) -> bool:
    """Whether a catalog argument schema accepts a plain integer (so ``[3, 3]`` may be written ``3``)."""
    return any(alt.get("type") == "integer" for alt in prop.get("anyOf", [prop]))


def allows_number(prop: dict) -> bool:
    """Whether a catalog argument schema accepts a number."""
    return any(alt.get("type") in ("number", "integer") for alt in prop.get("anyOf", [prop]))


def allows_list(prop: dict) -> bool:
    """Whether a catalog argument schema accepts a list."""
    return any(alt.get("type") == "array" for alt in prop.get("anyOf", [prop]))


def _required_params(cls) -> set[str]:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty}


def _sublayer(layer, key: str):
    if key == "layer":
        return getattr(layer, "forward_layer", None)
    return None


def _policy_name(value: Any) -> str:
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name", "float32")
    if isinstance(value, str):
        return value
    return getattr(value, "name", "float32")


def _lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
