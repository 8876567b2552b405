"""Expression nodes: the checker, the Keras layer, located errors, persistence and ONNX parity."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netspec
from netspec.errors import ExpressionError, NetspecError, ShapeError
from netspec.expressions.check import EXCLUDED, FUNCTIONS, check, check_expression, export_caveats, markdown_table
from netspec.expressions.interp import UNKNOWN

from conftest import ROOT, error_for

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_expr")

PARAMS = "{scale: 2.5, act: relu, dims: [4, 3], bad: {a: 1}, mixed: [1, a], weights: [1.0, 2.0, 3.0]}"
NAMES = {"scale": 2.5, "act": "relu", "dims": [4, 3], "bad": {"a": 1}, "mixed": [1, "a"],
         "weights": [1.0, 2.0, 3.0], "in_shape": UNKNOWN}
HEAD = f"netspec: 1\nname: t\nparams: {PARAMS}\ninputs:\n  left: [4, 3]\n  right: [4, 3]\nnodes:\n"
NODE_LINE = HEAD.count("\n") + 1


def node_line(text: str, extra: str = "in: left") -> str:
    quote = "'" if '"' in text else '"'
    return f"  - {{name: e, expr: {quote}{text}{quote}, {extra}}}"


def one_node_spec(text: str, extra: str = "in: left") -> str:
    return HEAD + node_line(text, extra) + "\n"


def column(text: str, offset: int, extra: str = "in: left") -> int:
    """The 1-based column of character ``offset`` of the expression on its spec line."""
    line = node_line(text, extra)
    return line.index("expr: ") + len("expr: ") + 1 + 1 + offset


# ---------------------------------------------------------------------------------------------
# Refused expressions: message fragment, offset (None: not checked), hint fragment, and whether
# the case can be written in a spec (the schema already refuses over-long text).

R = pytest.param
REFUSED = [
    R("__import__('os').system('x')", "may be called", 0, None, True, id="import-call"),
    R("x.__class__.__base__", "attribute access is not allowed", 0, None, True, id="dunder-attribute"),
    R("x.__class__.__subclasses__()", "only ops.<function>(...)", 0, None, True, id="attribute-walk-call"),
    R("ops.nn.relu(x)", "only ops.<function>(...)", 0, None, True, id="ops-submodule"),
    R("getattr(x, 'y')", "only ops.* and activations.*", 0, None, True, id="builtin-call"),
    R("relu(x)", "only ops.* and activations.*", 0, "ops.relu", True, id="bare-function"),
    R("ops.reluu(x)", "unknown function 'ops.reluu'", 4, "ops.relu", True, id="unknown-function"),
    R("x + ops.map(x, x)", "takes a function", 8, None, True, id="callable-op"),
    R("x + ops.zeros([10])", "creates a tensor", 8, None, True, id="sized-op"),
    R("ops.convert_to_numpy(x)", "to the host", 4, None, True, id="host-op"),
    R("activations.get(x)", "not a tensor function", 12, None, True, id="activations-get"),
    R("lambda: x", "a lambda", 0, None, True, id="lambda"),
    R("[v for v in x]", "a comprehension", 0, None, True, id="comprehension"),
    R("f'{x}'", "an f-string", 0, None, True, id="f-string"),
    R("x + {1: 2}", "a dict literal", 4, None, True, id="dict"),
    R("{x}", "a set literal", 0, None, True, id="set"),
    R("(y := x)", "assignment", 1, None, True, id="walrus"),
    R("ops.add(*x)", "unpacking", 8, None, True, id="starred"),
    R("ops.sum(x, **k)", "unpacking (* and **)", 11, None, True, id="double-star"),
    R("x + 'a'", "strings are only allowed", 4, None, True, id="string"),
    R("x + b'a'", "only numbers are allowed", 4, None, True, id="bytes"),
    R("x and x", "'and'/'or'", 0, "", True, id="and"),
    R("x if x else x", "ops.where", 0, None, True, id="if-else"),
    R("not x", "ops.logical_not", 0, None, True, id="not"),
    R("x << 2", "operator '<<'", 0, None, True, id="shift"),
    R("x is x", "operator 'is'", 0, None, True, id="is"),
    R("x ** x", "exponent", 5, None, True, id="tensor-exponent"),
    R("x ** 65", "exponent", 5, None, True, id="big-exponent"),
    R("x + 99999999999999999999999", "too large", 4, None, True, id="big-int"),
    R("x * 1e999", "not finite", 4, None, True, id="inf-literal"),
    R("x * 2j", "only numbers", 4, None, True, id="complex"),
    R("x + foo", "unknown name 'foo'", 4, None, True, id="unknown-name"),
    R("x + scal", "unknown name 'scal'", 4, "scale", True, id="did-you-mean-param"),
    R("y + 1", "unknown name 'y'", 0, None, True, id="unknown-variable"),
    R("x * act", "param 'act' is str", 4, None, True, id="string-param"),
    R("x * bad", "param 'bad' is dict", 4, None, True, id="mapping-param"),
    R("x * mixed", "param 'mixed' holds str", 4, None, True, id="mixed-list-param"),
    R("ops + x", "is a module", 0, None, True, id="bare-module"),
    R("x + None", "None is only allowed", 4, None, True, id="none"),
    R("x + ...", "'...' is only allowed in subscripts", 4, None, True, id="ellipsis"),
    R("x[[0, 1]]", "lists are not allowed in subscripts", 2, None, True, id="fancy-index"),
    R("x[x]", "must be a constant", 2, None, True, id="tensor-index"),
    R("x[ops.argmax(x)]", "function calls are not allowed", 2, None, True, id="call-in-index"),
    R("x[1.5]", "subscripts must be integers", 2, None, True, id="float-index"),
    R("x[:1.5]", "slice bounds must be integers", 2, None, True, id="float-slice"),
    R("x[(0, 1), 0]", "nested tuples", 2, None, True, id="nested-index-tuple"),
    R("ops.sum(x, axis=x)", "must be a constant", 16, None, True, id="tensor-axis"),
    R("ops.sum(x, axes=1)", "ops.sum has no argument 'axes'", 11, "'axis'", True, id="unknown-keyword"),
    R("ops.relu(x, 1)", "at most 1 positional", 12, None, True, id="too-many-args"),
    R("ops.reshape(x)", "needs argument 'newshape'", 0, None, True, id="missing-arg"),
    R("ops.sum(x, 1, axis=1)", "two values for argument 'axis'", 14, None, True, id="duplicate-arg"),
    R("ops.pad(x, 1, mode='reflex')", "must be one of 'constant'", 19, "'reflect'", True, id="bad-choice"),
    R("ops.cast(x, 'floatt32')", "must be a dtype name", 12, "'float32'", True, id="bad-dtype"),
    R("ops.cast(x, scale)", "must be a string literal", 12, None, True, id="dtype-not-literal"),
    R("ops.einsum('ij;jk', x, x)", "einsum equation", 11, None, True, id="einsum-chars"),
    R("ops.einsum('ij,jk->ik', x)", "names 2 operands but 1 is given", 11, None, True, id="einsum-arity"),
    R("ops.sum(x, axis=1.5)", "must be an integer or a list of integers", 16, None, True, id="float-axis"),
    R("ops.sum(x, keepdims=1)", "True or False", 20, None, True, id="int-bool"),
    R("ops.top_k(x, 0)", "in [1, 65536]", 13, None, True, id="k-range"),
    R("ops.sum(x, axis=1 < 2)", "comparisons are not allowed", 16, None, True, id="compare-constant"),
    R("ops.reshape(x, [2 @ 3])", "'@' needs tensors", 16, None, True, id="matmul-constant"),
    R("ops.reshape(x, [2 ** 63 * 4])", "too large", 16, None, True, id="constant-overflow"),
    R("ops.reshape(x, [dims[5]])", "cannot index", 16, None, True, id="constant-index-error"),
    R("ops.reshape(x, [1 // 0])", "cannot compute", 16, None, True, id="constant-division"),
    R("x + \u00e9", "printable ASCII", 4, None, True, id="non-ascii"),
    R("x +", "invalid expression", 3, None, True, id="syntax-end"),
    R("ops.sum(x,, 1)", "invalid expression", 10, None, True, id="syntax-middle"),
    R("-" * 50 + "x", "nested more than 40 levels", 40, None, True, id="too-deep"),
    R("(" * 300 + "x" + ")" * 300, "", None, None, True, id="deep-parentheses"),
    R("ops.stack([" + ", ".join(["x"] * 450) + "])", "more than 400 parts", None, None, True, id="too-many-parts"),
    R("x" + " + x" * 600, "longer than 2000", 2000, None, False, id="too-long"),
]


@pytest.mark.parametrize("text, fragment, offset, hint, in_spec", REFUSED)
def test_check_refuses(text, fragment, offset, hint, in_spec):
    with pytest.raises(ExpressionError) as info:
        check_expression(text, ["x"], NAMES)
    e = info.value
    assert fragment in e.message
    if offset is not None:
        assert e.offset == offset, e.message
    if hint:
        assert hint in (e.hint or "")


def _spec_cases():
    return [c for c in REFUSED if c.values[4]]


def _assert_located(e: NetspecError, text: str, fragment: str, offset, hint) -> None:
    assert isinstance(e, ExpressionError), e
    assert fragment in e.message
    assert e.json_path == "$.nodes[0].expr"
    assert e.line == NODE_LINE
    if offset is not None:
        assert e.column == column(text, offset), str(e)
    if hint:
        assert hint in (e.hint or "")


@pytest.mark.parametrize("text, fragment, offset, hint, in_spec", _spec_cases())
def test_load_refuses_at_the_column(text, fragment, offset, hint, in_spec):
    _assert_located(error_for(one_node_spec(text)), text, fragment, offset, hint)


@pytest.mark.parametrize("text, fragment, offset, hint, in_spec", _spec_cases())
def test_build_refuses_at_the_column(keras, text, fragment, offset, hint, in_spec):
    _assert_located(error_for(one_node_spec(text), stage="build"), text, fragment, offset, hint)


ACCEPTED = [
    "x ** 2", "ops.concatenate([a, b], axis=-1)", "x[:, :, 0]", "x * scale", "ops.relu6(x + 3.0) / 6.0",
    "ops.reshape(x, [-1, in_shape[0] * in_shape[1]])", "ops.einsum('bij,bkj->bik', a, b)",
    "x[..., None, ::-1]", "ops.sum(x, axis=[1, 2], keepdims=True)", "ops.norm(x, ord='fro', axis=[1, 2])",
    "ops.pad(x, [[0, 0], [1, 1]], mode='reflect')", "0 < x <= 1", "ops.split(x, 3, axis=-1)[1]",
    "activations.gelu(x, approximate=True)", "x * weights", "ops.reshape(x, [-1, dims[0] * dims[1]])",
    "x ** -2.5", "ops.transpose(x, axes=[0, 2, 1])", "x # a comment",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_check_accepts(text):
    check_expression(text, ["x", "a", "b"], NAMES)


def test_check_reports_the_names_used():
    checked = check("ops.concatenate([b, a * scale, a], axis=-1) + in_shape[0]", ["a", "b", "c"], NAMES)
    assert checked.variables == ("b", "a") and checked.params == ("scale", "in_shape")


def test_variables_shadow_params():
    assert check("scale * 2", ["scale"], NAMES).params == ()


def test_validate_does_not_import_tensorflow():
    code = ("import sys, netspec.expressions.check as c; c.check_expression('ops.sum(x, axis=-1) * scale', ['x'], "
            "{'scale': 2}); assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_export_caveats_name_the_calls():
    found = export_caveats("ops.gelu(x) + activations.gelu(x) + ops.gelu(x, approximate=False) + ops.argmax(x)")
    assert [offset for offset, _ in found] == [14, 36, 69]
    assert "Erfc" in found[0][1] and "Bitcast" in found[2][1]


# ---------------------------------------------------------------------------------------------
# The function table


def test_table_matches_keras_signatures(keras):
    from netspec.build.expression import KERAS_FUNCTIONS

    required_here = {"ops.where": {"x1", "x2"}}  # Keras's where(c) alone returns indices: refused
    for qual, fn in FUNCTIONS.items():
        params = [p for p in inspect.signature(KERAS_FUNCTIONS[qual]).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        assert [p.name for p in params[:len(fn.params)]] == [p.name for p in fn.params], qual
        for ours, theirs in zip(fn.params, params):
            if ours.required:
                assert theirs.default is inspect.Parameter.empty or ours.name in required_here.get(qual, ()), qual
            else:
                assert ours.default == theirs.default, (qual, ours.name)
        if fn.varargs:
            assert any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(KERAS_FUNCTIONS[qual]).parameters.values())


def test_table_is_deliberate():
    assert 150 <= len(FUNCTIONS) <= 250
    assert not set(FUNCTIONS) & set(EXCLUDED)
    for name in ("ops.map", "ops.cond", "ops.while_loop", "ops.fori_loop", "ops.vectorized_map", "ops.zeros",
                 "ops.linspace", "ops.convert_to_numpy", "ops.custom_gradient"):
        assert name in EXCLUDED


def test_docs_embed_the_generated_table():
    text = (ROOT / "docs" / "expressions.md").read_text(encoding="utf-8")
    begin, end = "<!-- functions:begin -->\n", "<!-- functions:end -->"
    assert text[text.index(begin) + len(begin):text.index(end)] == markdown_table()
    assert all(f"`{name}`" in text for name in EXCLUDED)


# ---------------------------------------------------------------------------------------------
# Numbers: expressions compute what numpy computes


def _gelu_tanh(v):
    return 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))


def _softmax(v, axis):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# (id, expression, inputs, numpy of (left, right))
FORMS = [
    ("sq", "x ** 2", "left", lambda l, r: l**2),
    ("both", "ops.concatenate([a, b], axis=-1)", "{a: left, b: right}", lambda l, r: np.concatenate([l, r], -1)),
    ("first", "x[:, :, 0]", "both", lambda l, r: l[:, :, 0]),
    ("scaled", "x * scale", "left", lambda l, r: l * 2.5),
    ("hsig", "ops.relu6(x + 3.0) / 6.0", "left", lambda l, r: np.clip(l + 3, 0, 6) / 6),
    ("weights", "x * weights", "left", lambda l, r: l * [1.0, 2.0, 3.0]),
    ("chained", "ops.cast(-0.5 < x < 0.5, 'float32')", "left", lambda l, r: ((-0.5 < l) & (l < 0.5)).astype("f4")),
    ("where", "ops.where(x > 0, x, 0.1 * x)", "left", lambda l, r: np.where(l > 0, l, 0.1 * l)),
    ("keepdims", "ops.sum(x, axis=-1, keepdims=True)", "left", lambda l, r: l.sum(-1, keepdims=True)),
    ("mean_axes", "ops.mean(x, axis=[1, 2])", "left", lambda l, r: l.mean((1, 2))),
    ("in_shape", "ops.reshape(x, [-1, in_shape[0] * in_shape[1]])", "left", lambda l, r: l.reshape(len(l), 12)),
    ("einsum", "ops.einsum('bij,bkj->bik', a, b)", "{a: left, b: right}", lambda l, r: l @ r.transpose(0, 2, 1)),
    ("matmul", "a @ ops.swapaxes(b, 1, 2)", "{a: left, b: right}", lambda l, r: l @ r.transpose(0, 2, 1)),
    ("split", "ops.split(x, 3, axis=-1)[1]", "left", lambda l, r: l[:, :, 1:2]),
    ("top_k", "ops.top_k(x, 2)[0]", "left", lambda l, r: -np.sort(-l, -1)[..., :2]),
    ("softmax", "activations.softmax(x, axis=1)", "left", lambda l, r: _softmax(l, 1)),
    ("gelu", "ops.gelu(x)", "left", lambda l, r: _gelu_tanh(l)),
    ("slices", "x[:, ::-1, None, 1:]", "left", lambda l, r: l[:, ::-1, None, 1:]),
    ("ellipsis", "x[..., 0]", "left", lambda l, r: l[..., 0]),
    ("floordiv_mod", "x // 0.5 + x % 0.5", "left", lambda l, r: l // 0.5 + l % 0.5),
    ("neg_power", "(ops.abs(x) + 1) ** -2", "left", lambda l, r: (np.abs(l) + 1) ** -2),
    ("unary", "-x + +x * 2", "left", lambda l, r: -l + l * 2),
    ("folded", "x * (scale * 2 - 1)", "left", lambda l, r: l * 4.0),
    ("transpose", "ops.transpose(x, [0, 2, 1])", "left", lambda l, r: l.transpose(0, 2, 1)),
    ("norm", "ops.norm(x, axis=-1)", "left", lambda l, r: np.linalg.norm(l, axis=-1)),
    ("cast", "ops.cast(ops.cast(x * 10, 'int32'), 'float32')", "left", lambda l, r: np.trunc(l * 10)),
    ("clip", "ops.clip(x, -0.5, 0.5)", "left", lambda l, r: np.clip(l, -0.5, 0.5)),
    ("relu_args", "activations.relu(x, negative_slope=0.1, max_value=1.0)", "left",
     lambda l, r: np.minimum(np.where(l > 0, l, 0.1 * l), 1.0)),
    ("stack", "ops.stack([a, b], axis=1)", "{a: left, b: right}", lambda l, r: np.stack([l, r], 1)),
    ("pad", "ops.pad(x, [[0, 0], [1, 1], [0, 0]])", "left", lambda l, r: np.pad(l, [(0, 0), (1, 1), (0, 0)])),
    ("one_hot", "ops.one_hot(ops.argmax(x, axis=-1), 3)", "left", lambda l, r: np.eye(3)[l.argmax(-1)]),
    ("max_min", "ops.max(x, axis=1) - ops.min(x, axis=1)", "left", lambda l, r: l.max(1) - l.min(1)),
]


@pytest.fixture(scope="module")
def forms(keras):
    lines = [f"  - {{name: {name}, expr: \"{text}\", in: {ins}}}" for name, text, ins, _ in FORMS]
    lines[2] = lines[2][:-1] + ", output_shape: [4]}"
    outputs = "outputs: {" + ", ".join(f"{name}: {name}" for name, *_ in FORMS) + "}\n"
    text = HEAD + "\n".join(lines) + "\n" + outputs
    model = netspec.load(text).build()
    rng = np.random.default_rng(0)
    left, right = (rng.normal(size=(3, 4, 3)).astype("float32") for _ in range(2))
    return model, (left, right), model.predict([left, right], verbose=0)


@pytest.mark.parametrize("name, text, ins, expected", FORMS, ids=[f[0] for f in FORMS])
def test_forms_compute_numpy_values(forms, name, text, ins, expected):
    _, (left, right), out = forms
    np.testing.assert_allclose(out[name], expected(left, right), rtol=1e-5, atol=1e-5)


def test_expression_layer_is_one_keras_layer_per_node(forms):
    model = forms[0]
    layers = {layer.name: layer for layer in model.layers if layer.__class__.__name__ == "Expression"}
    assert sorted(layers) == sorted(f[0] for f in FORMS)
    assert layers["scaled"].get_config()["constants"] == {"scale": 2.5}
    assert layers["in_shape"].get_config()["constants"] == {"in_shape": [4, 3]}
    assert layers["first"].get_config()["output_shape"] == [4]


# ---------------------------------------------------------------------------------------------
# Build-time errors: shapes, output_shape, values known only then


def test_output_shape_mismatch_is_a_shape_error_at_the_key(keras):
    text = one_node_spec("x[:, :, 0]", "in: left, output_shape: [5]")
    e = error_for(text, stage="build")
    assert isinstance(e, ShapeError)
    assert "output_shape says [5], but the expression computes [4]" in e.message
    assert e.json_path == "$.nodes[0].output_shape"
    assert (e.line, e.column) == (NODE_LINE, node_line("x[:, :, 0]", "in: left, output_shape: [5]").index("output_shape") + 1)


def test_output_shape_may_use_shapes(keras):
    model = netspec.load(one_node_spec("x + 1", "in: left, output_shape: '${in_shape}'")).build()
    assert tuple(model.output.shape) == (None, 4, 3)


def test_keras_shape_errors_point_at_the_call(keras):
    text = "x + ops.concatenate([x, x], axis=1)"
    e = error_for(one_node_spec(text), stage="build")
    assert isinstance(e, ExpressionError) and "'+' failed" in e.message
    assert (e.line, e.column) == (NODE_LINE, column(text, 0))


def test_shape_dependent_constants_are_checked_at_build(keras):
    text = "ops.reshape(x, [-1, in_shape[0] * 1.5])"
    e = error_for(one_node_spec(text), stage="build")
    assert "must be a list of integers" in e.message and "Received: newshape=[-1, 6.0]" in e.message
    assert e.column == column(text, 15)


@pytest.mark.parametrize("text, fragment", [
    ("scale * 2", "must compute a tensor"),
    ("x + 2 ** 63 * 4", "too large"),
    ("x[:, dims[0]]", "the subscript failed"),
    ("ops.concatenate(x, axis=-1)", "must be a list of tensors"),
    ("ops.squeeze(x)", "unknown number of axes"),
    ("x[0]", "the subscript [0] indexes the batch axis (axis 0 of a tensor of shape (None, 4, 3))"),
    ("x[-1, :, 0]", "Write x[:, -1, :, 0] to start at axis 1, or x[..., -1, :, 0] to end at the last"),
    ("x[1:] * 2", "the subscript [1:] indexes the batch axis"),
], ids=["no-tensor", "folded-overflow", "index-out-of-range", "not-a-list", "unknown-rank", "batch-index",
        "batch-index-tuple", "batch-slice"])
def test_build_errors_are_located(keras, text, fragment):
    e = error_for(one_node_spec(text), stage="build")
    assert isinstance(e, ExpressionError) and fragment in e.message
    assert e.json_path == "$.nodes[0].expr" and e.line == NODE_LINE


@pytest.mark.parametrize("text, shape", [("x[:, 0]", (None, 3)), ("x[..., 0]", (None, 4)), ("x[:, ::-1] + 1", (None, 4, 3)),
                                         ("x[None, 0]", None)])
def test_subscripts_keep_the_batch_axis(keras, text, shape):
    """``check`` shows shapes per sample after the batch: a subscript may not take samples (x[0] built a
    (4, 3) tensor that the table showed as (None, 3)); x[None, ...] is refused too, x[:, ...] and x[..., k] pass."""
    if shape is None:
        e = error_for(one_node_spec(text), stage="build")
        assert "indexes the batch axis" in e.message
        return
    model = netspec.load(one_node_spec(text)).build()
    assert tuple(model.outputs[0].shape) == shape


def test_unknown_keyword_hint_at_build(keras):
    e = error_for(one_node_spec("ops.softmax(x, axes=1)"), stage="build")
    assert e.hint == "did you mean 'axis'?" and "ops.softmax has no argument 'axes'" in e.message
    assert e.column == column("ops.softmax(x, axes=1)", 15)


def test_repeat_index_is_a_name(keras):
    text = HEAD + "  - {name: e, expr: \"x + i\", in: left, repeat: 3}\n"
    model = netspec.load(text).build()
    x = np.zeros((1, 4, 3), "float32")
    np.testing.assert_allclose(model.predict([x, x], verbose=0), x + 3)


# ---------------------------------------------------------------------------------------------
# Persistence: .keras round trip under safe_mode, tampered files refused


@pytest.fixture(scope="module")
def saved(forms, tmp_path_factory):
    model, inputs, out = forms
    path = tmp_path_factory.mktemp("saved") / "forms.keras"
    model.save(path)
    return path, inputs, out


def test_round_trip_with_safe_mode_in_a_fresh_process(saved, tmp_path):
    path, (left, right), expected = saved
    np.savez(tmp_path / "in.npz", left=left, right=right)
    code = textwrap.dedent("""
        import os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np
        import keras
        import netspec.expr
        model = keras.saving.load_model(sys.argv[1], safe_mode=True)
        data = np.load(sys.argv[2])
        np.savez(sys.argv[3], **model.predict([data["left"], data["right"]], verbose=0))
    """)
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, cwd=ROOT, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    got = np.load(tmp_path / "out.npz")
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)


def _tamper(src, dst, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = next(l for l in config["config"]["layers"] if l["config"]["name"] == "scaled")
                edit(layer["config"])
                data = json.dumps(config).encode()
            zout.writestr(item, data)


TAMPERED = [
    ("import", {"expression": "__import__('os').system('touch MARKER')"}, "may be called"),
    ("attribute-walk", {"expression": "x.__class__.__base__.__subclasses__()"}, "only ops.<function>(...)"),
    ("attribute", {"expression": "().__class__"}, "attribute access"),
    ("lambda", {"expression": "(lambda: 0)()"}, "may be called"),
    ("string-constant", {"constants": {"scale": "rm -rf /"}}, "constant 'scale' is str"),
    ("object-constant", {"constants": {"scale": {"class_name": "Lambda", "config": {}}}}, "constant 'scale' is dict"),
    ("nan-constant", {"constants": {"scale": float("nan")}}, "constant 'scale' is float"),
    ("extra-constant", {"constants": {"scale": 2.5, "evil": 1}}, "not used"),
    ("unknown-name", {"expression": "x * scale2"}, "unknown name"),
    ("bad-variable", {"variables": ["x; import os"]}, "identifiers"),
    ("extra-key", {"function": "4wEAAAAAAAAA"}, "unexpected Expression config keys"),
    ("dtype-object", {"dtype": {"class_name": "Lambda", "config": {"name": "float32"}}}, "dtype must be"),
    ("big-exponent", {"expression": "x ** 1000"}, "exponent"),
    ("too-long", {"expression": "x" + " + x" * 1000}, "longer than"),
    ("output-shape", {"output_shape": "[4]"}, "output_shape must be"),
]


@pytest.mark.parametrize("edit, fragment", [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED])
def test_tampered_config_is_refused(keras, saved, tmp_path, edit, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tampered.keras"
    _tamper(saved[0], path, lambda config: config.update(edit))
    with pytest.raises(ExpressionError) as info:
        keras.saving.load_model(path, safe_mode=True)
    assert fragment in info.value.message and "refusing stored expression layer 'scaled'" in info.value.message
    assert not (tmp_path / "MARKER").exists()


def test_netspec_load_model_refuses_tampering_as_a_netspec_error(keras, saved, tmp_path):
    path = tmp_path / "tampered.keras"
    _tamper(saved[0], path, lambda config: config.update(TAMPERED[0][1]))
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load_model(path)
    assert str(path) in info.value.message and "refusing stored expression layer 'scaled'" in info.value.message


def test_untampered_copy_loads(keras, saved, tmp_path):
    path = tmp_path / "copy.keras"
    _tamper(saved[0], path, lambda config: None)
    assert keras.saving.load_model(path, safe_mode=True).count_params() == 0


# ---------------------------------------------------------------------------------------------
# ONNX: onnxruntime computes what Keras computes

ONNX_SPEC = """\
netspec: 1
name: exprs_onnx
params: {scale: 0.5}
inputs:
  a: [4, 3]
  b: [3, 5]
