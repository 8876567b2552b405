"""Check ``expr:`` expressions without TensorFlow: parse, allow-list walk, function table, bounds."""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .errors import ExpressionError, did_you_mean, short
from .interp import Lazy

MAX_CHARS = 2000  # the schema's maxLength for `expr`
MAX_NODES = 400
MAX_DEPTH = 40
MAX_INT_BITS = 64
MAX_EXPONENT = 64
MAX_STATIC_INT = 2**31 - 1
MAX_PARAM_ITEMS = 10_000
MAX_PARAM_DEPTH = 4
MAX_EQUATION = 200
MAX_LIST_ARG = 64  # items of a list-valued constant argument (axes, shapes, repeats)
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------------------------------------
# The function table: the only functions an expression may call. Data, so that the docs and the
# schema are generated from it; expr.py maps each key to its Keras function.


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
MODULES = ("ops", "activations")

_KIND_TEXT = {
    "tensor": "an expression", "tensors": "a list of expressions", "int": "an integer",
    "number": "a number", "bool": "True or False", "ints": "an integer or a list of integers",
    "shape": "a list of integers (-1: inferred)", "nested": "an integer, or a list of integers or of integer lists",
    "dtype": "a dtype name", "equation": "an einsum equation like 'bij,bjk->bik'",
}


@dataclass(frozen=True)
class Param:
    """One argument of a table function.

    ``kind`` is ``tensor``/``tensors`` (any expression) or a constant kind: ``int``, ``number``,
    ``bool``, ``ints``, ``shape``, ``nested``, ``choice``, ``dtype``, ``equation``; a trailing
    ``?`` also allows None. ``choices`` are the strings a ``choice`` (or a number) argument takes.
    """

    name: str
    kind: str = "tensor"
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        return self.kind.endswith("?")

    @property
    def base(self) -> str:
        return self.kind.rstrip("?")

    @property
    def strings_only(self) -> bool:
        return self.base in ("choice", "dtype", "equation")

    def strings(self) -> tuple[str, ...]:
        return DTYPES if self.base == "dtype" else self.choices

    def describe(self) -> str:
        if self.base == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = _KIND_TEXT[self.base]
            if self.lo is not None or self.hi is not None:
                text += f" in [{self.lo if self.lo is not None else ''}, {self.hi if self.hi is not None else ''}]"
            if self.choices:
                text += ", or one of " + ", ".join(repr(c) for c in self.choices)
        return text + (", or None" if self.nullable else "")

    def accepts(self, value: Any, bound: int) -> bool:
        """Whether a constant ``value`` fits this argument (ints within ``bound`` and lo/hi)."""
        lo = -bound if self.lo is None else self.lo
        hi = bound if self.hi is None else self.hi

        def whole(v: Any, low: int = lo) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and low <= v <= hi

        def listed(v: Any, ok) -> bool:
            return isinstance(v, list) and len(v) <= MAX_LIST_ARG and all(ok(e) for e in v)

        if value is None:
            return self.nullable
        if isinstance(value, str):
            return value in self.strings()
        kind = self.base
        if kind == "int":
            return whole(value)
        if kind == "number":
            return whole(value) or (isinstance(value, float) and math.isfinite(value))
        if kind == "bool":
            return isinstance(value, bool)
        if kind == "ints":
            return whole(value) or listed(value, whole)
        if kind == "shape":
            return whole(value, max(lo, -1)) or listed(value, lambda v: whole(v, max(lo, -1)))
        if kind == "nested":
            return whole(value) or listed(value, lambda v: whole(v) or listed(v, whole))
        return False


@dataclass(frozen=True)
class Function:
    """A table function: its arguments (Keras's own names and order), docs and export caveat.

    ``varargs``: further positional arguments are tensor operands (einsum). ``returns``:
    ``tensor``, ``list`` or ``pair``. ``caveat_when``: (argument, value) for which the caveat holds.
    """

    params: tuple[Param, ...]
    group: str
    note: str = ""
    varargs: bool = False
    returns: str = "tensor"
    caveat: str | None = None
    caveat_when: tuple[str, Any] | None = None


FUNCTIONS: dict[str, Function] = {}


def _add(group: str, names: str, params: tuple[Param, ...], note: str = "", *, module: str = "ops", **kw) -> None:
    for name in names.split():
        FUNCTIONS[f"{module}.{name}"] = Function(params, group, note, **kw)


