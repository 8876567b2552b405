"""Check ``expr:`` expressions without TensorFlow: parse, allow-list walk, bounds; re-exports table and values."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, cast

from ..errors import ExpressionError, did_you_mean, short
from .table import (  # noqa: F401  (re-exported)
    DTYPES, EXCLUDED, FUNCTIONS, MAX_ARANGE, MAX_LIST_ARG, MODULES, REQUIRED, Function, Param, markdown_table,
    signature,
)
from .values import (  # noqa: F401  (re-exported)
    FOLD_OPS, MAX_INT_BITS, MAX_PARAM_DEPTH, MAX_PARAM_ITEMS, NeedsShape, fail, fold, index_value, param_problem,
    plain, static_value,
)
from ..graph import Lazy  # noqa: F401  (re-exported: build/expression.py uses exprcheck.Lazy)
from .parse import Rules, gate

MAX_CHARS = 2000  # the schema's maxLength for `expr`
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 64
MAX_STATIC_INT = 2**31 - 1
MAX_EQUATION = 200
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_BINOPS = (*FOLD_OPS, ast.MatMult)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_SYMBOL = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}
_REFUSED = {
    ast.Attribute: "attribute access", ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
    ast.Dict: "a dict literal", ast.Set: "a set literal", ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string", ast.NamedExpr: "assignment (:=)", ast.Starred: "unpacking (*)",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.BoolOp: "'and'/'or'",
    ast.IfExp: "'a if c else b'",
}
_INSTEAD = {
    ast.Attribute: "only ops.<function>(...) and activations.<function>(...) are allowed",
    ast.BoolOp: "use ops.logical_and / ops.logical_or", ast.IfExp: "use ops.where(c, a, b)",
}
# Roles of a node in the walk: a tensor expression, a constant argument, a whole subscript
# index, one element of a subscript tuple. String arguments are checked where they are bound.
_T, _S, _I, _E = "tensor", "static", "index", "element"



@dataclass(frozen=True)
class Checked:
    """An expression that passed the check: its tree (offsets are characters in ``text``) and names.

    ``variables`` and ``params`` are the input variables and params it uses, in order of first use.
    """

    text: str
    tree: ast.Expression
    variables: tuple[str, ...]
    params: tuple[str, ...]


def check_expression(text: str, variables: Iterable[str], names: Mapping[str, Any]) -> None:
    """Check everything about an ``expr:`` that does not need tensors (the resolver's hook).

    Args:
        text: the expression as written.
        variables: the node's input variable names (``x`` for a single input).
        names: the scope's names (params, ``i``, ``in_shape``); shape-dependent values (``Lazy``)
            are accepted, and constant arguments that use them are checked at build time.

    Raises:
        ExpressionError: with ``offset``, the character offset in ``text`` of the problem.
    """
    try:
        check(text, variables, names)
    except (MemoryError, RecursionError) as e:  # the stage boundary: never a traceback
        what = "ran out of memory" if isinstance(e, MemoryError) else "is nested too deeply"
        raise fail(f"expression {what} while checking its constants") from None


def check(text: str, variables: Iterable[str], names: Mapping[str, Any]) -> Checked:
    """Parse and check an expression (see :func:`check_expression`).

    Returns:
        The checked tree and the names it uses.

    Raises:
        ExpressionError: with ``offset``.
    """
    variables = list(variables)
    tree = parse(text)
    walk = _Walk()
    walk.run(tree)
    used_vars: list[str] = []
    used_params: list[str] = []
    for node, role, where in sorted(walk.names, key=lambda r: r[0].col_offset):
        name = node.id
        if name in variables:
            if role != _T:
                raise fail(f"{where} must be a constant (a number or a param), but {name!r} is an input tensor"
                           + ("; index with a tensor through ops.take" if role in (_I, _E) else ""), node)
            if name not in used_vars:
                used_vars.append(name)
        elif name in names:
            problem = param_problem(names[name])
            if problem:
                raise fail(f"param {name!r} {problem}; expressions may use only params that are numbers, "
                           "booleans or lists of numbers", node)
            if name not in used_params:
                used_params.append(name)
        else:
            raise _unknown_name(node, variables, names)
    for param, arg, qual in walk.statics:
        try:
            value = static_value(arg, names)
        except NeedsShape:
            continue
        _check_kind(param, value, qual, arg)
    for index in walk.indexes:
        try:
            index_value(index, names)
        except NeedsShape:
            continue
    for call in walk.sized:
        _arange_size(call, names)
    return Checked(text, tree, tuple(used_vars), tuple(used_params))


# expr: through the shared gate: printable ASCII over several lines, depth bounded by _Walk.
RULES = Rules(max_chars=MAX_CHARS, max_parts=MAX_NODES, max_ast_nodes=4 * MAX_NODES, max_depth=None,
              printable=True, long_at_limit=True, multiline=True, value_error_nested=False)


def parse(text: str) -> ast.Expression:
    """Parse ``text`` (ASCII, bounded length) into an ``ast.Expression`` whose offsets are in ``text``.

    Raises:
        ExpressionError: not text, not ASCII, too long, or a syntax error.
    """
    return gate(text, RULES)


class _Walk:
    """The allow-list walk: iterative, bounded in size and depth; collects names and constants."""

    def __init__(self) -> None:
        self.names: list[tuple[ast.Name, str, str]] = []  # node, role, what it is used as
        self.statics: list[tuple[Param, ast.expr, str]] = []  # constant arguments to type-check
        self.indexes: list[ast.expr] = []
        self.sized: list[ast.Call] = []  # ops.arange calls: their size comes from constants

    def run(self, tree: ast.Expression) -> None:
        stack: list[tuple[ast.expr, int, str, str]] = [(tree.body, 1, _T, "")]
        count = 0
        while stack:
            node, depth, role, where = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise fail(f"expression has more than {MAX_NODES} parts", node)
            if depth > MAX_DEPTH:
                raise fail(f"expression is nested more than {MAX_DEPTH} levels deep", node)
            children = self.visit(node, role, where)
            # Reversed, so the leftmost problem is the one reported.
            stack.extend((child, depth + 1, r, w) for child, r, w in reversed(children))

    def visit(self, node: ast.expr, role: str, where: str) -> list[tuple[ast.expr, str, str]]:
        inner = _S if role in (_S, _I, _E) else _T
        if isinstance(node, ast.Constant):
            _literal(node, role)
            return []
        if isinstance(node, ast.Name):
            self.names.append((node, role, where or "a subscript"))
            return []
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise fail(f"operator {_SYMBOL.get(type(node.op), type(node.op).__name__)!r} is not allowed", node)
            if isinstance(node.op, ast.MatMult) and inner == _S:
                raise fail("'@' needs tensors; it is not allowed in constant arguments or subscripts", node)
            if isinstance(node.op, ast.Pow):
                _exponent(node)
            return [(node.left, inner, where), (node.right, inner, where)]
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                raise fail("'not' is not allowed (use ops.logical_not)", node)
            if isinstance(node.op, ast.Invert):
                raise fail("'~' is not allowed (use ops.logical_not)", node)
            return [(node.operand, inner, where)]
        if isinstance(node, ast.Compare):
            if inner == _S:
                raise fail("comparisons are not allowed in constant arguments or subscripts", node)
            for op in node.ops:
                if not isinstance(op, _CMPOPS):
                    raise fail(f"operator {_SYMBOL.get(type(op), type(op).__name__)!r} is not allowed", node)
            return [(node.left, _T, where)] + [(c, _T, where) for c in node.comparators]
        if isinstance(node, ast.Subscript):
            self.indexes.append(node.slice)
            return [(node.value, inner, where), (node.slice, _I, "a subscript")]
        if isinstance(node, ast.Slice):
            if role not in (_I, _E):
                raise fail("a slice is only allowed in a subscript", node)
            return [(p, _S, "a slice bound") for p in (node.lower, node.upper, node.step) if p is not None]
        if isinstance(node, ast.Tuple) and role in (_I, _E):
            if role == _E:
                raise fail("nested tuples are not allowed in subscripts", node)
            return [(e, _E, where) for e in node.elts]
        if isinstance(node, (ast.List, ast.Tuple)):
            if role in (_I, _E):
                raise fail("lists are not allowed in subscripts (gather with ops.take(x, [..], axis=..))", node)
            return [(e, inner, where) for e in node.elts]
        if isinstance(node, ast.Call):
            if inner == _S:
                raise fail("function calls are not allowed in constant arguments or subscripts", node)
            return self.call(node)
        instead = _INSTEAD.get(type(node))
        raise fail(f"{_REFUSED.get(type(node), type(node).__name__)} is not allowed in expressions"
                   + (f"; {instead}" if instead else ""), node)

    def call(self, node: ast.Call) -> list[tuple[ast.expr, str, str]]:
        qual, fn = _function(node)
        if qual == "ops.arange":
            self.sized.append(node)
        for arg in [*node.args, *node.keywords]:
            if isinstance(arg, ast.Starred) or (isinstance(arg, ast.keyword) and arg.arg is None):
                raise fail("unpacking (* and **) is not allowed in expressions", arg)
        n_params = len(fn.params)
        if len(node.args) > n_params and not fn.varargs:
            raise fail(f"{qual} takes at most {n_params} positional argument{'s' * (n_params != 1)}, "
                       f"got {len(node.args)}", node.args[n_params])
        bound: dict[str, ast.expr] = {p.name: a for p, a in zip(fn.params, node.args)}
        for kw in node.keywords:
            param = next((p for p in fn.params if p.name == kw.arg), None)
            if param is None or (fn.varargs and param is fn.params[0]):
                names = [p.name for p in fn.params[1 if fn.varargs else 0:]]
                match = did_you_mean(kw.arg, names)
                raise fail(f"{qual} has no argument {kw.arg!r}"
                           + (f"; it takes {', '.join(names)}" if names else "; it takes no keyword arguments"),
                           kw, hint=f"did you mean {match!r}?" if match else None)
            if kw.arg in bound:
                raise fail(f"{qual} got two values for argument {kw.arg!r}", kw)
            bound[cast(str, kw.arg)] = kw.value  # `**` (arg None) was refused above
        for p in fn.params:
            if p.required and p.name not in bound:
                raise fail(f"{qual} needs argument {p.name!r}: {signature(qual)}", node)
        children: list[tuple[ast.expr, str, str]] = []
        for p in fn.params:
            if p.name not in bound:
                continue
            arg, where = bound[p.name], f"argument {p.name!r} of {qual}"
            if p.kind in ("tensor", "tensors"):
                children.append((arg, _T, where))
            elif isinstance(arg, ast.Constant) and (isinstance(arg.value, str) or p.strings_only):
                _string_arg(p, arg, qual, len(node.args) - 1 if fn.varargs else 0)
            elif p.strings_only:
                raise fail(f"{where} must be a string literal: {p.describe()}", arg)
            else:
                self.statics.append((p, arg, qual))
                children.append((arg, _S, where))
        children.extend((a, _T, f"an operand of {qual}") for a in node.args[n_params:])
        return children


def _function(node: ast.Call) -> tuple[str, Function]:
    func = node.func
    if isinstance(func, ast.Name):
        guess = next((f"{m}.{func.id}" for m in MODULES if f"{m}.{func.id}" in FUNCTIONS), None)
        raise fail(f"only ops.* and activations.* functions may be called. Received: {short(func.id)}", func,
                   hint=f"did you mean {guess!r}?" if guess else None)
    qual = dotted(func)
    if qual is None or qual.rpartition(".")[0] not in MODULES:
        raise fail("only ops.<function>(...) and activations.<function>(...) may be called", func)
    assert isinstance(func, ast.Attribute)  # dotted() names only attribute chains
    at = (func.end_col_offset or func.col_offset) - len(func.attr)
    if qual in EXCLUDED:
        raise fail(f"{qual} is not allowed in expressions: {EXCLUDED[qual]}", at)
    if qual not in FUNCTIONS:
        match = did_you_mean(qual, FUNCTIONS)
        raise fail(f"unknown function {short(qual)}; see the function table in docs/expressions.md", at,
                   hint=f"did you mean {match!r}?" if match else None)
    return qual, FUNCTIONS[qual]


def dotted(func: ast.AST) -> str | None:
    """``ops.image.extract_patches`` for a called attribute chain on a name; None for anything else."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute) and len(parts) < 3:
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or not parts:
        return None
    return ".".join([func.id, *reversed(parts)])


def _arange_size(node: ast.Call, names: Mapping[str, Any]) -> None:
    """An ``ops.arange`` makes a tensor sized by its constants: a step of 0 or more than MAX_ARANGE values fail."""
    values = {}
    for p, arg in call_arguments(node)[2]:
        try:
            values[p.name] = static_value(arg, names)
        except NeedsShape:
            return  # checked when the shapes are known
    start, stop, step = values["start"], values.get("stop"), values.get("step")
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    if not all(isinstance(v, (int, float)) for v in (start, stop, step)):
        return  # _check_kind reports the argument
    if step == 0:
        raise fail("ops.arange needs a step other than 0", node)
    count = max(0, math.ceil((stop - start) / step))
    if count > MAX_ARANGE:
        raise fail(f"ops.arange makes {count:,} values; at most {MAX_ARANGE:,} are allowed", node)


def _literal(node: ast.Constant, role: str) -> None:
    value = node.value
    if isinstance(value, str):
        raise fail("strings are only allowed as values of enumerated arguments "
                   "(dtype='float32', mode='reflect', einsum equations)", node)
    if value is None and role == _T:
        raise fail("None is only allowed in subscripts (x[:, None]) and as an argument value", node)
    if value is Ellipsis and role not in (_I, _E):
        raise fail("'...' is only allowed in subscripts", node)
    if value is None or value is Ellipsis or isinstance(value, bool):
        return
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise fail(f"integer literal is too large (more than {MAX_INT_BITS} bits)", node)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise fail("number literal is not finite", node)
    else:
        raise fail(f"only numbers are allowed as literals. Received: {short(value)}", node)


def _exponent(node: ast.BinOp) -> None:
    exp = node.right
    if isinstance(exp, ast.UnaryOp) and isinstance(exp.op, (ast.USub, ast.UAdd)):
        exp = exp.operand
    if not (isinstance(exp, ast.Constant) and isinstance(exp.value, (int, float)) and not isinstance(exp.value, bool)
            and abs(exp.value) <= MAX_EXPONENT):
        raise fail(f"the exponent of '**' must be a number literal between -{MAX_EXPONENT} and "
                   f"{MAX_EXPONENT} (use ops.power for tensor exponents)", node.right)


def _string_arg(p: Param, node: ast.Constant, qual: str, operands: int) -> None:
    value, where = node.value, f"argument {p.name!r} of {qual}"
    if value is None and p.nullable:
        return
    if not isinstance(value, str):
        raise fail(f"{where} must be {p.describe()}. Received: {p.name}={short(value)}", node)
    if p.kind == "equation":
        _equation(value, operands, node, where)
        return
    if value not in p.strings():
        match = did_you_mean(value, p.strings())
        raise fail(f"{where} must be {p.describe()}. Received: {p.name}={short(value)}", node,
                   hint=f"did you mean {match!r}?" if match else None)


_EQUATION = re.compile(r"[a-z,.>-]+\Z")


def _equation(value: str, operands: int, node: ast.AST, where: str) -> None:
    if len(value) > MAX_EQUATION or not _EQUATION.match(value):
        raise fail(f"{where} must be an einsum equation of at most {MAX_EQUATION} characters from "
                   f"a-z , . -> (like 'bij,bjk->bik'). Received: {short(value)}", node)
    inputs, arrow, output = value.partition("->")
    if "->" in output or "-" in inputs.replace("->", "") or "-" in output or ">" in inputs + output:
        raise fail(f"{where} has a misplaced '-' or '>'. Received: {short(value)}", node)
    terms = inputs.split(",")
    for term in terms + ([output] if arrow else []):
        if term.replace("...", "").count(".") or term.count("...") > 1:
            raise fail(f"{where}: '.' is only allowed as one '...' per term. Received: {short(value)}", node)
    if len(terms) != operands:
        raise fail(f"{where} names {len(terms)} operand{'s' * (len(terms) != 1)} but {operands} "
                   f"{'is' if operands == 1 else 'are'} given. Received: {short(value)}", node)


def _unknown_name(node: ast.Name, variables: list[str], names: Mapping[str, Any]) -> ExpressionError:
    name = node.id
    if name in MODULES:
        return fail(f"{name!r} is a module; call one of its functions, like {name}.relu(x)", node)
    guess = next((f"{m}.{name}" for m in MODULES if f"{m}.{name}" in FUNCTIONS), None)
    match = did_you_mean(name, [*variables, *names])
    hint = f"did you mean {match!r}?" if match else (f"did you mean {guess}(...)?" if guess else None)
    return fail(f"unknown name {short(name)}; an expression sees its input variables "
                f"({', '.join(variables) or 'none'}) and the params", node, hint=hint)


def _check_kind(p: Param, value: Any, qual: str, node: ast.AST) -> None:
    if not p.accepts(value, MAX_STATIC_INT):
        raise fail(f"argument {p.name!r} of {qual} must be {p.describe()}. Received: {p.name}={short(value)}", node)


def call_arguments(node: ast.Call) -> tuple[str, Function, list[tuple[Param, ast.expr]], list[ast.expr]]:
    """A checked call's function, its bound (param, argument) pairs in table order, and extra operands."""
    # check() admits only calls of ``module.function`` and no ``**`` (a keyword's arg is never None).
    qual = cast(str, dotted(node.func))
    fn = FUNCTIONS[qual]
    bound: dict[str | None, ast.expr] = dict(zip((p.name for p in fn.params), node.args))
    bound.update((kw.arg, kw.value) for kw in node.keywords)
    pairs = [(p, bound[p.name]) for p in fn.params if p.name in bound]
    return qual, fn, pairs, list(node.args[len(fn.params):])


def export_caveats(text: str) -> list[tuple[int, str]]:
    """Calls in a (valid) expression known to break ONNX export: (offset, message) pairs.

    Raises:
        ExpressionError: the expression does not parse.
    """
    found = []
    stack: list[ast.AST] = [parse(text)]
    while stack:
        node = stack.pop()
        stack.extend(ast.iter_child_nodes(node))
        if not isinstance(node, ast.Call):
            continue
        qual = dotted(node.func)
        if qual is None:
            continue
        fn = FUNCTIONS.get(qual)
        if fn is None or fn.caveat is None:
            continue
        if fn.caveat_when is not None:
            key, bad = fn.caveat_when
            pairs = call_arguments(node)[2] if len(node.args) <= len(fn.params) else []
            given = next((a for p, a in pairs if p.name == key), None)
            default = next(p.default for p in fn.params if p.name == key)
            value = given.value if isinstance(given, ast.Constant) else (default if given is None else None)
            if value is not None and value != bad:
                continue
        found.append((node.col_offset, f"{qual}: {fn.caveat}"))
    return sorted(found)
