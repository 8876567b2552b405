"""The Keras side of ``expr:`` nodes: the registered ``netspec>Expression`` layer and its walker."""

from __future__ import annotations

import ast
import re
import weakref
from typing import TYPE_CHECKING, Any, Callable, Mapping

import keras
from keras import activations, ops

from ..expressions import check as exprcheck
from ..budget import DEFAULT_BUDGET, Budget, feed_dims, itemsize
from ..errors import ExpressionError, NetspecError, ShapeError, format_bytes, keras_message, short
from ..expressions.check import FUNCTIONS, NAME_RE, fail
from ..expressions.cost import approx
from .. import kerasapi

if TYPE_CHECKING:
    from ..graph import Node
    from .compiler import Builder

# Each table key is looked up once, here; expression text only ever indexes this dict, so a
# spec can name nothing that is not in the table.
KERAS_FUNCTIONS = {qual: getattr(ops.image if qual.startswith("ops.image.") else
                                  ops if qual.startswith("ops.") else activations, qual.rpartition(".")[2])
                   for qual in FUNCTIONS}
_BINARY = {
    ast.Add: ops.add, ast.Sub: ops.subtract, ast.Mult: ops.multiply, ast.Div: ops.divide,
    ast.FloorDiv: ops.floor_divide, ast.Mod: ops.mod, ast.Pow: ops.power, ast.MatMult: ops.matmul,
}
_COMPARE = {
    ast.Eq: ops.equal, ast.NotEq: ops.not_equal, ast.Lt: ops.less, ast.LtE: ops.less_equal,
    ast.Gt: ops.greater, ast.GtE: ops.greater_equal,
}
_CONFIG_KEYS = frozenset({"name", "trainable", "dtype", "expression", "variables", "constants", "output_shape"})
_POLICIES = frozenset({"float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16"})
_MAX_VARIABLES = 64