P = Param
_X = (P("x"),)
_X12 = (P("x1"), P("x2"))
_AXIS = P("axis", "int", -1)
_REDUCE = (P("x"), P("axis", "ints?", None), P("keepdims", "bool", False))
_DTYPE = P("dtype", "dtype?", None)
_ARGMAX = ("on float inputs tf2onnx emits Bitcast/BitwiseAnd and the ONNX graph is invalid; "
           "take the argmax outside the model")
_GELU = "exact gelu emits Erfc, which tf2onnx cannot convert; use approximate=True for ONNX"
_EXPM1 = "tf2onnx emits Expm1, which ONNX lacks (invalid graph); write ops.exp(x) - 1 for ONNX"
_LOG1P = "tf2onnx emits Log1p, which ONNX lacks (invalid graph); write ops.log(1 + x) for ONNX"

_add("elementwise", "abs absolute negative exp log log2 log10 sqrt rsqrt square cbrt reciprocal "
     "sin cos tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh sign floor ceil trunc erf "
     "isnan isinf isfinite logical_not", _X)
_add("elementwise", "expm1", _X, caveat=_EXPM1)
_add("elementwise", "log1p", _X, caveat=_LOG1P)
_add("elementwise", "round", (P("x"), P("decimals", "int", 0, lo=-20, hi=20)))
_add("elementwise", "stop_gradient", (P("variable"),), "identity whose gradient is zero")
_add("elementwise", "nan_to_num", (P("x"), P("nan", "number", 0.0), P("posinf", "number?", None),
                                   P("neginf", "number?", None)))
_add("activation", "relu relu6 sigmoid hard_sigmoid hard_silu hard_swish silu swish softplus softsign selu "
     "log_sigmoid hard_tanh tanh_shrink sparse_plus sparse_sigmoid", _X)
_add("activation", "gelu", (P("x"), P("approximate", "bool", True)), "tanh approximation by default",
     caveat=_GELU, caveat_when=("approximate", False))
_add("activation", "elu", (P("x"), P("alpha", "number", 1.0)))
_add("activation", "celu", (P("x"), P("alpha", "number", 1.0)), caveat=_EXPM1)
_add("activation", "leaky_relu", (P("x"), P("negative_slope", "number", 0.2)))
_add("activation", "glu sparsemax softmax log_softmax", (P("x"), _AXIS))
_add("activation", "soft_shrink hard_shrink", (P("x"), P("threshold", "number", 0.5)))
_add("activation", "squareplus", (P("x"), P("b", "number", 4)))
_add("activation", "threshold", (P("x"), P("threshold", "number"), P("default_value", "number")),
     "x where x > threshold, else default_value")
_add("activation", "normalize", (P("x"), _AXIS, P("order", "int", 2, lo=1, hi=64), P("epsilon", "number?", None)),
     "x / norm(x) along axis")
_add("binary", "add subtract multiply divide true_divide floor_divide mod power maximum minimum arctan2 hypot "
     "equal not_equal less less_equal greater greater_equal logical_and logical_or logical_xor", _X12,
     "broadcasting")
_add("binary", "logaddexp", _X12, caveat=_LOG1P)
_add("binary", "where", (P("condition"), P("x1"), P("x2")), "x1 where condition, else x2")
_add("binary", "clip", (P("x"), P("x_min"), P("x_max")))
_add("reduction", "sum mean std var logsumexp any all amax amin", _REDUCE)
_add("reduction", "max min", (*_REDUCE, P("initial", "number?", None)))
_add("reduction", "prod", (*_REDUCE, _DTYPE))
_add("reduction", "argmax argmin", (P("x"), P("axis", "int?", None), P("keepdims", "bool", False)),
     "int32 indices", caveat=_ARGMAX)
_add("reduction", "norm", (P("x"), P("ord", "number?", None, choices=("fro", "nuc")), P("axis", "ints?", None),
                           P("keepdims", "bool", False)))
_add("reduction", "cumsum cumprod", (P("x"), P("axis", "int?", None), _DTYPE))
_add("shape", "reshape", (P("x"), P("newshape", "shape")), "the shape includes the batch axis: [-1, ...]")
_add("shape", "transpose", (P("x"), P("axes", "ints?", None)), "axes include the batch axis 0")
_add("shape", "expand_dims", (P("x"), P("axis", "ints")))
_add("shape", "squeeze", (P("x"), P("axis", "ints?", None)))
_add("shape", "concatenate", (P("xs", "tensors"), P("axis", "int", 0)), "write axis=-1 to join features")
_add("shape", "stack", (P("x", "tensors"), P("axis", "int", 0)))
_add("shape", "split", (P("x"), P("indices_or_sections", "ints"), P("axis", "int", 0)), "a list; index it: [0]",
     returns="list")
