"""The size model of expressions (netspec/expressions/cost.py): every ``${}`` operation is paid for before it runs."""

from __future__ import annotations

import textwrap
import time

import pytest

from netspec.expressions import cost as exprcost
from netspec.errors import ExpressionError
from netspec.expressions.cost import MAX_CHARS, MAX_DEPTH, MAX_ELEMENTS, MAX_INT_BITS, Cost
from netspec.expressions.interp import Scope, interpolate

from conftest import error_for

NAMES = {"n": 4, "p": [1, 2, 3], "s": "abc", "big": list(range(90_000))}


def value(text: str, names=NAMES):
    return interpolate("${" + text + "}", Scope(dict(names)))


def refusal(text: str, names=NAMES) -> ExpressionError:
    start = time.process_time()  # CPU time: the doing of the work, not the machine's load
    with pytest.raises(ExpressionError) as info:
        value(text, names)
    assert time.process_time() - start < 2.0, f"{text} took too long to refuse"
    return info.value


# expression -> a fragment of the refusal (each names the limit it breaks)
REFUSED = [
    ("'%9000000000d' % 1", "printf width or precision has 10 digits"),
    ("'%.9000000000f' % 1.5", "printf width or precision has 10 digits"),
    ("'%2000000d' % 1", "printf width or precision is too large: 2,000,000 characters"),
    ("'%.2000000f' % 1.5", "printf width or precision is too large"),
    ("'%s' % ([10**15] * 90000)", "result is too long: 1,"),  # printed form over the string limit
    ("round(1, -10**9)", "round(): ndigits must be at least -1233"),
    ("round(1, -2**60)", "round(): ndigits must be at least -1233"),
    ("[[[0]*10**4]*10**4]*10**4", "~10^8 list elements (limit 100,000)"),
    ("len([[[0]*10**4]*10**4]*10**4)", "list elements (limit 100,000)"),
    ("[[0]*1000]*1000", "1,001,000 list elements"),
    ("[[0]*1000]*1000 == [[0]*1000]*1000", "list elements (limit 100,000)"),
    ("min([[0]*1000]*1000)", "list elements"),
    ("max([[0]*1000]*1000)", "list elements"),
    ("[0] in [[0]*1000]*1000", "list elements"),
    ("[0]*10**9", "~10^9 list elements"),
    ("[0] * 2**64", "list elements"),
    ("'a' * 10**9", "~10^9 characters (limit 1,048,576)"),
    ("10**9 * 'a'", "characters (limit 1,048,576)"),
    ("('a' * 1000000) + ('a' * 1000000)", "2,000,000 characters"),
    ("(2**64)**64", "integer bits (limit 4,096)"),
    ("(2**63)**63 * (2**63)**63", "integer bits"),
    ("(-1) ** 0.5", "complex number"),
    ("(-8) ** (1/3)", "complex number"),
    ("1e308 * 10", "not a finite number"),
    ("float('inf')", "not a finite number"),
    ("float('nan')", "not a finite number"),
    ("9 ** 999999", "exponents are limited to 64"),
    ("big + big", "180,000 list elements"),
    ("[big, big]", "list elements"),
    ("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", f"(limit {MAX_DEPTH})"),
    ("'%s' % [(2**64)**62] * 20000", "characters"),
    ("[(2**64)**62] * 20000", "characters when printed"),
    ("1 << 10**9", "LShift is not allowed"),  # no shifts: the allow-list has none
]


@pytest.mark.parametrize("text, fragment", REFUSED, ids=[t for t, _ in REFUSED])
def test_refused_before_the_work(text, fragment):
    e = refusal(text)
    assert fragment in e.message, e.message
    assert hasattr(e, "offset")


# Legal values near everyday sizes: the model must not refuse them.
ACCEPTED = [
    ("[0]*1000", [0] * 1000),
    ("len([0] * 99000)", 99000),
    ("'%5d' % 3", "    3"),
    ("'%.3f' % 2.5", "2.500"),
    ("'%s' % [1, 2]", "[1, 2]"),
    ("round(3.14159, 2)", 3.14),
    ("round(1234, -2)", 1200),
    ("round(1, -1233)", 0),
    ("round(1.5, -10**9)", 0.0),
    ("round(1.5, 10**9)", 1.5),
    ("2**64", 2**64),
    ("(2**64)**63", (2**64) ** 63),
    ("int(1e308)", int(1e308)),
    ("'ab' * 5000", "ab" * 5000),
    ("len('a' * 1000000)", 1000000),
    ("[[0]*300]*300 == [[0]*300]*300", True),
    ("min(p) + max(p)", 4),
    ("p[1:] + p[:1]", [2, 3, 1]),
    ("big[1:][0] + len(big[::2])", 1 + 45000),
    ("len(big[1:]) + len(big[1:]) + len(big[1:])", 3 * 89_999),
    ("[p, p, p][2][0]", 1),
    ("s * n", "abc" * 4),
    ("3 in p", True),
    ("(-8) ** 2", 64),
    ("2 ** -2", 0.25),
    ("make_divisible(37.5, 8)", 40),
]


