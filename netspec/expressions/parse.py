"""The one safe parsing gate of both expression languages, ``${...}`` and ``expr:``.

Untrusted text becomes an ``ast.Expression`` only through :func:`gate`: a string, within its
character set and length, parsed with ``ast`` in eval mode (syntax errors, deep nesting and parser
failures become located ExpressionErrors), then walked iteratively under a node budget that makes
every offset absolute in the text. What an expression may *contain* (the allow-lists) is each
language's own: the walk hands every node to the caller's ``visit``.

The two languages keep the small differences their messages always had; :class:`Rules` names each.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..errors import ExpressionError, short


@dataclass(frozen=True)
class Rules:
    """How one language passes the gate.

    Attributes:
        max_chars: the longest text accepted.
        max_parts: the number of parts the "more than N parts" message names.
        max_ast_nodes: AST nodes the walk visits before refusing (``expr:`` counts its context and
            operator nodes too, so it allows four per part).
        max_depth: refuse nesting deeper than this during the walk; None when the caller's own walk
            bounds depth.
        printable: refuse control characters (at their offset) as well as non-ASCII ("printable
            ASCII"); else only non-ASCII is refused, at offset 0 ("ASCII").
        long_at_limit: the "longer than" error points at the limit; else at offset 0.
        multiline: offsets count lines (``expr:`` may span lines; parsed with leading space removed);
            else the text is one line (parsed stripped) and offsets are columns plus the lead.
        value_error_nested: a ValueError from the parser reads "too deeply nested"; else "invalid
            expression: <reason>".
    """

    max_chars: int
    max_parts: int
    max_ast_nodes: int
    max_depth: int | None
    printable: bool
    long_at_limit: bool
    multiline: bool
    value_error_nested: bool


def fail(message: str, offset: int | ast.AST = 0, hint: str | None = None) -> ExpressionError:
    """An ExpressionError with ``offset``: a character offset, or a checked node's position."""
    return ExpressionError(message, hint=hint,
                           offset=offset if isinstance(offset, int) else getattr(offset, "col_offset", 0))


Visit = Callable[[ast.AST, int], Iterable[ast.AST]]


def gate(text: object, rules: Rules, visit: Visit | None = None) -> ast.Expression:
    """Parse ``text`` safely into an ``ast.Expression`` whose offsets are characters in ``text``.

    Args:
        text: the expression as written (the inside of ``${...}``, or an ``expr:`` value).
        rules: the language's limits and message forms.
        visit: called with each node (offsets already absolute) and its depth, in source order;
            returns the children to walk (all of them by default). It raises to refuse a node.

    Returns:
        The parsed tree.

    Raises:
        ExpressionError: not a string, bad characters, too long, empty, a syntax error, too deeply
            nested or too many parts; ``offset`` says where.
    """
    if not isinstance(text, str):
        raise fail(f"an expression must be a string. Received: {short(text)}")
    if rules.printable:
        bad = next((k for k, c in enumerate(text) if not (c.isascii() and (c.isprintable() or c in "\t\n\r"))), None)
        if bad is not None:
            raise fail("expressions must be printable ASCII", bad)
    elif not text.isascii():
        raise fail("expressions must be ASCII")
    if len(text) > rules.max_chars:
        raise fail(f"expression is longer than {rules.max_chars} characters",
                      rules.max_chars if rules.long_at_limit else 0)
    body = text.lstrip()
    lead = len(text) - len(body)
    if not body.strip():
        raise fail("empty expression")
    tree = _parse(text, body if rules.multiline else body.rstrip(), lead, rules)
    starts = _line_starts(body) if rules.multiline else [0]
    count = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]  # ast nodes; Any: only some kinds have positions
    while stack:  # iterative: offsets become absolute before any allow-list reads them
        node, depth = stack.pop()
        count += 1
        if count > rules.max_ast_nodes:
            raise fail(f"expression has more than {rules.max_parts} parts")
        if rules.max_depth is not None and depth > rules.max_depth:
            raise fail("expression is too deeply nested", node)
        if hasattr(node, "col_offset"):
            if rules.multiline:
                node.col_offset = lead + starts[node.lineno - 1] + node.col_offset
                if getattr(node, "end_lineno", None) is not None and node.end_col_offset is not None:
                    node.end_col_offset = lead + starts[node.end_lineno - 1] + node.end_col_offset
                node.lineno = node.end_lineno = 1
            else:
                node.col_offset += lead
        children = ast.iter_child_nodes(node) if visit is None else visit(node, depth)
        stack.extend((child, depth + 1) for child in children)
    return tree


def _parse(text: str, source: str, lead: int, rules: Rules) -> ast.Expression:
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as e:
        if rules.multiline:
            line = min(max((e.lineno or 1) - 1, 0), source.count("\n"))
            # Python reports offset 0 for an expression that ends too early: point at its end.
            where = lead + _line_starts(source)[line] + e.offset - 1 if e.offset else len(text.rstrip())
            where = min(max(where, 0), len(text))
        else:
            where = max((e.offset or 1) - 1, 0) + lead
        raise fail(f"invalid expression: {e.msg}", where) from None
    except (RecursionError, MemoryError):
        raise fail("expression is too deeply nested") from None
    except ValueError as e:
        raise fail("expression is too deeply nested" if rules.value_error_nested
                      else f"invalid expression: {short(str(e), 100)}") from None


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for k, c in enumerate(text):
        if c == "\n":
            starts.append(k + 1)
    return starts