_add("shape", "repeat", (P("x"), P("repeats", "ints"), P("axis", "int?", None)))
_add("shape", "tile", (P("x"), P("repeats", "ints")))
_add("shape", "broadcast_to", (P("x"), P("shape", "shape")))
_add("shape", "flip", (P("x"), P("axis", "ints?", None)))
_add("shape", "roll", (P("x"), P("shift", "ints"), P("axis", "ints?", None)))
_add("shape", "moveaxis", (P("x"), P("source", "ints"), P("destination", "ints")))
_add("shape", "swapaxes", (P("x"), P("axis1", "int"), P("axis2", "int")))
_add("shape", "take take_along_axis", (P("x"), P("indices"), P("axis", "int?", None)), "gather")
_add("shape", "pad", (P("x"), P("pad_width", "nested"), P("mode", "choice", "constant",
                                                         choices=("constant", "reflect", "symmetric")),
                      P("constant_values", "number?", None)))
_add("shape", "tril triu", (P("x"), P("k", "int", 0)))
_add("linear algebra", "matmul dot outer", _X12)
_add("linear algebra", "tensordot", (P("x1"), P("x2"), P("axes", "nested", 2)))
_add("linear algebra", "einsum", (P("subscripts", "equation"),), "einsum('bij,bjk->bik', a, b)", varargs=True)
_add("other", "cast", (P("x"), P("dtype", "dtype")))
_add("other", "sort argsort", (P("x"), _AXIS))
_add("other", "top_k", (P("x"), P("k", "int", lo=1, hi=65536), P("sorted", "bool", True)),
     "a pair (values, indices)", returns="pair")
_add("other", "one_hot", (P("x"), P("num_classes", "int", lo=1, hi=65536), _AXIS, _DTYPE))
_add("other", "zeros_like ones_like", (P("x"), _DTYPE))
_add("other", "full_like", (P("x"), P("fill_value", "number"), _DTYPE))

_ACT = dict(module="activations")
_add("activations", "exponential hard_sigmoid hard_silu hard_swish hard_tanh linear log_sigmoid mish relu6 selu "
     "sigmoid silu softplus softsign sparse_plus sparse_sigmoid swish tanh tanh_shrink", _X, **_ACT)
_add("activations", "gelu", (P("x"), P("approximate", "bool", False)), "exact by default", caveat=_GELU,
     caveat_when=("approximate", False), **_ACT)
_add("activations", "elu", (P("x"), P("alpha", "number", 1.0)), **_ACT)
_add("activations", "celu", (P("x"), P("alpha", "number", 1.0)), caveat=_EXPM1, **_ACT)
_add("activations", "glu log_softmax softmax sparsemax", (P("x"), _AXIS), **_ACT)
_add("activations", "hard_shrink soft_shrink", (P("x"), P("threshold", "number", 0.5)), **_ACT)
_add("activations", "leaky_relu", (P("x"), P("negative_slope", "number", 0.2)), **_ACT)
_add("activations", "relu", (P("x"), P("negative_slope", "number", 0.0), P("max_value", "number?", None),
                             P("threshold", "number", 0.0)), **_ACT)
_add("activations", "squareplus", (P("x"), P("b", "number", 4)), **_ACT)
_add("activations", "threshold", (P("x"), P("threshold", "number"), P("default_value", "number")), **_ACT)

_CALLABLE = "it takes a function"
_SIZED = "it creates a tensor whose size comes from its arguments (derive shapes from an input: ops.zeros_like)"
EXCLUDED: dict[str, str] = {
    **{f"ops.{n}": _CALLABLE for n in ("map scan associative_scan vectorized_map vectorize cond switch "
                                       "while_loop fori_loop custom_gradient jvp").split()},
    **{f"ops.{n}": _SIZED for n in ("zeros ones full empty empty_like arange eye identity tri linspace logspace "
                                    "geomspace array bartlett blackman hamming hanning kaiser").split()},
    **{f"ops.{n}": "it moves data to the host or returns Python values"
       for n in "convert_to_numpy convert_to_tensor shape dtype ndim size is_tensor".split()},
    **{f"ops.{n}": "its output shape depends on the data" for n in "nonzero unique histogram bincount".split()},
    **{f"activations.{n}": "it is not a tensor function" for n in "get serialize deserialize".split()},
}

_FOLD = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_BINOPS = (*_FOLD, ast.MatMult)
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


class NeedsShape(Exception):
    """A constant uses a param known only once shapes are inferred (validate time)."""


@dataclass(frozen=True)
class Checked:
    """An expression that passed the check: its tree (offsets are characters in ``text``) and names.

    ``variables`` and ``params`` are the input variables and params it uses, in order of first use.
    """

    text: str
    tree: ast.Expression
    variables: tuple[str, ...]
    params: tuple[str, ...]


