"""Safe ``$name`` / ``${expr}`` interpolation: parsed with ``ast``, evaluated by netspec's own walker."""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, cast

from ..errors import ExpressionError, short
from ..graph import Lazy
from .cost import MAX_CHARS, Cost, approx
from .parse import Rules, fail, gate

MAX_EXPR_CHARS = 1000
MAX_AST_NODES = 300
MAX_AST_DEPTH = 40  # the walker recurses once per level: bounded far below Python's limit
MAX_LITERAL_BITS = 64  # integer literals; computed integers are bounded by exprcost.MAX_INT_BITS
MAX_POW_EXPONENT = 64

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_WHOLE_NAME = re.compile(rf"\$({_NAME})\Z")
_EMBED_NAME = re.compile(rf"\$({_NAME})")


class Deferred(Exception):
    """Raised when an expression needs a shape that is only known once shapes are inferred."""


class _Unknown(Lazy):
    """Stands for a shape value at validate time."""

    def __repr__(self) -> str:
        return "<shape known at build time>"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Scope:
    """The names an expression may see.

    Args:
        names: params, block params and vars, ``i``; ``in_shape`` when known.
        shape_of: returns the static shape of a ref, or raises Deferred; None when no refs are in scope.
        cost: the size accountant to charge; one shared by many evaluations measures each shared
            value (a param used everywhere) once. A fresh one per evaluation when None.
    """

    names: Mapping[str, Any]
    shape_of: Callable[[str], Any] | None = None
    cost: Cost | None = None


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, not going down by more than 10% (MobileNet rule)."""
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _round(value, ndigits=None):
    return round(value) if ndigits is None else round(value, ndigits)


def _int(value):
    if isinstance(value, str):
        if len(value) > 40:
            raise ValueError("string too long to convert")
    return int(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": _round,
    "int": _int,
    "float": float,
    "len": len,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": make_divisible,
}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_CMPOPS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ALLOWED = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Call,
    ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, *_BINOPS, *_CMPOPS,
)


# ${...} through the shared gate: ASCII, one line, its own depth bound, no empty text (``_sub`` refuses it first).
RULES = Rules(max_chars=MAX_EXPR_CHARS, max_parts=MAX_AST_NODES, max_ast_nodes=MAX_AST_NODES,
              max_depth=MAX_AST_DEPTH, printable=False, long_at_limit=False, multiline=False,
              value_error_nested=True)


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.Expression:
    """Parse and check an expression against the allow-list (cached: specs repeat expressions).

    Raises:
        ExpressionError: with an ``offset`` attribute (character offset in ``text``).
    """
    return gate(text, RULES, _allowed)


def _allowed(node: ast.AST, depth: int) -> Iterable[ast.AST]:
    """The ${...} allow-list for one node (offsets already absolute); the children to walk."""
    if not isinstance(node, _ALLOWED):
        raise fail(f"{_describe(node)} is not allowed in ${{...}} expressions", node)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "shape":
            if len(node.args) != 1 or node.keywords or not (
                isinstance(node.args[0], ast.Name)
                or (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))
            ):
                raise fail("shape() takes one ref: shape(name) or shape('name.out')", node)
            return ast.iter_child_nodes(node.func)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else None
            raise fail(
                f"only these functions may be called: {', '.join(sorted(FUNCTIONS))}"
                + (f". Received: {short(name)}" if name else ""),
                node,
            )
        if node.keywords:
            raise fail("keyword arguments are not allowed in ${...} expressions", node)
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
        raise fail("only numbers, strings, booleans and None are allowed as literals", node)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and abs(node.value).bit_length() > MAX_LITERAL_BITS:
        raise fail("integer literal is too large", node)
    return ast.iter_child_nodes(node)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator", ast.Dict: "a dict literal", ast.JoinedStr: "an f-string",
        ast.NamedExpr: "assignment", ast.Starred: "unpacking", ast.Set: "a set literal",
    }
    return names.get(type(node), type(node).__name__)


def evaluate(text: str, scope: Scope) -> Any:
    """Evaluate one expression (the text inside ``${...}``).

    Every operation goes through the scope's :class:`~netspec.expressions.cost.Cost`, which refuses a
    result over a size limit before computing it.

    Raises:
        ExpressionError: not allowed, unknown name, failed evaluation, or a result over a size
            limit; ``offset`` says where.
        Deferred: it needs a shape that is not known yet.
    """
    tree = parse(text)
    return _Evaluator(scope).run(tree.body)


class _Evaluator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.cost = scope.cost if scope.cost is not None else Cost()

    def run(self, node: ast.AST) -> Any:
        self._last = node
        try:
            return self._eval(node)
        except Deferred:
            raise
        except ExpressionError as e:
            if not e.located:  # a size limit: at the operation that would pass it
                e.offset, e.located = getattr(self._last, "col_offset", 0), True
            raise
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError, KeyError) as e:
            raise fail(f"cannot evaluate: {short(str(e), 120)}", self._last) from None

    def _eval(self, node: ast.AST) -> Any:
        self._last = node
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left), self._eval(node.right)
            self._last = node
            if isinstance(node.op, ast.Pow):
                if not isinstance(right, (int, float)) or isinstance(right, bool) or abs(right) > MAX_POW_EXPONENT:
                    raise fail(f"exponents are limited to {MAX_POW_EXPONENT}", node)
            return self.cost.binop(type(node.op), left, right)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand)
            self._last = node
            if isinstance(node.op, ast.Not):
                return not value
            return self.cost.record(-value if isinstance(node.op, ast.USub) else +value)
        if isinstance(node, ast.BoolOp):
            value = None
            for item in node.values:
                value = self._eval(item)
                if isinstance(node.op, ast.And) and not value:
                    return value
                if isinstance(node.op, ast.Or) and value:
                    return value
            return value
        if isinstance(node, ast.Compare):
            # Operands are values within the size limits, so comparing them (==, <, in) walks at
            # most MAX_ELEMENTS items and MAX_CHARS characters.
            left = self._eval(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp)
                self._last = node
                if not self.cost.compare(_CMPOPS[type(op)], left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self._eval(node.body) if self._eval(node.test) else self._eval(node.orelse)
        if isinstance(node, ast.Subscript):
            value = self._eval(node.value)
            index = self._eval(node.slice)
            self._last = node
            return self.cost.subscript(value, index)
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self._eval(p) for p in (node.lower, node.upper, node.step)]
            return slice(*parts)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self._eval(e) for e in node.elts]
            self._last = node
            return self.cost.make_list(items)
        if isinstance(node, ast.Call):
            # parse() admits only calls of a plain name: shape(ref) or a name in FUNCTIONS.
            name = cast(ast.Name, node.func).id
            if name == "shape":
                arg = node.args[0]  # parse() admits one Name or one string Constant here
                ref = arg.id if isinstance(arg, ast.Name) else cast(str, cast(ast.Constant, arg).value)
                if self.scope.shape_of is None:
                    raise fail("shape() is not available here", node)
                return self.cost.record(self.scope.shape_of(ref))
            args = [self._eval(a) for a in node.args]
            self._last = node
            return self.cost.call(name, FUNCTIONS[name], args)
        raise fail(f"{_describe(node)} is not allowed", node)  # parse() already refused it

    def _name(self, node: ast.Name) -> Any:
        names = self.scope.names
        if node.id in names:
            value = names[node.id]
        elif node.id in FUNCTIONS or node.id == "shape":
            raise fail(f"{node.id!r} is a function; call it", node)
        else:
            from ..errors import did_you_mean

            match = did_you_mean(node.id, list(names))
            raise fail(f"unknown name {node.id!r}", node, f"did you mean {match!r}?" if match else None)
        if isinstance(value, Lazy):
            raise Deferred(node.id)
        self.cost.size(value)  # a param over a limit (a deep YAML list, a huge --set) stops here
        return value


# ---------------------------------------------------------------------------------------------
# Interpolation inside YAML string values


def _find_close(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose body starts at ``start``; quote-aware; -1 if none."""
    depth = 0
    quote = None
    k = start
    while k < len(text):
        c = text[k]
        if quote:
            if c == "\\":
                k += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if c == "}" and depth == 0:
                return k
            depth -= 1
        k += 1
    return -1