@keras.saving.register_keras_serializable(package="netspec", name="Expression")
class Expression(keras.layers.Layer):
    """One ``expr:`` node: a checked expression over named input tensors, evaluated with ``keras.ops``.

    The layer is called with a dict ``variable -> tensor``. Its config holds the text, the variable
    names, the param values it uses and the expected output shape; the text is checked again
    whenever the layer is made, so a tampered ``.keras`` file fails to load.

    Args:
        expression: the expression text.
        variables: the input variable names, in order.
        constants: the values of the params the expression uses (numbers, bools, lists of numbers).
        output_shape: the expected output shape without the batch axis (None for any size), or
            a list of shapes for a list result; checked when the layer is called on symbolic inputs.
        **kwargs: ``name``, ``trainable``, ``dtype``.

    Raises:
        ExpressionError: the expression, a variable name or a constant is not allowed.
    """

    def __init__(self, expression: str, variables, constants: Mapping[str, Any] | None = None,
                 output_shape=None, **kwargs) -> None:
        unknown = set(kwargs) - {"name", "trainable", "dtype"}
        if unknown:
            raise ExpressionError(f"Expression got unexpected arguments: {', '.join(sorted(map(str, unknown)))}")
        variables = _variables(variables)
        constants = _constants(constants or {}, variables)
        checked = exprcheck.check(expression, variables, constants)
        extra = sorted(set(constants) - set(checked.params))
        if extra:
            raise ExpressionError(f"constants {', '.join(map(repr, extra))} are not used by the expression")
        expected = _shape_spec(output_shape)
        super().__init__(autocast=False, **kwargs)  # an expression keeps its inputs' dtypes
        self._text = expression
        self._variable_names = tuple(variables)
        self._constants = {k: exprcheck.plain(v) for k, v in constants.items()}
        self._expected = expected
        self._tree = checked.tree
        # set by build_expr_layer: turns errors into spec locations
        self._on_error: Callable[[NetspecError], NetspecError] | None = None
        self._failure: NetspecError | None = None
        # Intermediates are costed while the layer is traced on symbolic inputs (compute_output_spec),
        # against the compiler's activation budget (build_expr_layer passes the one in use).
        self._budget: Budget = DEFAULT_BUDGET
        self._symbolic = False

    @property
    def expression(self) -> str:
        return self._text

    @property
    def variable_names(self) -> tuple[str, ...]:
        return self._variable_names

    def call(self, inputs):
        try:
            values = self._bind(inputs)
            meter = _Intermediates(self._budget) if self._symbolic else None
            out = _Walker(values, self._constants, meter).run(self._tree.body)
            return _result(out, self._tree.body)
        except NetspecError as e:
            raise self._located(e) from None

    def compute_output_spec(self, inputs):
        self._failure = None
        self._symbolic = True
        try:
            out = super().compute_output_spec(inputs)
        except Exception:
            # Keras re-raises errors from call() here as a new exception of the same class with
            # only a message; raise ours, which carries the spec path and location.
            failure, self._failure = self._failure, None
            if failure is None:
                raise
            raise failure from None
        finally:
            self._symbolic = False
        if self._expected is not None:
            actual = _shape_of(out)
            if not _shape_matches(self._expected, actual):
                raise self._located(ShapeError(
                    f"output_shape says {_text_shape(self._expected)}, but the expression computes "
                    f"{_text_shape(actual)}"))
        return out

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            expression=self._text,
            variables=list(self._variable_names),
            constants={k: exprcheck.plain(v) for k, v in self._constants.items()},
            output_shape=exprcheck.plain(self._expected),
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Expression":
        """Re-validate a stored config (it may come from an untrusted file), then make the layer.

        Raises:
            ExpressionError: anything in the config is not what netspec writes.
        """
        try:
            return cls(**_validated_config(config))
        except ExpressionError as e:
            name = config.get("name") if isinstance(config, Mapping) else None
            raise ExpressionError(f"refusing stored expression layer {short(name)}: {e.message}", hint=e.hint) from None

    def _bind(self, inputs) -> dict[str, Any]:
        names = self._variable_names
        if not isinstance(inputs, Mapping):
            inputs = dict(zip(names, inputs if isinstance(inputs, (list, tuple)) else [inputs]))
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ExpressionError(f"the expression needs inputs {', '.join(map(repr, missing))}")
        return {n: inputs[n] for n in names}

    def _located(self, e: NetspecError) -> NetspecError:
        located = self._on_error(e) if self._on_error is not None else e
        kerasapi.keep_error_as_raised(located)  # Keras re-raises it as is, keeping path and location
        self._failure = located
        return located