def fail(message: str, offset: int | ast.AST = 0, hint: str | None = None) -> ExpressionError:
    """An ExpressionError with ``offset``: a character offset, or a checked node's position."""
    err = ExpressionError(message, hint=hint)
    err.offset = offset if isinstance(offset, int) else getattr(offset, "col_offset", 0)
    return err


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
    check(text, variables, names)


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
    for param, node, qual in walk.statics:
        try:
            value = static_value(node, names)
        except NeedsShape:
            continue
        _check_kind(param, value, qual, node)
    for node in walk.indexes:
        try:
            index_value(node, names)
        except NeedsShape:
            continue
    return Checked(text, tree, tuple(used_vars), tuple(used_params))


def parse(text: str) -> ast.Expression:
    """Parse ``text`` (ASCII, bounded length) into an ``ast.Expression`` whose offsets are in ``text``.

    Raises:
        ExpressionError: not text, not ASCII, too long, or a syntax error.
    """
    if not isinstance(text, str):
        raise fail(f"an expression must be a string. Received: {short(text)}")
    bad = next((k for k, c in enumerate(text) if not (c.isascii() and (c.isprintable() or c in "\t\n\r"))), None)
    if bad is not None:
        raise fail("expressions must be printable ASCII", bad)
    if len(text) > MAX_CHARS:
        raise fail(f"expression is longer than {MAX_CHARS} characters", MAX_CHARS)
    body = text.lstrip()
    lead = len(text) - len(body)
    if not body.strip():
        raise fail("empty expression")
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        line = min(max((e.lineno or 1) - 1, 0), body.count("\n"))
        # Python reports offset 0 for an expression that ends too early: point at its end.
        where = lead + _line_starts(body)[line] + e.offset - 1 if e.offset else len(text.rstrip())
        raise fail(f"invalid expression: {e.msg}", min(max(where, 0), len(text))) from None
    except (RecursionError, MemoryError):
        raise fail("expression is too deeply nested") from None
    except ValueError as e:
        raise fail(f"invalid expression: {short(str(e), 100)}") from None
    starts = _line_starts(body)
    stack: list[ast.AST] = [tree]
    count = 0
    while stack:  # iterative: offsets become absolute before the allow-list walk reads them
        node = stack.pop()
        count += 1
        if count > 4 * MAX_NODES:  # context and operator nodes count here too
            raise fail(f"expression has more than {MAX_NODES} parts")
        if hasattr(node, "col_offset"):
            node.col_offset = lead + starts[node.lineno - 1] + node.col_offset
            if getattr(node, "end_lineno", None) is not None and node.end_col_offset is not None:
                node.end_col_offset = lead + starts[node.end_lineno - 1] + node.end_col_offset
            node.lineno = node.end_lineno = 1
        stack.extend(ast.iter_child_nodes(node))
    return tree


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for k, c in enumerate(text):
        if c == "\n":
            starts.append(k + 1)
    return starts


