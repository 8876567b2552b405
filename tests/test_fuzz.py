"""Grammar fuzzing: specs and ``${...}`` expressions generated from the spec language, with hostile values.

For every generated spec, ``netspec.load(text).validate()`` either succeeds or raises a NetspecError,
within ``CPU_SECONDS`` of CPU time and without growing the process's peak memory by more than
``MEMORY_GROWTH``; MemoryError and RecursionError are failures like any other exception. The YAML
text is written here (not by a YAML library) so that anchors/aliases, control characters and
non-finite floats appear as an attacker would write them.

tests/test_properties.py fuzzes the document structure with a fixed vocabulary; this file follows
the grammar instead: layer types and their real argument names from schemas/netspec.schema.json,
every ``${}``-able field (params, node arguments, repeat, when, block params and vars, inputs and
their shapes, input_spec, train: and export: fields), typed expression trees with huge numbers,
nested lists and strings with control characters.

Reproducible in CI: derandomized, a fixed number of examples, no example database. The slowest
example is printed (-s or -rA).

``KNOWN_UNFIXED``: generators for classes issue 11 lists that hang or allocate gigabytes on main
today (printf widths, ``round`` digits, nested repetition totals, complex powers, long param
chains, device files as data paths). They are off so the suite stays runnable; the integrator turns
them on (NETSPEC_FUZZ_UNFIXED=1 or the constant) once the expression cost model has landed.
"""

from __future__ import annotations

import json
import os
import resource
import time
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import netspec

KNOWN_UNFIXED = os.environ.get("NETSPEC_FUZZ_UNFIXED") == "1"
CPU_SECONDS = 2.0  # per example: load + validate
MEMORY_GROWTH = 1 << 30  # bytes of peak-RSS growth allowed per example
SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "netspec.schema.json"
SLOWEST: dict[str, tuple[float, str]] = {}  # test -> (cpu seconds, spec text) of its slowest example
COUNTS: dict[str, int] = {}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, list[str]]:
    """Layer type -> its argument names, from the schema."""
    defs = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]
    return {k.removeprefix("layer."): sorted(v.get("properties", {})) for k, v in defs.items()
            if k.startswith("layer.")}


# -- scalars ------------------------------------------------------------------------------------

PARAM_NAMES = ["n", "width", "s", "xs", "flag", "f", "p0"]
HUGE_INTS = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64 + 1, 10**18, 10**30, 10**99, -(2**63), -(10**30)])
# Refused by the loader itself (more than 100 digits, non-finite floats): one such value ends the whole
# spec at load, so they appear in one field per spec, not everywhere.
LOAD_REFUSED = st.sampled_from(["9" * 300, ".nan", ".inf", "-.inf", ".NaN", "+.inf"])
SMALL_INTS = st.integers(-3, 70)
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([1e308, -1e308, 5e-324, 1e-300, 0.0, -0.0, 0.5, 2.5]))
NAN_STRINGS = st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "Infinity", "0x10", "1_000",
                               "0o17", "017", "yes", "no", "on", "null", "~", "2001-01-01", "1:30", ".5", "+1"])
NASTY_CHARS = ["\n", "\r", "\t", "\x00", "\x07", "\x1b", "\x7f", "\u2028", "\u2029", "\ufeff", "\u202e", "$", "{",
               "}", "'", '"', "\\", ":", "#", "%", "&", "*", "!", "|", ">", "\U0001f600", "\ud7ff"]
NASTY_TEXT = st.lists(st.one_of(st.sampled_from(NASTY_CHARS), st.text(max_size=4)), max_size=8).map("".join)
NAMES = st.one_of(
    st.sampled_from(["x", "dense", "out", "a", "b", "n", "_", "x_1", "conv2d", "re_lu", "input", "i"]),
    st.sampled_from(["nl\n", "a\x00b", "tab\t", "\u202eevil", "a b", "1x", "x.0", "../x", "ok\r", "ü", "a" * 300]),
    NASTY_TEXT,
)


# -- expressions: typed trees, so hostile sizes are chosen, not stumbled into -------------------

