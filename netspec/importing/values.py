"""Values in a Keras model's config (the .keras format): tensors and their histories, call inputs, plain values."""

from __future__ import annotations

import inspect

from ..errors import ModelImportError, short

# Call arguments Keras records on every symbolic call (``training`` of Dropout, BatchNormalization);
# netspec's compiler makes the same calls, so they carry no information of the model's own.
_CALL_CONTEXT = frozenset({"training"})


def _positional(inputs) -> list[str]:
    if isinstance(inputs, list):
        return inputs
    raise ModelImportError("a nested model is called with keyword arguments")


def _positional_or_named(inputs, op, where: str):
    """A call's inputs as a list of refs, or (keyword calls) a mapping argument name -> ref."""
    if isinstance(inputs, list):
        return inputs
    _, args, kwargs, ref = inputs
    try:
        params = [p.name for p in inspect.signature(op.call).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]
    except (TypeError, ValueError):
        params = []
    out: dict[str, str] = {}
    for i, a in enumerate(args):
        if not _is_tensor(a):
            raise ModelImportError(f"layer {short(where, 80)} is called with a non-tensor argument {short(a)}")
        if i >= len(params):
            raise ModelImportError(f"layer {short(where, 80)} is called with more positional inputs than it names")
        out[params[i]] = ref(a)
    for key, value in kwargs.items():
        if _is_tensor(value):
            out[key] = ref(value)
        elif value is not None and key not in _CALL_CONTEXT:
            raise ModelImportError(f"layer {short(where, 80)} is called with {key}={short(value)}; a spec node "
                                   "cannot pass call arguments other than its inputs")
    return out


def _history_list(value) -> list[list]:
    if isinstance(value, dict):
        return list(value.values())
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


def _is_tensor(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _has_tensor(value) -> bool:
    if _is_tensor(value):
        return True
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_tensor(v) for v in value)
    return False


def _tensors(node: dict) -> list[list]:
    out: list[list] = []

    def walk(v):
        if _is_tensor(v):
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


def _dtype(value) -> str:
    if isinstance(value, dict):
        return (value.get("config") or {}).get("name", "float32")
    return value or "float32"


def _number(value) -> str:
    text = repr(float(value)) if isinstance(value, float) else repr(int(value))
    return text


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