class _Walker:
    """Evaluates a checked tree: tensors through ``keras.ops``, constants as Python numbers."""

    def __init__(self, values: Mapping[str, Any], constants: Mapping[str, Any],
                 meter: "_Intermediates | None" = None) -> None:
        self.values, self.constants, self.meter = values, constants, meter

    def apply(self, node: ast.AST, label: str, fn, *args, **kwargs) -> Any:
        """One tensor operation; on symbolic inputs its result is charged to the budget."""
        out = _apply(node, label, fn, *args, **kwargs)
        if self.meter is not None:
            self.meter.add(node, label, out)
        return out

    def run(self, node: ast.AST) -> Any:
        # Recursion is bounded: check() limited the tree to MAX_DEPTH levels.
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.values[node.id] if node.id in self.values else self.constants[node.id]
        if isinstance(node, ast.BinOp):
            left, right = self.run(node.left), self.run(node.right)
            if _is_number(left) and _is_number(right):
                return exprcheck.fold(node, left, right)
            return self.apply(node, _op_label(node.op), _BINARY[type(node.op)], left, right)
        if isinstance(node, ast.UnaryOp):
            value = self.run(node.operand)
            if isinstance(node.op, ast.UAdd):
                return value
            return -value if _is_number(value) else self.apply(node, "unary '-'", ops.negative, value)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Subscript):
            value = self.run(node.value)
            index = exprcheck.index_value(node.slice, self.constants)
            _refuse_batch_index(node, value, index)
            return self.apply(node, "the subscript", lambda: value[index])
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.run(e) for e in node.elts]
        if isinstance(node, ast.Call):
            return self.call(node)
        raise fail(f"{type(node).__name__} is not allowed in expressions", node)  # check() refused it

    def compare(self, node: ast.Compare) -> Any:
        result, left = None, self.run(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.run(comp)
            if _is_number(left) and _is_number(right):
                step = _COMPARE_PY[type(op)](left, right)
            else:
                step = self.apply(node, "the comparison", _COMPARE[type(op)], left, right)
            result = step if result is None else self.apply(node, "the comparison", ops.logical_and, result, step)
            left = right
        return result

    def call(self, node: ast.Call) -> Any:
        qual, fn, pairs, operands = exprcheck.call_arguments(node)
        kwargs = {}
        for p, arg in pairs:
            if p.kind in ("tensor", "tensors"):
                value = self.run(arg)
                value = list(value) if isinstance(value, tuple) else value
                if p.kind == "tensors" and not isinstance(value, list):
                    raise fail(f"argument {p.name!r} of {qual} must be a list of tensors, like [a, b]", arg)
            else:
                value = exprcheck.static_value(arg, self.constants)  # type-checked when the layer was made
            kwargs[p.name] = value
        if fn.varargs:  # einsum: the equation, then the operands
            args = [kwargs.pop(fn.params[0].name), *(self.run(a) for a in operands)]
            return self.apply(node, qual, KERAS_FUNCTIONS[qual], *args)
        return self.apply(node, qual, KERAS_FUNCTIONS[qual], **kwargs)


_COMPARE_PY = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
}
_TF_NODE = re.compile(r" for '\{\{node [^']*'| and with computed input tensors:.*")


def _refuse_batch_index(node: ast.Subscript, value: Any, index: Any) -> None:
    """A subscript's first position is the batch axis: ``x[0]`` or ``x[1:]`` would take samples, not an axis
    of each (the model's output would lose or change its batch, and the shapes ``check`` shows per sample
    would be wrong). A tensor whose first dimension is unknown is batched; constants and lists index freely."""
    first = (index if isinstance(index, tuple) else (index,))[:1]
    try:
        shape = tuple(value.shape)
    except (AttributeError, TypeError, ValueError):  # a list, or a tensor of unknown rank
        return
    if not first or first[0] is Ellipsis or first[0] == slice(None) or not shape or shape[0] is not None:
        return
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    said, of = ", ".join(ast.unparse(p) for p in parts), ast.unparse(node.value)
    raise fail(f"the subscript [{said}] indexes the batch axis (axis 0 of a tensor of shape {tuple(shape)}): a "
               f"sample's own axes start at position 1. Write {of}[:, {said}] to start at axis 1, or "
               f"{of}[..., {said}] to end at the last", node)


def _apply(node: ast.AST, label: str, fn, *args, **kwargs) -> Any:
    try:
        return fn(*args, **kwargs)
    except NetspecError:
        raise
    except Exception as e:  # Keras and TensorFlow report bad shapes and dtypes with many classes
        text = _TF_NODE.sub("", keras_message(e, limit=10**6))
        raise fail(f"{label} failed: {text[:300] + '...' if len(text) > 300 else text}", node) from None