def _lit(value) -> str:
    return repr(value)


STR_LITS = st.one_of(NASTY_TEXT, st.sampled_from(["same", "valid", "relu", "float32", "bogus", "evil", "ab", ""]))
REPEAT_COUNTS = st.integers(0, 16)  # `x * n` on lists and strings: each level small, so nesting stays small


@st.composite
def int_expr(draw, depth=3):
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(SMALL_INTS.map(_lit), HUGE_INTS.map(_lit), st.sampled_from(["n", "width", "i", "p0"]),
                              st.sampled_from(["in_shape[-1]", "shape(x)[0]", "len(xs)", "True", "None"])))
    d = depth - 1
    kind = draw(st.integers(0, 7))
    if kind == 0:
        op = draw(st.sampled_from(["+", "-", "*", "//", "%", "/"]))
        return f"({draw(int_expr(d))} {op} {draw(int_expr(d))})"
    if kind == 1:  # powers: huge bases and exponents, negative exponents
        base = draw(st.one_of(int_expr(d), HUGE_INTS.map(_lit)))
        if KNOWN_UNFIXED:
            exp = draw(st.one_of(int_expr(d), st.sampled_from(["0.5", "-0.5", "1.5"])))  # (-1) ** 0.5 is complex
        else:
            exp = draw(st.one_of(st.integers(-70, 70).map(_lit), HUGE_INTS.map(_lit)))
            base = f"abs({base})"
        return f"({base} ** {exp})"
    if kind == 2:
        fn = draw(st.sampled_from(["min", "max", "abs", "int", "ceil", "floor", "make_divisible", "len"]))
        if fn == "len":
            return f"len({draw(st.one_of(list_expr(d), str_expr(d)))})"
        args = draw(st.lists(st.one_of(int_expr(d), float_expr(d)), min_size=1, max_size=3))
        return f"{fn}({', '.join(args)})"
    if kind == 3:
        ndigits = draw(st.one_of(int_expr(d), HUGE_INTS.map(_lit)) if KNOWN_UNFIXED else st.integers(-20, 20).map(_lit))
        return f"round({draw(st.one_of(int_expr(d), float_expr(d)))}, {ndigits})"
    if kind == 4:
        return f"({draw(int_expr(d))} if {draw(bool_expr(d))} else {draw(int_expr(d))})"
    if kind == 5:
        return f"{draw(list_expr(d))}[{draw(int_expr(d))}]"
    if kind == 6:
        return f"-{draw(int_expr(d))}"
    return f"int({draw(str_expr(d))})"


@st.composite
def float_expr(draw, depth=2):
    if depth <= 0 or draw(st.booleans()):
        return draw(st.one_of(FLOATS.map(_lit), st.sampled_from(["f", "float('nan')", "float('inf')", "1e999",
                                                                 "float('-inf')", "float('1e308') * 10"])))
    d = depth - 1
    op = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]))
    return f"({draw(st.one_of(float_expr(d), int_expr(d)))} {op} {draw(float_expr(d))})"


@st.composite
def str_expr(draw, depth=2):
    if depth <= 0 or draw(st.booleans()):
        return draw(st.one_of(STR_LITS.map(_lit), st.just("s")))
    d = depth - 1
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"({draw(str_expr(d))} + {draw(str_expr(d))})"
    if kind == 1:
        return f"({draw(str_expr(d))} * {draw(REPEAT_COUNTS)})"
    if kind == 2 and KNOWN_UNFIXED:  # printf widths: '%9000000000d' % 1
        return f"('%{draw(HUGE_INTS)}d' % {draw(int_expr(d))})"
    if kind == 2:
        return f"('%{draw(st.integers(0, 99))}d' % {draw(int_expr(d))})"
    return f"{draw(str_expr(d))}[{draw(int_expr(d))}:{draw(int_expr(d))}]"