def has_interpolation(value: object) -> bool:
    """Whether a string holds a ``$name`` or ``${...}``."""
    return isinstance(value, str) and "$" in value


def interpolate(value: str, scope: Scope) -> Any:
    """Substitute ``$name`` and ``${expr}`` in one YAML string.

    A string that is exactly one ``$name`` or ``${...}`` takes the value's type; otherwise the
    values are formatted into the text. ``$$`` is a literal ``$``.

    This is the stage boundary of ``${}`` evaluation: a MemoryError or RecursionError that the size
    model did not foresee becomes a located ExpressionError here, never a traceback.

    Raises:
        ExpressionError: with ``offset`` relative to ``value``.
        Deferred: a shape value is needed.
    """
    cost = scope.cost
    if cost is None:  # one accountant for every ${} of this string
        cost = Cost()
        scope = Scope(scope.names, scope.shape_of, cost)
    try:
        return _interpolate(value, scope, cost)
    except (MemoryError, RecursionError) as e:
        what = "ran out of memory" if isinstance(e, MemoryError) else "is nested too deeply"
        raise ExpressionError(f"expression {what} (a value over the size model; please report it)", offset=0) from None
    finally:
        cost.forget()


def _interpolate(value: str, scope: Scope, cost: Cost) -> Any:
    """``interpolate`` inside its stage boundary; ``cost`` is ``scope.cost``, never None here."""
    match = _WHOLE_NAME.match(value)
    if match:
        return _lookup(match.group(1), scope, 1)
    if value.startswith("${") and _find_close(value, 2) == len(value) - 1:
        return _sub(value[2:-1], scope, 2)
    out: list[str] = []
    room = MAX_CHARS - len(value)  # characters the substituted values may add
    k = 0
    while k < len(value):
        c = value[k]
        if c != "$":
            out.append(c)
            k += 1
            continue
        if value.startswith("$$", k):
            out.append("$")
            k += 2
            continue
        if value.startswith("${", k):
            end = _find_close(value, k + 2)
            if end < 0:
                raise ExpressionError("unclosed '${'", offset=k)
            out.append(_format(_sub(value[k + 2 : end], scope, k + 2), cost, k + 2, room))
            room -= len(out[-1])
            k = end + 1
            continue
        match = _EMBED_NAME.match(value, k)
        if match:
            out.append(_format(_lookup(match.group(1), scope, k + 1), cost, k + 1, room))
            room -= len(out[-1])
            k = match.end()
            continue
        out.append(c)
        k += 1
    return "".join(out)


def _format(value: Any, cost: Cost, offset: int, room: int) -> str:
    """``value`` as text inside a string; its printed length is checked before it is printed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    try:
        n = cost.text(value)
    except ExpressionError as e:
        e.offset = offset
        raise
    if n > room:
        raise ExpressionError(f"interpolated string is too long: {approx(n)} more characters "
                              f"(limit {MAX_CHARS:,})", offset=offset)
    return str(value)


def _sub(text: str, scope: Scope, base: int) -> Any:
    if not text.strip():
        raise ExpressionError("empty '${}' expression", offset=base)
    try:
        return evaluate(text, scope)
    except ExpressionError as e:
        e.offset += base
        raise


def _lookup(name: str, scope: Scope, offset: int) -> Any:
    tree = ast.Expression(body=ast.Name(id=name, ctx=ast.Load(), col_offset=0))
    try:
        return _Evaluator(scope).run(tree.body)
    except ExpressionError as e:
        e.offset = offset
        raise