@pytest.mark.parametrize("text, expected", ACCEPTED, ids=[t for t, _ in ACCEPTED])
def test_accepted(text, expected):
    assert value(text) == expected


def test_interpolated_text_is_bounded():
    with pytest.raises(ExpressionError) as info:
        interpolate("x${'a' * 1000000}y${'a' * 1000000}", Scope({}))
    assert "interpolated string is too long" in info.value.message
    assert info.value.offset == 20  # at the second ${...}'s text
    assert interpolate("n=${n} p=$p", Scope(NAMES)) == "n=4 p=[1, 2, 3]"


def test_deep_params_are_refused_where_used():
    deep = 0
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    e = refusal("len(d)", {"d": deep})
    assert f"(limit {MAX_DEPTH})" in e.message


def test_shared_sublists_count_every_copy_but_walk_once():
    inner = [0] * 1000
    shared = [inner] * 99  # 99,099 elements, 1,099 distinct objects
    assert Cost().size(shared).elements == 99 * 1000 + 99
    with pytest.raises(ExpressionError, match="list elements"):
        Cost().size([shared, shared])


def test_a_chain_of_params_fails_at_the_depth_limit():
    lines = ["p0: 1"] + [f'p{i}: "${{[p{i - 1}]}}"' for i in range(1, 1201)]
    e = _spec_error(lines, "units: ${len(p1200)}")
    assert e.location is not None and e.path == ("params", f"p{MAX_DEPTH + 1}")
    assert f"nested too deeply: {MAX_DEPTH + 1} levels (limit {MAX_DEPTH})" in e.message


def test_fibonacci_params_stay_linear():
    # p_n = [p_{n-1}, p_{n-2}]: each param is evaluated once, and its size is measured once per
    # distinct list, so the tree size (exponential) is refused in milliseconds.
    lines = ["p0: 1", "p1: 1"] + [f'p{i}: "${{[p{i - 1}, p{i - 2}]}}"' for i in range(2, 41)]
    start = time.process_time()
    e = _spec_error(lines, "units: 4")
    assert time.process_time() - start < 3.0
    assert "list elements (limit 100,000)" in e.message


def test_a_big_param_read_many_times_is_measured_once():
    lines = ['p0: "${[0] * 99999}"'] + [f'p{i}: "${{len(p0) + len(p0)}}"' for i in range(1, 600)]
    start = time.process_time()
    import netspec

    netspec.load(_spec(lines, "units: 4"))
    assert time.process_time() - start < 4.0


def test_a_mid_size_param_read_by_many_nodes_is_accepted_fast():
    import netspec

    nodes = "\n".join(f"  - {{type: Dense, units: '${{len(p) + n}}'}}" for _ in range(2000))
    text = _spec(["n: 1", "p: [" + ", ".join(["1"] * 3000) + "]"], "units: 4") + nodes + "\n"
    start = time.process_time()
    netspec.load(text)
    assert time.process_time() - start < 5.0


def test_the_work_of_a_spec_is_bounded():
    lines = ['big: "${[0] * 99999}"'] + [f'p{i}: "${{len(big[1:]) + (big == big)}}"' for i in range(1, 1000)]
    start = time.process_time()
    e = _spec_error(lines, "units: 4")
    assert time.process_time() - start < 4.0
    assert "expressions do too much work" in e.message and e.path[0] == "params"


def test_memory_and_recursion_errors_become_located_errors(monkeypatch):
    def boom(*_):
        raise MemoryError

    monkeypatch.setattr(exprcost.Cost, "binop", boom)
    with pytest.raises(ExpressionError, match="ran out of memory"):
        value("1 + 1")


def test_limits_are_sane():
    assert MAX_ELEMENTS >= 10_000 and MAX_CHARS >= 1 << 20 and MAX_INT_BITS >= 1024 and MAX_DEPTH >= 8


def _spec(param_lines: list[str], node_line: str) -> str:
    params = "\n".join("  " + line for line in param_lines)
    return textwrap.dedent("""\
        netspec: 1
        name: t
        params:
        {params}
        inputs:
          x: [4]
        nodes:
          - type: Dense
            {node}
        """).format(params=params, node=node_line)


def _spec_error(param_lines: list[str], node_line: str):
    return error_for(_spec(param_lines, node_line))
