"""Constant values in expressions: param checks, constant folding, static arguments and subscripts."""

from __future__ import annotations

import ast
import math
from typing import Any, Mapping

from ..errors import ExpressionError, short
from ..graph import Lazy
from .cost import Cost
from .parse import fail

MAX_INT_BITS = 64  # a constant becomes a tensor value: int64 at most
MAX_PARAM_ITEMS = 10_000
MAX_PARAM_DEPTH = 4

FOLD_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)  # exprcost.Cost computes them


class NeedsShape(Exception):
    """A constant uses a param known only once shapes are inferred (validate time)."""


# ---------------------------------------------------------------------------------------------
# Constant values: params, and the constant arguments and subscripts computed from them.


def param_problem(value: Any) -> str | None:
    """Why ``value`` cannot be used in an expression, or None (a number, bool, list of numbers, Lazy).

    Lists may hold None (an unknown dimension of ``in_shape``); depth and size are bounded.
    """
    if isinstance(value, Lazy):
        return None
    if isinstance(value, (list, tuple)):
        stack, count = [(value, 1)], 0
        while stack:
            items, depth = stack.pop()
            if depth > MAX_PARAM_DEPTH:
                return f"is nested more than {MAX_PARAM_DEPTH} levels deep"
            for item in items:
                count += 1
                if count > MAX_PARAM_ITEMS:
                    return f"has more than {MAX_PARAM_ITEMS} items"
                if isinstance(item, (list, tuple)):
                    stack.append((item, depth + 1))
                elif item is not None and _number_problem(item):
                    return f"holds {type(item).__name__} {short(item)}"
        return None
    problem = _number_problem(value)
    return f"is {type(value).__name__} {short(value)}" if problem else None


def _number_problem(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value.bit_length() > MAX_INT_BITS
    if isinstance(value, float):
        return not math.isfinite(value)
    return True


def plain(value: Any) -> Any:
    """A param value as plain JSON data: tuples become lists (after :func:`param_problem` passed)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def static_value(node: ast.AST, names: Mapping[str, Any]) -> Any:
    """Evaluate a checked constant expression (literals, params, arithmetic, lists, subscripts).

    Raises:
        ExpressionError: it cannot be computed (offset at the failing part).
        NeedsShape: it uses a value known only once shapes are inferred.
    """
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        value = names[node.id]
        if isinstance(value, Lazy):
            raise NeedsShape(node.id)
        return plain(value)
    if isinstance(node, ast.UnaryOp):
        value = static_value(node.operand, names)
        if not _is_number(value):
            raise fail(f"unary '-' needs a number. Received: {short(value)}", node)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        return fold(node, static_value(node.left, names), static_value(node.right, names))
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [static_value(e, names) for e in node.elts]
        try:  # sized like a ${} list: [p, p, ...] of big params stops at the element limit
            return Cost().make_list(items)
        except ExpressionError as e:
            raise fail(e.message, node) from None
    if isinstance(node, ast.Subscript):
        value, index = static_value(node.value, names), index_value(node.slice, names)
        try:
            return value[index] if isinstance(value, list) else _not_indexable(value)
        except (TypeError, IndexError) as e:
            raise fail(f"cannot index {short(value)} with {short(index)}: {e}", node) from None
    raise fail(f"{type(node).__name__} is not allowed here", node)  # check() refused it already


def _not_indexable(value: Any):
    raise TypeError(f"{type(value).__name__} is not a list")


def index_value(node: ast.AST, names: Mapping[str, Any]) -> Any:
    """The Python index of a checked subscript: ints, slices, None, ``...``, or a tuple of them.

    Raises:
        ExpressionError, NeedsShape: as :func:`static_value`.
    """
    if isinstance(node, ast.Tuple):
        return tuple(_index_part(e, names) for e in node.elts)
    return _index_part(node, names)


def _index_part(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis):
        return node.value
    if isinstance(node, ast.Slice):
        parts = [None if p is None else static_value(p, names) for p in (node.lower, node.upper, node.step)]
        if not all(p is None or _is_int(p) for p in parts):
            raise fail(f"slice bounds must be integers or None. Received: {short(parts)}", node)
        return slice(*parts)
    value = static_value(node, names)
    if not _is_int(value):
        raise fail(f"subscripts must be integers, slices, None or '...'. Received: {short(value)}", node)
    return value


def fold(node: ast.BinOp, left: Any, right: Any) -> Any:
    """``left <op> right`` on Python numbers, with the result bounded like a literal.

    The operation goes through the same size accountant as ``${}`` (exprcost.Cost), which refuses
    a result over the integer limit before computing it.

    Raises:
        ExpressionError: not numbers, division by zero, or a result too large.
    """
    if type(node.op) not in FOLD_OPS:
        raise fail("'@' needs tensors", node)
    if not (_is_number(left) and _is_number(right)):
        raise fail(f"arithmetic on constants needs numbers. Received: {short(left)} and {short(right)}", node)
    try:
        value = Cost().binop(type(node.op), left, right)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError, ExpressionError) as e:
        message = e.message if isinstance(e, ExpressionError) else str(e)
        raise fail(f"cannot compute this constant: {short(message, 120)}", node) from None
    if _number_problem(value):
        raise fail("this constant is too large or not a real number", node)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