nodes:
  - {name: hsig, expr: "ops.relu6(x + 3.0) / 6.0", in: a}
  - {name: scaled, expr: "x * scale", in: hsig}
  - {name: mm, expr: "ops.einsum('bij,bjk->bik', x, w)", in: {x: scaled, w: b}}
  - {name: cat, expr: "ops.concatenate([x, y], axis=-1)", in: {x: mm, y: a}}
  - {name: first, expr: "x[:, :, 0]", in: cat, output_shape: [4]}
  - {name: pooled, expr: "ops.mean(x, axis=1) + ops.max(x, axis=1) - ops.logsumexp(x, axis=1)", in: cat}
  - {name: gram, expr: "ops.sigmoid(x @ ops.swapaxes(x, 1, 2)) ** 2", in: cat}
outputs: {first: first, pooled: pooled, gram: gram}
"""


@pytest.mark.slow
def test_onnx_matches_keras(keras, tmp_path):
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    model = netspec.load(ONNX_SPEC).build()
    path = tmp_path / "exprs.onnx"
    signature = [[tf.TensorSpec((None, 4, 3), tf.float32, name="a"), tf.TensorSpec((None, 3, 5), tf.float32, name="b")]]
    model.export(str(path), format="onnx", opset_version=17, input_signature=signature, verbose=False)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    worst = 0.0
    for batch in (1, 5):
        a = rng.normal(size=(batch, 4, 3)).astype("float32")
        b = rng.normal(size=(batch, 3, 5)).astype("float32")
        expected = model.predict([a, b], verbose=0)
        feeds = dict(zip([i.name for i in session.get_inputs()], [a, b]))
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        for name, value in expected.items():
            match = got.get(name)
            if match is None:  # tf2onnx names outputs by position when it cannot use the keys
                match = session.run(None, feeds)[list(expected).index(name)]
            assert match.shape == value.shape
            worst = max(worst, float(np.abs(match - value).max()))
    print(f"ONNX max abs error: {worst:.3g}")
    assert worst <= 1e-5, worst


# ---------------------------------------------------------------------------------------------
# Property: random expression trees; only NetspecError may escape the checker

_ATOMS = ["x", "y", "scale", "act", "dims", "bad", "in_shape", "foo", "ops", "activations", "__import__",
          "None", "...", "True", "1", "-1", "2.5", "1e999", "10**30", "2j", "'same'", "b'x'", "'float32'",
          "'bij,bjk->bik'", "0", "()", "[]"]
_FUNCS = sorted(FUNCTIONS) + sorted(EXCLUDED) + ["ops.nope", "len", "eval", "getattr", "ops.nn.relu",
                                                  "x.__class__", "activations"]
_KEYWORDS = sorted({p.name for f in FUNCTIONS.values() for p in f.params}) + ["axes", "fn", "__class__"]
_BINOPS = ["+", "-", "*", "/", "//", "%", "**", "@", "<<", "|", "&", "and", "or", "<", "==", "is", "in",
           "not in", ">="]


def _compound(children):
    seq = st.lists(children, max_size=3).map(", ".join)
    return st.one_of(
        st.tuples(children, st.sampled_from(_BINOPS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "not ", "~"]), children).map("".join),
        st.tuples(st.sampled_from(_FUNCS), seq, st.lists(st.tuples(st.sampled_from(_KEYWORDS), children),
                                                         max_size=2)).map(
            lambda t: f"{t[0]}({', '.join([t[1]] * bool(t[1]) + [f'{k}={v}' for k, v in t[2]])})"),
        st.tuples(children, st.sampled_from([":", "::-1", "None", "...", "0", "-1", "1:", ":, 0", "..., None"])
                  | children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}:{t[1]}, ::2]"),
        st.tuples(children, st.sampled_from(["__class__", "shape", "T", "numpy"])).map(lambda t: f"{t[0]}.{t[1]}"),
        seq.map(lambda s: f"[{s}]"), seq.map(lambda s: f"({s},)"),
        children.map(lambda c: f"lambda: {c}"), children.map(lambda c: f"[q for q in {c}]"),
        children.map(lambda c: f"f'{{{c}}}'"), children.map(lambda c: f"{{{c}: 1}}"),
        children.map(lambda c: f"{{{c}}}"), children.map(lambda c: f"(z := {c})"),
        children.map(lambda c: f"ops.add(*{c})"), st.tuples(children, children, children).map(
            lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


EXPRESSIONS = st.recursive(st.sampled_from(_ATOMS) | st.integers(-10**25, 10**25).map(str)
                           | st.floats(allow_nan=False).map(repr), _compound, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(EXPRESSIONS, st.text(max_size=60)))
def test_only_netspec_errors_escape_the_checker(text):
    try:
        check_expression(text, ["x", "y"], NAMES)
    except NetspecError as e:
        assert isinstance(e, ExpressionError)
        assert 0 <= e.offset <= len(text)


_CONSTANTS = {
    "int": ["-1", "0", "1", "2", "3"], "number": ["0.5", "1", "-2.0", "scale"], "bool": ["True", "False"],
    "ints": ["-1", "1", "[1, 2]", "[0, 2, 1]", "2", "dims"], "shape": ["[-1, 12]", "[-1, 4, 3]", "[-1]", "[2, 3]"],
    "nested": ["1", "[[0, 0], [1, 1], [0, 0]]", "2", "[[1, 2], [0, 1]]"], "dtype": ["'float32'", "'int32'", "'bool'"],
}
_EQUATIONS = [("'bij->bji'", 1), ("'bij,bkj->bik'", 2), ("'bij,bij->b'", 2)]


def _argument(p, children):
    if p.kind == "tensor":
        return children
    if p.kind == "tensors":
        return st.lists(children, min_size=1, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")
    pool = [repr(c) for c in p.choices] + _CONSTANTS.get(p.base, []) + ["None"] * p.nullable
    return st.sampled_from(pool)


@st.composite
def _valid_call(draw, children):
    qual = draw(st.sampled_from(sorted(FUNCTIONS)))
    fn = FUNCTIONS[qual]
    if fn.varargs:
        equation, n = draw(st.sampled_from(_EQUATIONS))
        return f"{qual}({', '.join([equation] + [draw(children) for _ in range(n)])})"
    args = [draw(_argument(p, children)) for p in fn.params if p.required]
    kwargs = [f"{p.name}={draw(_argument(p, children))}" for p in fn.params
              if not p.required and draw(st.booleans())]
    return f"{qual}({', '.join(args + kwargs)})"


def _valid_compound(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "<", "==", ">="]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(["2", "-1", "0.5", "3"])).map(lambda t: f"({t[0]} ** {t[1]})"),
        children.map(lambda c: f"-{c}"),
        st.tuples(children, st.sampled_from([":, 0", "..., ::-1", "None", ":, 1:, None", "0", "-1"])).map(
            lambda t: f"{t[0]}[{t[1]}]"),
        _valid_call(children),
    )


VALID_EXPRESSIONS = st.recursive(st.sampled_from(["x", "y", "scale", "1", "2.5", "weights"]), _valid_compound,
                                 max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID_EXPRESSIONS)
def test_only_netspec_errors_escape_the_layer(keras, text):
    from netspec.expr import Expression

    names = {k: v for k, v in NAMES.items() if k not in ("act", "bad", "mixed", "in_shape")}
    try:
        checked = check(text, ["x", "y"], names)
        layer = Expression(text, ["x", "y"], {k: names[k] for k in checked.params})
        layer({"x": keras.Input((4, 3)), "y": keras.Input((4, 3))})
    except NetspecError:
        pass


# ---------------------------------------------------------------------------------------------
# Intermediates: every tensor an expression computes is costed from its symbolic shape against
# the activation budget, not only the node's output.

INTERMEDIATES = [
    R("ops.sum(ops.tile(x, [1, 100000, 100000]), axis=[1, 2])", "ops.tile makes a 447.0 GiB intermediate "
      "of shape (None, 400,000, 300,000)", 8, None, True, id="tile-in-sum"),
    R("ops.mean(ops.einsum('bij,bkl->bijkl', x, ops.tile(x, [1, 10000, 1000])))", "ops.einsum makes a 5.4 GiB "
      "intermediate of shape (None, 4, 3, 40,000, 3,000); this expression's intermediates reach 5.8 GiB",
      9, None, True, id="einsum-in-mean"),
    R("ops.sum(x[:, :, :, None, None] * ops.tile(x, [1, 3000, 3000])[:, None, None, :, :], axis=[1, 2, 3, 4])",
      "'*' makes a 4.8 GiB intermediate", 8, None, True, id="broadcast-in-sum"),
]


@pytest.mark.parametrize("text, fragment, offset, hint, in_spec", INTERMEDIATES)
def test_intermediates_are_costed(keras, text, fragment, offset, hint, in_spec):
    e = error_for(one_node_spec(text), stage="check")
    _assert_located(e, text, fragment, offset, hint)
    assert "over the activation budget of " in e.message and "--max-activation-mb" in e.message


def test_intermediates_use_the_budget_in_use(keras):
    from netspec.build.compiler import Budget

    text = one_node_spec("ops.sum(ops.tile(x, [1, 100, 100]), axis=[1, 2])")
    netspec.load(text).check()  # 0.5 MiB of intermediates: within the default budget
    with pytest.raises(NetspecError, match=r"ops.tile makes a 468.8 KiB intermediate of shape \(None, 400, 300\)"):
        netspec.load(text).build(budget=Budget(max_activation_bytes=100 << 10))


def test_intermediates_are_not_costed_on_real_tensors(keras):
    from netspec.build.compiler import Budget
    from netspec.expr import Expression

    layer = Expression("ops.sum(ops.tile(x, [1, 10, 10]), axis=[1, 2])", ["x"], {})
    layer._budget = Budget(max_activation_bytes=100)  # symbolic calls would be refused; eager calls on real data are not re-costed
    out = layer({"x": np.ones((2, 4, 3), "float32")})
    assert out.shape == (2,)
    with pytest.raises(ExpressionError, match="ops.tile makes a"):
        layer({"x": keras.Input((4, 3))})