@st.composite
def list_expr(draw, depth=2):
    if depth <= 0 or draw(st.booleans()):
        items = draw(st.lists(st.one_of(SMALL_INTS.map(_lit), STR_LITS.map(_lit), HUGE_INTS.map(_lit)), max_size=4))
        return draw(st.one_of(st.just(f"[{', '.join(items)}]"), st.just("xs")))
    d = depth - 1
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"({draw(list_expr(d))} + {draw(list_expr(d))})"
    if kind == 1:
        count = draw(st.one_of(REPEAT_COUNTS, st.integers(10**3, 10**4)) if KNOWN_UNFIXED else REPEAT_COUNTS)
        return f"([{draw(list_expr(d))}] * {count})"  # nested totals: [[[0]*10**4]*10**4]*10**4
    if kind == 2:
        return f"[{draw(list_expr(d))}, {draw(int_expr(d))}, {draw(str_expr(d))}]"
    return f"{draw(list_expr(d))}[{draw(int_expr(d))}:]"


@st.composite
def bool_expr(draw, depth=2):
    if depth <= 0 or draw(st.booleans()):
        return draw(st.sampled_from(["True", "False", "flag", "None", "0", "1"]))
    d = depth - 1
    kind = draw(st.integers(0, 3))
    if kind == 0:
        a, b = draw(st.one_of(int_expr(d), str_expr(d), list_expr(d))), draw(st.one_of(int_expr(d), str_expr(d)))
        return f"({a} {draw(st.sampled_from(['<', '<=', '==', '!=', '>', 'in', 'not in']))} {b})"
    if kind == 1:
        return f"({draw(bool_expr(d))} {draw(st.sampled_from(['and', 'or']))} {draw(bool_expr(d))})"
    if kind == 2:
        return f"(not {draw(bool_expr(d))})"
    return f"({draw(list_expr(d))} == {draw(list_expr(d))})"


ANY_EXPR = st.one_of(int_expr(), float_expr(), str_expr(), list_expr(), bool_expr())


@st.composite
def interpolation(draw, exprs=ANY_EXPR):
    """A ``${...}`` value: whole, embedded in text, or a bare ``$name``."""
    e = draw(exprs)
    return draw(st.sampled_from([f"${{{e}}}", f"${{{e}}}", f"w${{{e}}}x", f"${{{e}}}${{{e}}}",
                                 f"${draw(st.sampled_from(PARAM_NAMES + ['missing']))}"]))


# -- values and YAML text -----------------------------------------------------------------------


class Raw(str):
    """Text emitted into the YAML as it is (non-finite floats, aliases)."""


SCALARS = st.one_of(st.none(), st.booleans(), SMALL_INTS, HUGE_INTS, FLOATS, NAN_STRINGS,
                    NASTY_TEXT, interpolation())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.sampled_from(["type", "a", "b"]), inner,
                                                                      max_size=3)), max_leaves=10)