class _Intermediates:
    """The bytes of every tensor one expression computes, checked against the activation budget.

    Sizes come from symbolic shapes, before anything is allocated, at the sizes the compiler
    costs (netspec.budget): an unknown first axis is ``budget.batch`` samples, other unknown
    dimensions the size the gate feeds. A known first axis counts in full, since it is not a
    batch axis when it comes from a constant (``ops.tile(1.0, [10**5, 10**5])``). Intermediates
    add up: a trained model keeps them for the gradient.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget, self.total = budget, 0

    def add(self, node: ast.AST, label: str, out: Any) -> None:
        for t in out if isinstance(out, (list, tuple)) else [out]:
            try:
                dims = list(t.shape)
            except (AttributeError, TypeError, ValueError):  # not a tensor, or TensorFlow's unknown rank
                continue
            n = 1
            for d in feed_dims(dims[1:], dims[0] if dims and dims[0] is not None else self.budget.batch)[:len(dims)]:
                n *= d
            size = n * itemsize(t.dtype)
            self.total += size
            if self.total > self.budget.max_activation_bytes:
                shown = "(" + ", ".join("None" if d is None else approx(int(d)) for d in dims[:8]) + \
                    (", ..." if len(dims) > 8 else "") + ")"
                raise fail(f"{label} makes a {format_bytes(size)} intermediate of shape {shown}; this "
                           f"expression's intermediates reach {format_bytes(self.total)}, over the activation "
                           f"budget of {self.budget.activation_note()}", node)


def _op_label(op: ast.AST) -> str:
    symbols: dict[type[ast.AST], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
               ast.Pow: "**", ast.MatMult: "@"}
    return f"'{symbols[type(op)]}'"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bools too: they fold like Python's


def _result(out: Any, node: ast.AST) -> Any:
    out = list(out) if isinstance(out, tuple) else out  # top_k's pair
    items = out if isinstance(out, list) else [out]
    if not items or not all(ops.is_tensor(t) for t in items):
        raise fail("the expression must compute a tensor or a list of tensors from its inputs. "
                   f"Received: {short(out)}", node)
    for t in items:
        try:
            len(t.shape)
        except (TypeError, ValueError):  # TensorFlow's unknown rank
            raise fail("the result has an unknown number of axes (ops.squeeze without axis on unknown "
                       "sizes?); name the axes", node) from None
    return out


# ---------------------------------------------------------------------------------------------
# Output shapes


def _shape_spec(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, (list, tuple)) for v in value) and value:
        return [_shape_spec(v) for v in value]
    ok = isinstance(value, (list, tuple)) and len(value) <= 64 and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31) for d in value)
    if not ok:
        raise ExpressionError(f"output_shape must be a list of sizes (null for any size). Received: {short(value)}")
    return list(value)


def _shape_of(out: Any) -> Any:
    if isinstance(out, (list, tuple)):
        return [_shape_of(t) for t in out]
    return [None if d is None else int(d) for d in out.shape[1:]]


def _shape_matches(expected: Any, actual: Any) -> bool:
    if expected and isinstance(expected[0], list) or actual and isinstance(actual[0], list):
        return (len(expected) == len(actual) and all(isinstance(e, list) and isinstance(a, list)
                                                    and _shape_matches(e, a) for e, a in zip(expected, actual)))
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


def _text_shape(shape: Any) -> str:
    if shape and isinstance(shape[0], list):
        return "[" + ", ".join(_text_shape(s) for s in shape) + "]"
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------------------------
# Config validation: a .keras file is untrusted input.


def _variables(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value or len(value) > _MAX_VARIABLES:
        raise ExpressionError(f"variables must be a list of 1 to {_MAX_VARIABLES} names. Received: {short(value)}")
    for name in value:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ExpressionError(f"expression variable names must be identifiers. Received: {short(name)}")
    if len(set(value)) != len(value):
        raise ExpressionError(f"expression variable names must be unique. Received: {short(value)}")
    return list(value)


def _constants(value: Any, variables: list[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping) or len(value) > 256:
        raise ExpressionError(f"constants must be a mapping of param names to numbers. Received: {short(value)}")
    for name, item in value.items():
        if not isinstance(name, str) or not NAME_RE.match(name) or name in variables:
            raise ExpressionError(f"constant names must be identifiers other than the variables. Received: {short(name)}")
        problem = exprcheck.param_problem(item)
        if problem or isinstance(item, exprcheck.Lazy):
            raise ExpressionError(f"constant {name!r} {problem or 'is not known'}; only numbers, booleans and "
                                  "lists of numbers are allowed")
    return dict(value)


def _validated_config(config: Any) -> dict:
    if not isinstance(config, Mapping):
        raise ExpressionError(f"an Expression config must be a mapping. Received: {short(config)}")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise ExpressionError(f"unexpected Expression config keys: {short(sorted(map(str, unknown)))}")
    if not isinstance(config.get("expression"), str):
        raise ExpressionError(f"an Expression config needs the expression text. Received: {short(config.get('expression'))}")
    out = dict(config)
    name = out.get("name")
    if name is not None and not (isinstance(name, str) and 0 < len(name) <= 200 and name.isascii() and name.isprintable()):
        raise ExpressionError(f"layer name must be a short ASCII string. Received: {short(name)}")
    if not isinstance(out.get("trainable", True), bool):
        raise ExpressionError(f"trainable must be a boolean. Received: {short(out['trainable'])}")
    dtype = out.get("dtype")
    if isinstance(dtype, Mapping):  # Keras writes {"class_name": "DTypePolicy", "config": {"name": ...}}
        inner = dtype.get("config")
        dtype = inner.get("name") if dtype.get("class_name") == "DTypePolicy" and isinstance(inner, Mapping) else dtype
    if dtype is not None and not (isinstance(dtype, str) and dtype in _POLICIES):
        raise ExpressionError(f"dtype must be a float dtype policy name. Received: {short(out.get('dtype'))}")
    out["dtype"] = dtype
    return out


# ---------------------------------------------------------------------------------------------
# The compiler's entry point


class _Locator:
    """Turns an expression layer's errors into errors at the node's ``expr``/``output_shape`` in the spec."""

    def __init__(self, node, builder) -> None:
        self.node, self.builder = node, weakref.ref(builder)  # the model must not keep the builder alive

    def __call__(self, e: NetspecError) -> NetspecError:
        b = self.builder()
        if b is None or e.location is not None:
            return e
        if isinstance(e, ShapeError):
            path = self.node.path + ("output_shape",)
            err = b.fail(self.node, e.message, cls=ShapeError, path=path)
            err.location = b.source.key(path)
        else:
            path = self.node.path + ("expr",)
            err = b.fail(self.node, e.message, cls=ExpressionError, path=path)
            err.location = b.source.inside(path, getattr(e, "offset", 0))
        err.hint = e.hint
        return err


def build_expr_layer(node: Node, builder: Builder) -> Expression:
    """Make the layer of an ``expr`` node; the builder then calls it on ``{variable: tensor}``.

    Args:
        node: a ``graph.Node`` of kind ``expr``.
        builder: the compiler's builder (``concrete`` for shape values, ``fail`` and ``source``
            for located errors).

    Returns:
        An :class:`Expression` layer named after the node; errors it raises while being called
        on the builder's tensors point into the spec.

    Raises:
        ExpressionError: the expression or a param it uses is not allowed (at the column in ``expr``).
        ShapeError: ``output_shape`` is not a shape.
    """
    locate = _Locator(node, builder)
    # the resolver makes every expr node with its text and a {variable: ref} mapping
    assert node.expr is not None and isinstance(node.inputs, dict)
    variables = list(node.inputs)
    names = node.expr_names or {}
    try:
        checked = exprcheck.check(node.expr, variables, names)
        constants = {}
        for name in checked.params:
            value = builder.concrete(names[name])
            problem = exprcheck.param_problem(value)
            if problem:
                raise fail(f"param {name!r} {problem}; expressions may use only params that are numbers, "
                           "booleans or lists of numbers", _first_use(checked.tree, name))
            constants[name] = exprcheck.plain(value)
        expected = builder.concrete(node.output_shape) if node.output_shape is not None else None
        try:
            expected = _shape_spec(expected)
        except ExpressionError as e:
            raise locate(ShapeError(e.message)) from None
        layer = Expression(node.expr, variables, constants, expected, name=node.name)
    except ExpressionError as e:
        raise locate(e) from None
    layer._on_error = locate
    meter = getattr(builder, "meter", None)
    layer._budget = meter.budget if meter is not None else DEFAULT_BUDGET
    return layer


def _first_use(tree: ast.AST, name: str) -> int:
    hits = [n.col_offset for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return min(hits, default=0)
