"""The size model of expression values: every ``${}`` operation and constant fold is paid for before it runs.

One :class:`Cost` accountant per spec (the resolver's) or per string. Each operation asks it first (``binop``, ``call``,
``make_list``, ``subscript``, ``text``), which predicts the size of the result from the sizes of the
operands, refuses it if it is over a limit, and only then computes it. Sizes are tree totals: a
list that holds the same sublist ``n`` times counts its elements ``n`` times, because comparing,
printing or writing it out walks every copy. Sizes of lists are remembered by identity, so a value
shared by many params or built from ``[p, p]`` chains is measured once.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CostError

# The limits. A spec needs small values (layer sizes, shapes, lists of a few hundred items); these
# leave room for generated tables while keeping every operation on them in the millisecond range
# and a value's memory in the low megabytes, whatever the spec asks for.
MAX_ELEMENTS = 100_000  # list items at every level: walking/comparing/printing 1e5 items takes ~10 ms
MAX_CHARS = 1 << 20  # characters of all strings in a value (1 MiB, the loader's whole-file cap)
MAX_INT_BITS = 4096  # bits of any integer: 2**4096 has 1,234 digits; arithmetic on it is microseconds
MAX_DEPTH = 32  # list nesting: far below Python's recursion limit for compare/repr/JSON of the value
# Characters of a value's printed form (str/repr). Bounded too, because ``[2**4000] * 10**5`` is
# small in memory but prints to 120 MB: 8 MiB allows 10**5 numbers of ~80 digits.
MAX_TEXT = 8 << 20
# Work of one accountant: list items and characters that its operations copy, compare or walk
# (~20 ns each with the walker around them: 2e7 is under half a second). Sizes bound one
# operation; this bounds how many big operations a spec may chain (a thousand params each slicing
# a 10**5-item list). The resolver shares one Cost for a whole spec (Scope.cost), so this bounds
# the spec; a Cost made per string bounds the string.
MAX_WORK = 20_000_000

_FLOAT_TEXT = 24  # repr of any finite float: '-1.2345678901234567e-308'

# Sizes of big lists, shared by all evaluations: a 10**5-item param read by a thousand ${} is
# walked once, not a thousand times. Entries keep their list alive (so its id stays its own) and
# its length (a list changed in place is measured again). Least recently used entries leave first,
# past _SHARED_MAX entries or _SHARED_ELEMENTS elements in all (a few MB of references at most).
_SHARED: "OrderedDict[int, tuple[Any, int, Size]]" = OrderedDict()
_SHARED_MIN = 128  # elements: smaller lists are cheaper to walk than to cache
_SHARED_MAX = 1024
_SHARED_ELEMENTS = 10 * MAX_ELEMENTS
_shared_total = 0


@dataclass(frozen=True)
class Size:
    """What a value costs: list ``elements`` and string ``chars`` (tree totals), the largest integer's
    ``bits``, list ``depth``, and ``text``, an upper bound of the length of its str/repr."""

    elements: int = 0
    chars: int = 0
    bits: int = 0
    depth: int = 0
    text: int = 0

    def times(self, n: int) -> "Size":
        """The size of ``value * n`` for a list or string (``n`` copies, joined)."""
        n = max(n, 0)
        return Size(self.elements * n, self.chars * n, self.bits, self.depth, max(self.text - 2, 0) * n + 2)

    def plus(self, other: "Size") -> "Size":
        """The size of ``a + b`` for two lists or two strings."""
        return Size(self.elements + other.elements, self.chars + other.chars, max(self.bits, other.bits),
                    max(self.depth, other.depth), self.text + other.text)


def approx(n: int) -> str:
    """``n`` for a message: exact when short, ``~10^k`` when huge (never formats a huge int)."""
    if n < 10_000_000:
        return f"{n:,}"
    return f"~10^{int(n.bit_length() * 0.30103)}"


def _too_large(what: str, amount: int, limit: int, unit: str) -> CostError:
    return CostError(f"expression {what}: {approx(amount)} {unit} (limit {limit:,})")


def check(size: Size, what: str = "result is too long") -> Size:
    """Refuse a (predicted) size over a limit, naming the limit.

    Raises:
        CostError: ``elements``, ``chars``, ``bits``, ``depth`` or ``text`` is over its limit.
    """
    if size.elements > MAX_ELEMENTS:
        raise _too_large(what, size.elements, MAX_ELEMENTS, "list elements")
    if size.chars > MAX_CHARS:
        raise _too_large(what, size.chars, MAX_CHARS, "characters")
    if size.bits > MAX_INT_BITS:
        raise _too_large("result is too large", size.bits, MAX_INT_BITS, "integer bits")
    if size.depth > MAX_DEPTH:
        raise CostError(f"expression result is nested too deeply: {size.depth} levels (limit {MAX_DEPTH})")
    if size.text > MAX_TEXT:
        raise _too_large("result is too long to print", size.text, MAX_TEXT, "characters when printed")
    return size


def scalar_size(value: Any) -> Size:
    """The size of a number, bool, None or string (anything that is not a list)."""
    if isinstance(value, bool) or value is None:
        return Size(text=5)
    if isinstance(value, int):
        bits = value.bit_length()
        return Size(bits=bits, text=(bits * 1233 >> 12) + 2)  # digits <= bits*log10(2) + 1, and a sign
    if isinstance(value, float):
        return Size(text=_FLOAT_TEXT)
    if isinstance(value, str):
        # repr escapes a non-printable character in at most 10 ('\U0010ffff')
        per = 1 if value.isascii() and value.isprintable() else 10
        return Size(chars=len(value), text=per * len(value) + 2)
    return Size(text=40)  # a Lazy placeholder or another opaque value: its repr is short


class Cost:
    """The accountant of one evaluation: sizes of the values it has seen, and the checked operations."""

    def __init__(self) -> None:
        self._sizes: dict[int, tuple[Any, Size]] = {}  # id -> (the object, kept alive; its size)
        self.work = 0

    def forget(self) -> None:
        """Drop the sizes of this evaluation's values (and the values), keeping the work total.

        A Cost shared by a whole spec calls this after each string: values that outlive it are
        params, whose big lists stay measured in the shared cache.
        """
        self._sizes.clear()

    def charge(self, units: int) -> None:
        """Add ``units`` of work (items or characters touched); refuse past MAX_WORK."""
        self.work += units
        if self.work > MAX_WORK:
            raise CostError(f"expressions do too much work: {approx(self.work)} list items and characters "
                            f"copied or compared (limit {MAX_WORK:,})")

    # -- sizes ------------------------------------------------------------------------------

    def size(self, value: Any) -> Size:
        """The size of ``value``, walking lists iteratively (each distinct list once).

        Raises:
            CostError: the value is over a limit (the walk stops as soon as it is).
        """
        if not isinstance(value, _CONTAINERS):
            if isinstance(value, str) and len(value) > 64:
                return self._remember(value, None)
            return scalar_size(value)
        known = self._known(value)
        if known is not None:
            return known
        return self._walk(value)

    def _known(self, value: Any) -> Size | None:
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        shared = _SHARED.get(id(value))
        if shared is not None and shared[0] is value and shared[1] == len(value):
            _SHARED.move_to_end(id(value))  # least recently used leaves first
            self._sizes[id(value)] = (value, shared[2])
            return shared[2]
        return None

    def _remember(self, value: Any, size: Size | None) -> Size:
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        size = size or scalar_size(value)
        self._sizes[id(value)] = (value, size)
        return size

    def _walk(self, root: Any) -> Size:
        # One frame per open container: [container, its items, next index, elements, chars, bits,
        # depth, text]. A mapping (a YAML param) counts its keys and values.
        stack: list[list] = [[root, _items(root), 0, 0, 0, 0, 0, 2]]
        total = 0  # elements counted so far, tree-wide: the walk stops once it passes the limit
        while True:
            frame = stack[-1]
            items, k = frame[1], frame[2]
            if k < len(items):
                frame[2] = k + 1
                item = items[k]
                kind = type(item)
                if kind is int or kind is float or kind is bool or item is None:  # the common case, inline
                    total += 1
                    if kind is int:
                        bits = item.bit_length()
                        if bits > frame[5]:
                            frame[5] = bits
                        frame[7] += (bits * 1233 >> 12) + 4
                    else:
                        frame[7] += _FLOAT_TEXT + 2
                    if total > MAX_ELEMENTS:
                        check(Size(elements=total))
                    continue
                if isinstance(item, _CONTAINERS):
                    size = self._known(item)
                    if size is None:
                        if len(stack) >= MAX_DEPTH:
                            check(Size(depth=len(stack) + 1))
                        stack.append([item, _items(item), 0, 0, 0, 0, 0, 2])
                        total += 1
                        continue
                    total += size.elements + 1
                else:
                    size = self.size(item)
                    total += 1
                if total > MAX_ELEMENTS:
                    check(Size(elements=total))
                _add(frame, size)
                continue
            stack.pop()
            self.charge(len(items))
            size = check(Size(len(items) + frame[3], frame[4], frame[5], frame[6] + 1, frame[7]))
            self._sizes[id(frame[0])] = (frame[0], size)
            if size.elements >= _SHARED_MIN and not isinstance(frame[0], dict):  # dicts get edited
                _share(frame[0], size)
            if not stack:
                return size
            _add(stack[-1], size)

    def record(self, value: Any, size: Size | None = None) -> Any:
        """Check a computed value (with its predicted size, or measured) and remember its size."""
        if size is None:
            size = self.size(value)
        else:
            check(size)
            if isinstance(value, (list, tuple, str)):
                self._sizes[id(value)] = (value, size)
                if isinstance(value, (list, tuple)) and size.elements >= _SHARED_MIN:
                    _share(value, size)
        if isinstance(value, complex):
            raise CostError("the result is a complex number; expressions compute real numbers only")
        if isinstance(value, float) and not math.isfinite(value):
            raise CostError("result is not a finite number")
        return value

    # -- operations -------------------------------------------------------------------------

    def make_list(self, items: list) -> list:
        """A list literal ``[a, b, ...]`` of values already computed."""
        self.charge(len(items))
        sizes = [self.size(v) for v in items]
        size = Size(len(items) + sum(s.elements for s in sizes), sum(s.chars for s in sizes),
                    max((s.bits for s in sizes), default=0), 1 + max((s.depth for s in sizes), default=0),
                    2 + sum(s.text + 2 for s in sizes))
        check(size)
        return self.record(items, size)

    def binop(self, op: type, left: Any, right: Any) -> Any:
        """``left <op> right`` for one of ``+ - * / // % **``, with its result size checked first.

        Raises:
            CostError: the result would be over a limit, complex or not finite.
            TypeError, ValueError, ZeroDivisionError, OverflowError: Python refused the operation.
        """
        size = self._predict(op, left, right)
        if size is not None:
            check(size)
            self.charge(size.elements + size.chars // 8)
        value = _BINOPS[op](left, right)
        # A predicted list size is exact (+ and * of lists); anything else is measured, cheaply.
        return self.record(value, size if isinstance(value, list) else None)

    def _predict(self, op: type, left: Any, right: Any) -> Size | None:
        if op is ast.Mult:
            if _is_int(left) and isinstance(right, (str, list)):
                left, right = right, left
            if isinstance(left, (str, list)) and _is_int(right):
                return self.size(left).times(right)
            if _is_int(left) and _is_int(right):
                return _bits(left.bit_length() + right.bit_length())
            return None
        if op is ast.Add and isinstance(left, (str, list)) and type(left) is type(right):
            return self.size(left).plus(self.size(right))
        if op is ast.Mod and isinstance(left, str):
            return Size(chars=printf_chars(left, right, self.size(right)))
        if op is ast.Pow and _is_int(left) and _is_int(right):
            if right < 0:
                return None  # a float
            return _bits(max(left.bit_length(), 1) * right if abs(left) > 1 else 1)
        if _is_int(left) and _is_int(right):  # + - // %: at most one bit more than the larger operand
            return _bits(max(left.bit_length(), right.bit_length()) + 1)
        return None

    def call(self, name: str, fn: Callable[..., Any], args: list) -> Any:
        """A table function call ``name(*args)``; arguments that would make huge work are refused first."""
        precheck = _PRECHECKS.get(name)
        if precheck is not None:
            precheck(*args)
        if name in _WALKS:
            self.charge(sum(self.size(a).elements + self.size(a).chars // 8 for a in args))
        return self.record(fn(*args))

    def compare(self, fn: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
        """``left <cmp> right`` (``==``, ``<``, ``in``...): operands are within the limits, so this
        walks at most their sizes, which are charged."""
        a, b = self.size(left), self.size(right)
        self.charge(a.elements + b.elements + (a.chars + b.chars) // 8)
        return fn(left, right)

    def text(self, value: Any) -> int:
        """The length bound of ``str(value)``, checked against the string limit (before printing it)."""
        size = self.size(value)
        n = size.chars if isinstance(value, str) else size.text
        self.charge(n // 8)
        if n > MAX_CHARS:
            raise _too_large("result is too long", n, MAX_CHARS, "characters")
        return n

    def subscript(self, value: Any, index: Any) -> Any:
        """``value[index]``: an item (a part of a measured value) or a slice (bounded by the whole)."""
        result = value[index]
        if isinstance(result, (list, str)):
            self.charge(len(result) // (8 if isinstance(result, str) else 1))
        if isinstance(index, slice) and isinstance(value, list):
            whole = self.size(value)
            # The removed top-level items had at least one element each; nested parts are bounded
            # by the whole, so slicing never walks the value again.
            bound = Size(whole.elements - (len(value) - len(result)), whole.chars, whole.bits, whole.depth, whole.text)
            return self.record(result, bound)
        return self.record(result)


def _share(value: Any, size: Size) -> None:
    global _shared_total
    old = _SHARED.pop(id(value), None)
    if old is not None:
        _shared_total -= old[2].elements
    _SHARED[id(value)] = (value, len(value), size)
    _shared_total += size.elements
    while len(_SHARED) > _SHARED_MAX or _shared_total > _SHARED_ELEMENTS:
        _shared_total -= _SHARED.popitem(last=False)[1][2].elements


def _round_cost(value: Any = None, ndigits: Any = None, *_: Any) -> None:
    # round(int, -n) computes 10**n first: bound n by the integer limit (10**1233 < 2**4096).
    low = -(MAX_INT_BITS * 1233 >> 12)
    if _is_int(value) and _is_int(ndigits) and ndigits < low:
        raise CostError(f"round(): ndigits must be at least {low} for an integer (it computes 10**-ndigits, "
                        f"limit {MAX_INT_BITS:,} integer bits). Received: ndigits=-{approx(-ndigits)}")


# Functions whose arguments, not only their results, decide the work (the rest are O(size of args)).
_PRECHECKS: dict[str, Callable[..., None]] = {"round": _round_cost}
_WALKS = frozenset({"min", "max"})  # functions that walk their arguments (the rest are O(1) on them)


def _add(frame: list, size: Size) -> None:
    frame[3] += size.elements
    frame[4] += size.chars
    frame[5] = max(frame[5], size.bits)
    frame[6] = max(frame[6], size.depth)
    frame[7] += size.text + 2


_CONTAINERS = (list, tuple, dict)


def _items(container: Any) -> Any:
    return [*container.keys(), *container.values()] if isinstance(container, dict) else container


def _bits(bits: int) -> Size:
    return Size(bits=bits, text=(bits * 1233 >> 12) + 2)


def _is_int(value: Any) -> bool:
    return isinstance(value, int)  # bools too: True * 'a' repeats like 1 * 'a'


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}

# One printf conversion: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_MAX_FIELD_DIGITS = 7  # a width or precision of 8+ digits is over MAX_CHARS whatever it says


def printf_chars(fmt: str, arg: Any, arg_size: Size) -> int:
    """An upper bound of ``len(fmt % arg)``: the text plus, per conversion, its width, its precision
    and the printed argument. Widths and precisions are read from the format (or ``*``'s argument)
    before anything is formatted, so ``'%9000000000d' % 1`` is refused without allocating.

    Raises:
        CostError: a width or precision alone is over the string limit.
    """
    total = len(fmt)
    star = arg if _is_int(arg) else 0  # '*' takes its number from the arguments
    for m in _PRINTF.finditer(fmt):
        if m.group(3) == "%":
            continue
        fields = []
        for text in (m.group(1), m.group(2)):
            if text == "*":
                fields.append(abs(star))
            elif text:
                if len(text) > _MAX_FIELD_DIGITS:
                    raise CostError(f"printf width or precision has {len(text)} digits "
                                    f"(limit {MAX_CHARS:,} characters)")
                fields.append(int(text))
        for n in fields:
            if n > MAX_CHARS:
                raise _too_large("printf width or precision is too large", n, MAX_CHARS, "characters")
        # %f of a float prints up to 309 integer digits before the precision
        total += sum(fields) + arg_size.text + 320
    return total