class _Walk:
    """The allow-list walk: iterative, bounded in size and depth; collects names and constants."""

    def __init__(self) -> None:
        self.names: list[tuple[ast.Name, str, str]] = []  # node, role, what it is used as
        self.statics: list[tuple[Param, ast.AST, str]] = []  # constant arguments to type-check
        self.indexes: list[ast.AST] = []

    def run(self, tree: ast.Expression) -> None:
        stack: list[tuple[ast.AST, int, str, str]] = [(tree.body, 1, _T, "")]
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

    def visit(self, node: ast.AST, role: str, where: str) -> list[tuple[ast.AST, str, str]]:
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

    def call(self, node: ast.Call) -> list[tuple[ast.AST, str, str]]:
        qual, fn = _function(node)
        for arg in [*node.args, *node.keywords]:
            if isinstance(arg, ast.Starred) or (isinstance(arg, ast.keyword) and arg.arg is None):
                raise fail("unpacking (* and **) is not allowed in expressions", arg)
        n_params = len(fn.params)
        if len(node.args) > n_params and not fn.varargs:
            raise fail(f"{qual} takes at most {n_params} positional argument{'s' * (n_params != 1)}, "
                       f"got {len(node.args)}", node.args[n_params])
        bound: dict[str, ast.AST] = {p.name: a for p, a in zip(fn.params, node.args)}
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
            bound[kw.arg] = kw.value
        for p in fn.params:
            if p.required and p.name not in bound:
                raise fail(f"{qual} needs argument {p.name!r}: {signature(qual)}", node)
        children = []
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
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in MODULES):
        raise fail("only ops.<function>(...) and activations.<function>(...) may be called", func)
    qual = f"{func.value.id}.{func.attr}"
    at = (func.end_col_offset or func.col_offset) - len(func.attr)
    if qual in EXCLUDED:
        raise fail(f"{qual} is not allowed in expressions: {EXCLUDED[qual]}", at)
    if qual not in FUNCTIONS:
        match = did_you_mean(qual, FUNCTIONS)
        raise fail(f"unknown function {short(qual)}; see the function table in docs/expressions.md", at,
                   hint=f"did you mean {match!r}?" if match else None)
    return qual, FUNCTIONS[qual]


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
    ok = isinstance(exp, ast.Constant) and isinstance(exp.value, (int, float)) and not isinstance(exp.value, bool)
    if not ok or not abs(exp.value) <= MAX_EXPONENT:
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
        return [static_value(e, names) for e in node.elts]
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

    Raises:
        ExpressionError: not numbers, division by zero, or a result too large.
    """
    if type(node.op) not in _FOLD:
        raise fail("'@' needs tensors", node)
    if not (_is_number(left) and _is_number(right)):
        raise fail(f"arithmetic on constants needs numbers. Received: {short(left)} and {short(right)}", node)
    try:
        value = _FOLD[type(node.op)](left, right)
    except (ZeroDivisionError, OverflowError, ValueError) as e:
        raise fail(f"cannot compute this constant: {e}", node) from None
    if isinstance(value, complex) or _number_problem(value):
        raise fail("this constant is too large or not a real number", node)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_kind(p: Param, value: Any, qual: str, node: ast.AST) -> None:
    if not p.accepts(value, MAX_STATIC_INT):
        raise fail(f"argument {p.name!r} of {qual} must be {p.describe()}. Received: {p.name}={short(value)}", node)


def check_argument(qual: str, name: str, value: Any, node: ast.AST) -> None:
    """Type-check one constant argument value (the layer does it for values known at build time).

    Raises:
        ExpressionError: the value does not fit the argument.
    """
    p = next(p for p in FUNCTIONS[qual].params if p.name == name)
    _check_kind(p, value, qual, node)


def call_arguments(node: ast.Call) -> tuple[str, Function, list[tuple[Param, ast.AST]], list[ast.AST]]:
    """A checked call's function, its bound (param, argument) pairs in table order, and extra operands."""
    qual = f"{node.func.value.id}.{node.func.attr}"
    fn = FUNCTIONS[qual]
    bound = dict(zip((p.name for p in fn.params), node.args))
    bound.update((kw.arg, kw.value) for kw in node.keywords)
    pairs = [(p, bound[p.name]) for p in fn.params if p.name in bound]
    return qual, fn, pairs, list(node.args[len(fn.params):])


def signature(qual: str) -> str:
    """``ops.sum(x, axis=None, keepdims=False)`` for a table entry."""
    fn = FUNCTIONS[qual]
    parts = [p.name if p.required else f"{p.name}={p.default!r}" for p in fn.params]
    if fn.varargs:
        parts.append("*operands")
    return f"{qual}({', '.join(parts)})"


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
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or \
                not isinstance(node.func.value, ast.Name):
            continue
        fn = FUNCTIONS.get(f"{node.func.value.id}.{node.func.attr}")
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
        found.append((node.col_offset, f"{node.func.value.id}.{node.func.attr}: {fn.caveat}"))
    return sorted(found)


def markdown_table() -> str:
    """The function table as Markdown, one row per group of functions with the same arguments.

    docs/expressions.md embeds it between ``<!-- functions:begin -->`` and ``<!-- functions:end -->``;
    a test keeps the two equal.
    """
    rows: dict[tuple, list[str]] = {}
    for qual, fn in FUNCTIONS.items():
        rows.setdefault((fn.group, fn.params, fn.note, fn.caveat, fn.varargs, qual.partition(".")[0]), []).append(qual)
    lines = ["| functions | arguments | constant arguments | notes |", "|---|---|---|---|"]
    for (group, params, note, caveat, varargs, _), quals in rows.items():
        args = signature(quals[0])[len(quals[0]):]
        consts = "; ".join(f"`{p.name}`: {p.describe()}" for p in params if p.kind not in ("tensor", "tensors"))
        notes = "; ".join(x for x in (group, note, f"**ONNX:** {caveat}" if caveat else "") if x)
        names = ", ".join(f"`{q}`" for q in quals)
        lines.append(f"| {names} | `{args}` | {consts} | {notes} |")
    return "\n".join(lines) + "\n"
