"""The JSON Schema building blocks the schema generator writes with: refs, closed objects, value types."""

from __future__ import annotations

from typing import Any, Sequence

# ---------------------------------------------------------------------------------------------
# Refs and objects.


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

# ---------------------------------------------------------------------------------------------
# A small vocabulary of value types. A type is a list of alternative JSON Schemas; every list
# item accepts `$param`/`${expr}` too, and the caller adds `interp` as the value's last alternative.

INTERP: dict = {"$ref": "#/$defs/interp"}


def with_interp(alternatives: list[dict]) -> dict:
    """``{"anyOf": [*alternatives, interp]}``: a typed value that may also be interpolated."""
    return {"anyOf": [*alternatives, INTERP]}


def INT(minimum: int | None = None, maximum: int | None = None) -> list[dict]:
    return [_bounded("integer", minimum, maximum)]


def NUM(minimum: float | None = None, maximum: float | None = None) -> list[dict]:
    return [_bounded("number", minimum, maximum)]


def _bounded(kind: str, minimum: float | None, maximum: float | None) -> dict:
    out: dict = {"type": kind}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def ENUM(*values: str) -> list[dict]:
    return [{"enum": sorted(set(values))}]


def LIST(item: list[dict], n: int | None = None, *, min_items: int | None = None) -> list[dict]:
    """A list (a tuple, for Keras) whose items have type ``item``; exactly ``n`` items when given."""
    out: dict = {"type": "array", "items": with_interp(item)}
    if n is not None:
        out["minItems"] = out["maxItems"] = n
    elif min_items is not None:
        out["minItems"] = min_items
    return [out]


BOOL = [{"type": "boolean"}]
STR = [{"type": "string"}]
NULL = [{"type": "null"}]