def emit(value) -> str:
    """Flow-style YAML for ``value``: JSON-like, with YAML's own escapes for strings, plus ``Raw`` pieces."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(emit(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + "".join(_escape(c) for c in value) + '"'
    return json.dumps(value)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    if " " <= c <= "~":
        return c
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


class Anchors:
    """Gives some values an anchor at first use and an alias afterwards, as a YAML author would."""

    def __init__(self, draw) -> None:
        self.draw, self.pool = draw, []

    def __call__(self, value):
        if self.pool and self.draw(st.integers(0, 6)) == 0:
            return Raw("*" + self.draw(st.sampled_from(self.pool)))
        if self.draw(st.integers(0, 8)) == 0:
            name = f"a{len(self.pool)}"
            self.pool.append(name)
            return Raw(f"&{name} {emit(value)}")
        return value


# -- specs --------------------------------------------------------------------------------------


@st.composite
def node(draw, anchor, in_block=False):
    kind = draw(st.sampled_from(["type"] * 5 + ["block", "expr", "share"]))
    out = {}
    if kind == "type":
        layer = draw(st.sampled_from(sorted(catalogue())))
        out["type"] = layer
        for arg in draw(st.lists(st.sampled_from(catalogue()[layer] or ["units"]), max_size=3, unique=True)):
            out[arg] = anchor(draw(VALUES))
    elif kind == "block":
        out["block"] = draw(st.sampled_from(["blk", "blk", "missing"]))
        for arg in draw(st.lists(st.sampled_from(["units", "k", "missing"]), max_size=2, unique=True)):
            out[arg] = anchor(draw(VALUES))
    elif kind == "expr":
        out["expr"] = draw(st.sampled_from(["x ** 2", "x * n", "ops.relu(x)", "x[:, 0]", "x ** 70", "x @ x"]))
    else:
        out["share"] = draw(NAMES)
    if draw(st.booleans()):
        out["name"] = draw(NAMES)
    for key, strategy in (("repeat", st.one_of(SMALL_INTS, HUGE_INTS, interpolation(int_expr()))),
                          ("when", st.one_of(st.booleans(), interpolation(bool_expr()))),
                          ("in", st.one_of(NAMES, st.lists(NAMES, max_size=3))),
                          ("input_spec", input_spec()),
                          ("output_shape", st.lists(st.one_of(SMALL_INTS, HUGE_INTS, interpolation()), max_size=3))):
        if draw(st.integers(0, 4)) == 0:
            out[key] = anchor(draw(strategy))
    return out


SHAPE_DIMS = st.one_of(st.integers(1, 64), st.none(), HUGE_INTS, st.integers(-2, 0), interpolation(int_expr()))


@st.composite
def input_spec(draw):
    fields = {"dtype": st.one_of(st.sampled_from(["float32", "bogus"]), interpolation(str_expr())),
              "shape": st.one_of(st.lists(SHAPE_DIMS, max_size=4), interpolation(list_expr())),
              "ndim": st.one_of(SMALL_INTS, HUGE_INTS, interpolation(int_expr())),
              "min_ndim": st.one_of(SMALL_INTS, interpolation(int_expr())),
              "max_ndim": st.one_of(SMALL_INTS, interpolation(int_expr())),
              "axes": st.dictionaries(st.sampled_from(["-1", "1", "x", "99999999999999999999"]),
                                      st.one_of(SMALL_INTS, HUGE_INTS, interpolation(int_expr())), max_size=2),
              "allow_last_axis_squeeze": st.one_of(st.booleans(), interpolation(bool_expr()))}
    keys = draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True))
    return {k: draw(fields[k]) for k in keys}


@st.composite
def inputs(draw, anchor):
    out = {}
    for name in draw(st.lists(st.sampled_from(["x", "y", "nl\n", "a\x00"]), min_size=1, max_size=2, unique=True)):
        shape = draw(st.one_of(st.lists(SHAPE_DIMS, min_size=1, max_size=4), interpolation(list_expr())))
        if draw(st.booleans()):
            out[name] = anchor(shape)
        else:
            decl = {"shape": shape}
            for key, strategy in (("dtype", st.one_of(st.sampled_from(["float32", "int32", "bogus"]),
                                                      interpolation(str_expr()))),
                                  ("batch_size", st.one_of(st.integers(1, 8), HUGE_INTS, interpolation(int_expr()))),
                                  ("sparse", st.one_of(st.booleans(), interpolation(bool_expr()))),
                                  ("optional", st.one_of(st.booleans(), interpolation(bool_expr())))):
                if draw(st.integers(0, 3)) == 0:
                    decl[key] = draw(strategy)
            out[name] = anchor(decl)
    return out


DATA_PATHS = ["d.csv", "missing.npz", "../x.csv", "/nonexistent/x.npz", "a\nb.csv", "x\x00.csv", "${'evil'}",
              "."] + (["/dev/zero", "/dev/urandom", "/proc/self/environ"] if KNOWN_UNFIXED else [])


@st.composite
def train(draw, anchor):
    any_int = st.one_of(st.integers(-5, 100), HUGE_INTS, interpolation(int_expr()))
    data = {"source": draw(st.one_of(st.sampled_from(["csv", "npz", "dataset", "image_dir", "evil"]),
                                     interpolation(str_expr())))}
    fields = {"path": st.one_of(st.sampled_from(DATA_PATHS), NASTY_TEXT),
              "delimiter": st.one_of(st.sampled_from([",", ";", "ab", "\n", "\x00", ""]), interpolation(str_expr())),
              "x": st.one_of(NAMES, st.lists(NAMES, max_size=2)), "y": NAMES,
              "validation_split": st.one_of(FLOATS, interpolation()),
              "shuffle": st.one_of(st.booleans(), interpolation(bool_expr())),
              "cache": st.one_of(st.booleans(), interpolation(bool_expr())), "name": NAMES,
              "classes": st.lists(NAMES, max_size=3)}
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)):
        data[key] = draw(fields[key])
    out = {"data": anchor(data)}
    top = {"batch_size": any_int, "epochs": any_int, "steps_per_epoch": any_int, "seed": any_int,
           "optimizer": st.one_of(st.sampled_from(["adam", "sgd", "evil"]),
                                  st.fixed_dictionaries({"type": st.sampled_from(["Adam", "SGD", "Evil"]),
                                                         "learning_rate": st.one_of(FLOATS, interpolation())})),
           "loss": st.one_of(st.sampled_from(["mse", "sparse_categorical_crossentropy", "evil"]), interpolation()),
           "metrics": st.lists(st.one_of(st.sampled_from(["accuracy", "evil"]),
                                         st.fixed_dictionaries({"type": st.sampled_from(["MeanIoU", "AUC"]),
                                                                "num_classes": any_int,
                                                                "num_thresholds": any_int})), max_size=2),
           "distribute": st.one_of(st.sampled_from(["none", "mirrored", "bogus"]), interpolation(str_expr())),
           "mixed_precision": st.one_of(st.booleans(), interpolation()),
           "checkpoint": st.fixed_dictionaries({"monitor": NAMES, "mode": st.one_of(st.just("max"), interpolation())})}
    for key in draw(st.lists(st.sampled_from(sorted(top)), max_size=5, unique=True)):
        out[key] = anchor(draw(top[key]))
    return out


@st.composite
def export(draw, anchor):
    out = {}
    any_int = st.one_of(st.integers(-5, 300), HUGE_INTS, st.none(), interpolation(int_expr()))
    for name in draw(st.lists(st.sampled_from(["cpu", "edge", "onnx-int8", "nl\n", "litert"]), max_size=2,
                              unique=True)):
        target = {"format": draw(st.one_of(st.sampled_from(["onnx", "litert", "evil"]), interpolation(str_expr())))}
        fields = {"opset": any_int, "batch_size": any_int,
                  "precision": st.one_of(st.sampled_from(["fp16", "int8", "fp64"]), interpolation(str_expr())),
                  "description": NASTY_TEXT,
                  "calibration": st.fixed_dictionaries({}, optional={
                      "samples": any_int, "seed": any_int,
                      "range": st.lists(st.one_of(FLOATS, interpolation()), max_size=3)})}
        for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
            target[key] = draw(fields[key])
        out[name] = anchor(target)
    return out


@st.composite
def params(draw, anchor):
    out = {"n": draw(st.one_of(SMALL_INTS, HUGE_INTS)), "width": 8, "s": draw(STR_LITS), "xs": [1, 2, 3],
           "flag": True, "f": draw(FLOATS)}
    # A chain p0 <- p1 <- ... where each is a ${} of the one before: long ones hit RecursionError on main.
    chain = draw(st.integers(0, 2000 if KNOWN_UNFIXED else 60))
    if chain:
        out["p0"] = 1
        for k in range(1, chain):
            out[f"p{k}"] = draw(st.sampled_from([f"${{[p{k - 1}]}}", f"${{p{k - 1} + 1}}", f"${{p{k - 1}}}"]))
    for _ in range(draw(st.integers(0, 3))):
        out[draw(NAMES)] = anchor(draw(st.one_of(VALUES, interpolation())))
    if draw(st.integers(0, 9)) == 0:
        out["refused"] = Raw(draw(LOAD_REFUSED))
    return out


@st.composite
def block(draw, anchor):
    b = {"params": {"units": draw(st.one_of(st.just("required"), SMALL_INTS, interpolation())),
                    "k": draw(st.one_of(SMALL_INTS, HUGE_INTS, interpolation()))},
         "nodes": draw(st.lists(node(anchor, in_block=True), min_size=1, max_size=3))}
    if draw(st.booleans()):
        b["vars"] = {draw(st.sampled_from(["v", "w", "nl\n"])): draw(interpolation()) for _ in range(2)}
    if draw(st.booleans()):
        b["inputs"] = draw(st.lists(NAMES, max_size=2))
    return b


@st.composite
def specs(draw) -> str:
    """A spec as YAML text."""
    anchor = Anchors(draw)
    top = {"params": params(anchor), "inputs": inputs(anchor)}
    lines = ["netspec: 1", f"name: {emit(draw(st.one_of(st.just('fuzz'), NAMES)))}"]
    for key in ("params", "inputs"):
        lines.append(f"{key}:")
        for k, v in draw(top[key]).items():
            lines.append(f"  {emit(k)}: {emit(v)}")
    if draw(st.booleans()):
        lines.append("blocks:")
        lines.append(f"  blk: {emit(draw(block(anchor)))}")
    lines.append("nodes:")
    for n in draw(st.lists(node(anchor), min_size=1, max_size=5)):
        lines.append(f"  - {emit(n)}")
    if draw(st.booleans()):
        lines.append(f"outputs: {emit(draw(st.one_of(NAMES, st.lists(NAMES, max_size=2))))}")
    if draw(st.booleans()):
        lines.append(f"train: {emit(draw(train(anchor)))}")
    if draw(st.booleans()):
        lines.append(f"export: {emit(draw(export(anchor)))}")
    return "\n".join(lines) + "\n"


# A valid spec with one slot, ``@``, for the generated ``${...}``: every ${}-able field in turn.
SKELETON = """\
netspec: 1
name: fuzz
params: {{n: {n}, width: 8, s: {s}, xs: [1, 2, 3], flag: true, f: 0.5, p0: 3, e: {param}}}
inputs:
  x: {input}
