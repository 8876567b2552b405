"""The expression function table: the functions an ``expr:`` may call, their arguments and docs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_LIST_ARG = 64  # items of a list-valued constant argument (axes, shapes, repeats)
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------------------------------------
# The function table: the only functions an expression may call. Data, so that the docs and the
# schema are generated from it; expr.py maps each key to its Keras function.


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
MODULES = ("ops", "activations", "ops.image")
MAX_ARANGE = 1 << 20  # elements of an ops.arange: position ids of sequences up to a million tokens

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
        """Whether the call must pass this argument (it has no default)."""
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        """Whether None is accepted (the kind ends in ``?``)."""
        return self.kind.endswith("?")

    @property
    def base(self) -> str:
        """The kind without its ``?``."""
        return self.kind.rstrip("?")

    @property
    def strings_only(self) -> bool:
        """Whether the argument is a string literal (a choice, a dtype or an einsum equation)."""
        return self.base in ("choice", "dtype", "equation")

    def strings(self) -> tuple[str, ...]:
        """The strings accepted: the dtypes, or the choices."""
        return DTYPES if self.base == "dtype" else self.choices

    def describe(self) -> str:
        """What the argument accepts, as a noun phrase for messages and the docs table."""
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
_add("other", "arange", (P("start", "number"), P("stop", "number?", None), P("step", "number?", None), _DTYPE),
     f"0, 1, ... stop-1 (position ids: ops.arange(in_shape[0])); no batch axis; at most {MAX_ARANGE:,} values")
_add("image", "extract_patches", (P("images"), P("size", "ints", lo=1, hi=4096), P("strides", "ints?", None, lo=1, hi=4096),
                                  P("dilation_rate", "ints", 1, lo=1, hi=4096),
                                  P("padding", "choice", "valid", choices=("valid", "same")),
                                  P("data_format", "choice?", None, choices=("channels_last", "channels_first"))),
     "non-overlapping size x size patches (ViT), flattened into the channels", module="ops.image")
_add("image", "resize", (P("images"), P("size", "ints", lo=1, hi=65536),
                         P("interpolation", "choice", "bilinear", choices=("bilinear", "nearest")),
                         P("antialias", "bool", False)),
     "to [height, width] (to match a skip connection's size)", module="ops.image")
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
    **{f"ops.{n}": _SIZED for n in ("zeros ones full empty empty_like eye identity tri linspace logspace "
                                    "geomspace array bartlett blackman hamming hanning kaiser").split()},
    **{f"ops.{n}": "it moves data to the host or returns Python values"
       for n in "convert_to_numpy convert_to_tensor shape dtype ndim size is_tensor".split()},
    **{f"ops.{n}": "its output shape depends on the data" for n in "nonzero unique histogram bincount".split()},
    **{f"activations.{n}": "it is not a tensor function" for n in "get serialize deserialize".split()},
}


def signature(qual: str) -> str:
    """``ops.sum(x, axis=None, keepdims=False)`` for a table entry."""
    fn = FUNCTIONS[qual]
    parts = [p.name if p.required else f"{p.name}={p.default!r}" for p in fn.params]
    if fn.varargs:
        parts.append("*operands")
    return f"{qual}({', '.join(parts)})"


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
