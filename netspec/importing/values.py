"""Values in a Keras model's config (the .keras format): tensors and their histories, call inputs, plain values."""

from __future__ import annotations

import math

from ..errors import ModelImportError, short
from ..schema.keywords import is_number

# Serialized arrays in a config (a numpy array or a tensor given as a constructor argument, or as a
# keras.ops argument): ``{"class_name": "__numpy__", "config": {"value": [...], "dtype": "float32"}}``.
ARRAY_CLASSES = frozenset({"__numpy__", "__tensor__"})
# Numbers of one array written into a spec: per-channel values (Rescaling, Normalization) are a few
# dozen to a few hundred; an array past this is data (weights, a table), which a spec does not carry.
MAX_ARRAY_ITEMS = 1024
# Integers a subscript may hold (the expression checker's own literal bound).
_MAX_INDEX = 2**31 - 1


def positional(inputs, where: str) -> list[str]:
    """A nested model's call inputs as a list of refs (a nested model called with keywords is refused)."""
    if isinstance(inputs, list) and not isinstance(inputs, dict):
        return inputs
    raise ModelImportError(f"the nested model {short(where, 80)} is called with keyword arguments; "
                           "call it on a tensor or a list of tensors")


def history_list(value, sort_keys: bool = False) -> list[list]:
    """A model config's ``input_layers``/``output_layers`` as a flat list of ``[layer, node, tensor]`` entries.

    Keras 3 writes the model's input and output structure as it was given, each tensor a
    ``[layer_name, node_index, tensor_index]`` triple: one triple, or lists and dicts of them nested
    to any depth (``keras.Model({"pair": [a, b], "y": y}, ...)``; see Keras's
    ``functional_from_config``). The leaves come depth first; a dict's values in the config's order,
    or with ``sort_keys`` in sorted key order, the order ``keras.tree.flatten`` gives (a model's
    ``inputs``).

    Raises:
        ModelImportError: something in the structure is not a triple, a list or a dict.
    """
    out: list[list] = []
    stack = [value]
    while stack:  # iterative: a stranger's file may nest deeply
        item = stack.pop()
        if _is_history(item):
            out.append(item)
        elif isinstance(item, dict):
            keys = sorted(item, key=str) if sort_keys else list(item)
            stack.extend(item[k] for k in reversed(keys))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            raise ModelImportError(f"the model's input or output structure holds {short(item)}, where Keras writes "
                                   "[layer name, call index, tensor index] entries")
    return out


def is_nested(value) -> bool:
    """Whether an ``input_layers``/``output_layers`` structure nests deeper than one list or one dict."""
    if _is_history(value):
        return False
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else []
    return any(not _is_history(v) for v in items)


def _is_history(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:]))


def is_tensor(value) -> bool:
    """Whether a config value is a serialized KerasTensor (a call input)."""
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def has_tensor(value) -> bool:
    """Whether a config value holds a serialized KerasTensor anywhere inside."""
    if is_tensor(value):
        return True
    if isinstance(value, dict):
        return any(has_tensor(v) for v in value.values())
    if isinstance(value, list):
        return any(has_tensor(v) for v in value)
    return False


def call_tensors(node: dict) -> list[list]:
    """The ``keras_history`` of every tensor a call node's args and kwargs pass, in order."""
    out: list[list] = []

    def walk(v):
        if is_tensor(v):
            out.append(v["config"]["keras_history"])
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(node.get("args", []))
    walk(node.get("kwargs", {}))
    return out


def config_dtype(value) -> str:
    """The dtype name of a config's ``dtype`` (a name or a serialized DTypePolicy); ``float32`` when unset."""
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name", "float32")
    return value or "float32"


def number_text(value) -> str:
    """A number as expression text (``repr``: an int stays an int, a float keeps its exact digits)."""
    text = repr(float(value)) if isinstance(value, float) else repr(int(value))
    return text


def plain_value(value):
    """A config value with tuples as lists (as a .keras file holds it), copied."""
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    return value


# -- serialized arrays ---------------------------------------------------------------------------


def is_array(value) -> bool:
    """Whether a config value is a serialized numpy array or tensor."""
    return isinstance(value, dict) and value.get("class_name") in ARRAY_CLASSES and isinstance(value.get("config"), dict)


def array_value(value):
    """What a serialized array holds, as plain data: its nested list, a one-item array of any rank as that
    number (``np.log([p])``, ``np.array([[2.0]])``: the same value wherever Keras broadcasts it against a
    tensor of at least its rank, and the form a number argument takes; the import's layer check compares
    every output shape, so a rank that added axes would be found)."""
    items = value["config"].get("value")
    one = items
    while isinstance(one, list) and len(one) == 1:
        one = one[0]
    return one if is_number(one) else items


def plain_arrays(value, where: str, path: str = ""):
    """``value`` (a layer's or an object's config) with every serialized array as plain numbers.

    This is the one place an import turns arrays into spec values; the spec's schema then decides
    whether the argument takes them (a list, or a number).

    Raises:
        ModelImportError: an array with more than :data:`MAX_ARRAY_ITEMS` numbers, or one holding
            something other than finite numbers (NaN, inf, strings, booleans); names the layer and the
            argument.
    """
    if is_array(value):
        _check_array(value["config"].get("value"), f"{where}: {path or 'value'}")
        return array_value(value)
    if isinstance(value, dict):
        return {k: plain_arrays(v, where, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_arrays(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _check_array(items, where: str) -> None:
    count, stack = 0, [items]
    while stack:  # iterative: an array nested deep costs no Python stack
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
            continue
        count += 1
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ModelImportError(f"{where} is an array holding {short(v)}; a spec writes arrays of numbers only")
        if isinstance(v, float) and not math.isfinite(v):
            raise ModelImportError(f"{where} is an array holding {v!r}; a spec writes finite numbers only")
    if count > MAX_ARRAY_ITEMS:
        raise ModelImportError(f"{where} is an array of {count:,} numbers; netspec import writes arrays of at most "
                               f"{MAX_ARRAY_ITEMS:,} into a spec (larger ones are data: weights, tables)",
                               hint="write the layer as a user layer class (@netspec.register_layer) that holds "
                                    "the array")


# -- subscripts (keras.ops GetItem) --------------------------------------------------------------


def index_text(key) -> str | None:
    """A ``GetItem`` key, as the config holds it, as subscript text (``:, 0``, ``..., ::-1``), or None
    when it holds what an expression cannot (a tensor, a list of indices, a bool).

    Keras's GetItem reads a list key as a tuple, so ``[slice, 0]`` is ``x[:, 0]``.
    """
    parts = key if isinstance(key, list) else [key]
    if not parts:
        return None
    out = []
    for part in parts:
        text = _index_part(part)
        if text is None:
            return None
        out.append(text)
    return ", ".join(out)


def _index_part(part) -> str | None:
    if part is None:
        return "None"
    if _is_index(part):
        return str(part)
    if isinstance(part, dict) and part.get("class_name") == "__ellipsis__":
        return "..."
    if isinstance(part, dict) and part.get("class_name") == "__slice__" and isinstance(part.get("config"), dict):
        bounds = [part["config"].get(k) for k in ("start", "stop", "step")]
        if not all(b is None or _is_index(b) for b in bounds):
            return None
        start, stop, step = ("" if b is None else str(b) for b in bounds)
        return f"{start}:{stop}" + (f":{step}" if step else "")
    return None


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_INDEX