blocks:
  blk:
    params: {{units: {bparam}}}
    vars: {{v: {bvar}}}
    nodes:
      - {{type: Dense, units: $units}}
nodes:
  - {{name: d, type: Dense, units: {units}, activation: {activation}{node_extra}}}
  - {{name: b, block: blk, units: 4{block_extra}}}
train:
  data: {data}
  batch_size: {batch_size}
  epochs: {epochs}
  optimizer: {{type: Adam, learning_rate: {lr}}}
  loss: {loss}
export:
  cpu: {export}
"""
SLOTS = {  # field -> its value when it is not the slot
    "param": "1", "input": "[4]", "bparam": "required", "bvar": "1", "units": "4", "activation": "relu",
    "node_extra": "", "block_extra": "", "data": "{source: dataset, name: digits}", "batch_size": "8",
    "epochs": "1", "lr": "0.001", "loss": "sparse_categorical_crossentropy", "export": "{format: onnx}",
}
SLOT_FORMS = {  # field -> how the slot's ${} sits in it
    "param": ["@"], "input": ["@", "[@]", "[4, @]", "{shape: @}", "{shape: [4], dtype: @}",
                              "{shape: [4], batch_size: @}", "{shape: [4], sparse: @}", "{shape: [4], optional: @}"],
    "bparam": ["@"], "bvar": ["@"], "units": ["@"], "activation": ["@"],
    "node_extra": [", repeat: @", ", when: @", ", input_spec: {ndim: @}", ", input_spec: {dtype: @}",
                   ", input_spec: {shape: @}", ", input_spec: {axes: {'-1': @}}", ", input_spec: {min_ndim: @}"],
    "block_extra": [", repeat: @", ", when: @", ", v: @"],
    "data": ["{source: @, name: digits}", "{source: csv, path: d.csv, delimiter: @}", "{source: @}",
             "{source: dataset, name: digits, validation_split: @}", "{source: dataset, name: digits, shuffle: @}",
             "{source: npz, path: @}"],
    "batch_size": ["@"], "epochs": ["@"], "lr": ["@"], "loss": ["@"],
    "export": ["{format: @}", "{format: onnx, opset: @}", "{format: onnx, batch_size: @}",
               "{format: onnx, precision: @}", "{format: onnx, precision: int8, calibration: {samples: @}}",
               "{format: onnx, precision: int8, calibration: {seed: @}}"],
}


# Values of the right shape but the wrong content (issue 11 class 4): each field must re-check them.
PLAUSIBLE = ["'evil'", "'ab'", "-5", "0", "'bogus'", "10**18", "2**63", "True", "None", "[4]", "[-1]", "[0, 4]",
             "'float32'", "'onnx'", "'int8'", "'csv'", "1.5", "-0.5", "'relu'", "'x'", "''", "'\\n'", "[[4]]",
             "{}"[:0] + "'../../etc/passwd'", "'/proc/self/environ'", "n", "xs", "s"]


@st.composite
def expression_specs(draw) -> str:
    """The skeleton with one field holding a generated ``${...}`` (or ``$e``, the param holding it)."""
    field = draw(st.sampled_from(sorted(SLOT_FORMS)))
    form = draw(st.sampled_from(SLOT_FORMS[field]))
    e = draw(st.one_of(ANY_EXPR, st.sampled_from(PLAUSIBLE)))
    value = emit("${" + e + "}")
    values = dict(SLOTS, n=emit(draw(st.one_of(SMALL_INTS, HUGE_INTS))), s=emit(draw(STR_LITS)))
    if field != "param" and draw(st.booleans()):  # through a param: `$e`
        values["param"], value = value, "$e"
    values[field] = form.replace("@", value)
    return SKELETON.format(**values)


# -- the property -------------------------------------------------------------------------------


def validate_only_raises_netspec_errors(test: str, text: str) -> None:
    """The property: load + validate ends in success or a NetspecError, inside the time and memory bounds."""
    COUNTS[test] = COUNTS.get(test, 0) + 1
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        netspec.load(text).validate()
    except netspec.NetspecError as e:
        assert len(str(e)) < 4000, f"an error message of {len(str(e))} characters"
    finally:
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if cpu > SLOWEST.get(test, (-1.0, ""))[0]:
            SLOWEST[test] = (cpu, text)
    assert cpu < CPU_SECONDS, f"validate took {cpu:.2f}s of CPU ({wall:.2f}s wall)"
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - rss_before
    assert growth < MEMORY_GROWTH, f"peak memory grew by {growth >> 20} MiB"


# Real bugs on main the fuzzer finds (issue 11, class 4: ${} results not re-checked), owned by other helpers;
# strict=False so the tests pass again as soon as the fixes land. Minimal examples, on the skeleton spec:
#   inputs: {x: "${0}"}                                   -> AttributeError resolve.py:352 ('int' has no .get)
#   train: {data: {source: "${0}"}}                       -> KeyError: 0, datacheck.py:73
#   train: {data: {source: "${['a']}"}}                   -> TypeError unhashable type: 'list', datacheck.py:73
#   train: {data: {source: npz, path: "${1.5}"}}          -> TypeError PosixPath / float, datacheck.py:141
UNFIXED_ON_MAIN = pytest.mark.xfail(strict=False, reason="issue 11 class 4: ${} results not re-checked (see above)")


@settings(max_examples=250, **SETTINGS)
@given(specs())
def test_generated_specs_only_raise_netspec_errors(text):
    validate_only_raises_netspec_errors("specs", text)


@UNFIXED_ON_MAIN
@settings(max_examples=250, **SETTINGS)
@given(expression_specs())
def test_generated_expressions_only_raise_netspec_errors(text):
    validate_only_raises_netspec_errors("expressions", text)


def test_report_slowest_examples():
    """Not a check: the number of examples and the slowest one per test, for the log (-rA or -s)."""
    for test, (cpu, text) in sorted(SLOWEST.items()):
        print(f"fuzz {test}: {COUNTS.get(test, 0)} examples, slowest {cpu:.3f}s CPU:\n{text[:1500]}")
