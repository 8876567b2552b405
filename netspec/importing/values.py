"""Values in a Keras model's config (the .keras format): tensors and their histories, call inputs, plain values."""

from __future__ import annotations

from ..errors import ModelImportError, short

def positional(inputs, where: str) -> list[str]:
    """A nested model's call inputs as a list of refs (a nested model called with keywords is refused)."""
    if isinstance(inputs, list) and not isinstance(inputs, dict):
        return inputs
    raise ModelImportError(f"the nested model {short(where, 80)} is called with keyword arguments; "
                           "call it on a tensor or a list of tensors")


def history_list(value) -> list[list]:
    """A model config's ``input_layers``/``output_layers`` as a list of ``[layer, node, tensor]`` entries."""
    if isinstance(value, dict):
        return list(value.values())
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


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
