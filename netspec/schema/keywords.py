"""What JSON Schema's keywords mean for a value, shared by the validator (checks) and its messages.

Type predicates, jsonschema's equality, the comparison and per-kind keyword tables, and
:class:`SchemaNode`, the compiled form of one schema that both the checks and the explanations walk.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Callable

# Comparison keywords: (symbol for messages, bound -> predicate).
CMP: dict[str, tuple[str, Callable[[Any], Callable[[Any], bool]]]] = {
    "minimum": (">=", lambda b: lambda x: x >= b), "exclusiveMinimum": (">", lambda b: lambda x: x > b),
    "maximum": ("<=", lambda b: lambda x: x <= b), "exclusiveMaximum": ("<", lambda b: lambda x: x < b)}
# Value keywords share one folded message ("expected an integer >= 1"); each applies to one kind of value.
KIND_OF: dict[str, str] = {**dict.fromkeys([*CMP, "multipleOf"], "number"),
                           **dict.fromkeys(["minLength", "maxLength", "pattern"], "string"),
                           **dict.fromkeys(["minItems", "maxItems"], "array"),
                           **dict.fromkeys(["minProperties", "maxProperties"], "object")}


def is_integer(x: Any) -> bool:
    """JSON Schema 2020-12's ``integer``: an int (not a bool) or an integral float (1.0)."""
    t = type(x)
    if t is int:
        return True
    if t is bool:
        return False
    if isinstance(x, float):
        return x.is_integer()  # 2020-12: 1.0 is an integer
    return isinstance(x, int)


def is_number(x: Any) -> bool:
    """JSON Schema's ``number``: any real number except a bool."""
    t = type(x)
    return t is int or t is float or (t is not bool and isinstance(x, numbers.Number))


# JSON type name -> predicate.
TYPES: dict[str, Callable[[Any], bool]] = {
    "integer": is_integer, "number": is_number, "string": lambda x: isinstance(x, str),
    "boolean": lambda x: x is True or x is False, "null": lambda x: x is None,
    "object": lambda x: isinstance(x, dict), "array": lambda x: isinstance(x, list),
}


def equal(one: Any, two: Any) -> bool:
    """Equality as jsonschema defines it: 1 == 1.0 but True != 1, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(k in two and equal(v, two[k]) for k, v in one.items())
    return _unbool(one) == _unbool(two)


_TRUE, _FALSE = object(), object()


def _unbool(x: Any) -> Any:
    return _TRUE if x is True else _FALSE if x is False else x


def unique(items: list) -> bool:
    """Whether no two items are :func:`equal` (``uniqueItems``)."""
    # jsonschema's `uniq` (sort, compare neighbours; brute force when unsortable), copied so that verdicts
    # agree with the reference even where its neighbour shortcut is lenient ([[1], [True], [1]]).
    try:
        ordered = sorted(map(_unbool, items))
        return not any(equal(a, b) for a, b in zip(ordered, ordered[1:]))
    except (NotImplementedError, TypeError):
        seen: list = []
        for e in map(_unbool, items):
            if any(equal(s, e) for s in seen):
                return False
            seen.append(e)
        return True


def multiple_ok(x: Any, d: Any) -> bool:
    """Whether ``x`` is a multiple of ``d`` (``multipleOf``), answering where jsonschema would raise."""
    # jsonschema's arithmetic, made total: where it would raise (huge or non-finite values) this answers.
    if not isinstance(d, float):
        return not x % d
    try:
        q = x / d
        return int(q) == q
    except OverflowError:
        from fractions import Fraction  # rarely needed, and importing it costs more than the check

        try:
            return (Fraction(x) / Fraction(d)).denominator == 1
        except (OverflowError, ValueError):
            return False
    except ValueError:  # NaN is nobody's multiple
        return False


def always(x: Any) -> bool:
    """The check of a schema that accepts anything."""
    return True


def never(x: Any) -> bool:
    """The check of a schema that accepts nothing."""
    return False


class SchemaNode:
    """One compiled schema: a fused ``valid`` closure, plus the per-keyword checks that explain a failure.

    Attributes:
        schema: the schema it was compiled from.
        valid: whether a value passes (the fast path: no issues built).
        value_checks: ``(keyword, check)`` for the value keywords (type, const, enum, bounds, ...).
        ops: ``(keyword, check, explain)`` for the structural keywords; None until compiled on first use.
        xmsg: the schema's ``x-message`` (without its final period), replacing generated text.
    """

    __slots__ = ("schema", "valid", "value_checks", "ops", "xmsg")

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.valid: Callable[[Any], bool] = always
        self.value_checks: list[tuple[str, Callable[[Any], bool]]] = []
        self.ops: list[tuple[str, Callable, Callable]] | None = None  # None until compiled (on first use)
        self.xmsg: str | None = None
