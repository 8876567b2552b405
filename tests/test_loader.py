"""The loader: safe YAML 1.2 subset, caps on hostile input, and source positions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.source import loader
from netspec.errors import Location, SpecSyntaxError
from netspec.source.loader import DEFAULT_LIMITS, Limits, SourceMap, load_path, load_yaml, parse_scalar

ROOT = Path(__file__).resolve().parent.parent
PARSERS = [pytest.param(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader, id="default"),
           pytest.param(yaml.SafeLoader, id="pure-python")]


def error_for(source, limits: Limits = DEFAULT_LIMITS, file: str | None = "spec.yaml") -> SpecSyntaxError:
    """The SpecSyntaxError that loading ``source`` raises; fails if it loads."""
    with pytest.raises(SpecSyntaxError) as info:
        load_yaml(source, file, limits=limits)
    assert info.value.location is not None, "every loader error carries a location"
    return info.value


def assert_error(source, fragment: str, line: int, column: int, limits: Limits = DEFAULT_LIMITS):
    err = error_for(source, limits)
    assert fragment in err.message, err.message
    assert (err.file, err.line, err.column) == ("spec.yaml", line, column), str(err)
    assert len(err.message) < 400, "messages quote user text only through short()"
    return err


@pytest.fixture(params=PARSERS)
def parser(request):
    """Run a test with libyaml's event parser and again with PyYAML's pure-Python fallback."""
    with mock.patch.object(loader, "_EVENT_LOADER", request.param):
        yield request.param


# --- rules, with the message fragment and the position of the offending text --------------------

LIMIT_DEPTH_3 = Limits(max_depth=3)
# (source, message fragment, line, column[, limits]); positions agree for both parsers.
RULE_CASES = {
    "empty": ("", "the spec is empty", 1, 1),
    "comments-only": ("# nothing here\n", "the spec is empty", 1, 1),
    "blank-lines": ("\n\n   \n", "the spec is empty", 1, 1),
    "marker-only": ("---\n", "the spec is empty", 1, 1),
    "second-document": ("a: 1\n---\nb: 2\n", "one YAML document", 2, 1),
    "second-after-end": ("a: 1\n...\n---\nb: 2\n", "one YAML document", 3, 1),
    "second-empty-doc": ("a: 1\n---\n", "one YAML document", 2, 1),
    "dup-block": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first defined at line 1)", 3, 1),
    "dup-flow": ("{a: 1, a: 2}", "duplicate key 'a'", 1, 8),
    "dup-nested": ("n:\n  - {x: 1}\n  - {x: 1, y: 2, x: 3}\n", "duplicate key 'x'", 3, 18),
    "dup-quoted": ("a: 1\n'a': 2\n", "duplicate key 'a' (first defined at line 1)", 2, 1),
    "key-int": ("1: x\n", "keys must be strings", 1, 1),
    "key-null": ("a: 1\nnull: x\n", "keys must be strings", 2, 1),
    "key-tilde": ("~: x\n", "keys must be strings", 1, 1),
    "key-bool": ("true: x\n", "keys must be strings", 1, 1),
    "key-float": ("{a: 1, 1.5: x}", "keys must be strings", 1, 8),
    "key-flow-seq": ("[a]: x\n", "keys must be strings", 1, 1),
    "key-complex": ("? {a: 1}\n: x\n", "keys must be strings", 1, 3),
    "key-empty": ("? \n: x\n", "keys must be strings", 1, 2),
    "key-alias-list": ("a: &l [1]\n*l : x\n", "keys must be strings", 2, 1),
    "merge-key": ("base: &b {a: 1}\nderived:\n  <<: *b\n", "merge keys (<<) are not allowed", 3, 3),
    "tag-python": ("a: !!python/object/apply:os.system ['echo pwned']\n",
                   "tags are not allowed. Received: '!!python/object/apply:os.system'", 1, 4),
    "tag-python-name": ("- !!python/name:os.system x\n", "'!!python/name:os.system'", 1, 3),
    "tag-str": ("a: !!str 1\n", "tags are not allowed. Received: '!!str'", 1, 4),
    "tag-binary": ("a: !!binary aGk=\n", "'!!binary'", 1, 4),
    "tag-local": ("a:\n  - !foo x\n", "tags are not allowed. Received: '!foo'", 2, 5),
    "tag-map": ("!!map {a: 1}\n", "'!!map'", 1, 1),
    "tag-seq-block": ("a: !!seq\n  - 1\n", "'!!seq'", 1, 4),
    "tag-non-specific": ("a: ! x\n", "tags are not allowed. Received: '!'", 1, 4),
    "tag-verbatim": ("a: !<tag:yaml.org,2002:python/name:os.system> x\n", "'!!python/name:os.system'", 1, 4),
    "tag-directive": ("%TAG !e! tag:evil.example,2000:\n---\na: !e!x 1\n", "tag:evil.example,2000:x", 3, 4),
    "tag-long": ("a: !" + "x" * 5000 + " v\n", "tags are not allowed", 1, 4),
    "inf": ("a: .inf\n", "non-finite floats are not allowed", 1, 4),
    "minus-inf": ("a: [1, -.Inf]\n", "non-finite floats are not allowed", 1, 8),
    "nan": ("a: .NaN\n", "non-finite floats are not allowed", 1, 4),
    "nan-upper": ("a:\n  b: .NAN\n", "non-finite floats are not allowed", 2, 6),
    "float-overflow": ("a: 1e400\n", "out of range", 1, 4),
    "int-digits": ("a: " + "7" * 101 + "\n", "101 digits, more than the limit of 100", 1, 4),
    "hex-digits": ("a: 0x" + "f" * 101 + "\n", "101 digits", 1, 4),
    "scalar-chars": ("a: '" + "x" * 11 + "'\n", "11 characters, more than the limit of 10", 1, 4,
                     Limits(max_scalar_chars=10)),
    "key-chars": ("abcdefghijk: 1\n", "11 characters", 1, 1, Limits(max_scalar_chars=10)),
    "depth-flow": ("[[[[1]]]]", "nesting is deeper than the limit of 3", 1, 4, LIMIT_DEPTH_3),
    "depth-flow-map": ("{a: {b: {c: {d: 1}}}}", "nesting is deeper", 1, 13, LIMIT_DEPTH_3),
    "depth-block": ("a:\n  b:\n    c:\n      d: 1\n", "nesting is deeper", 4, 7, LIMIT_DEPTH_3),
    "depth-block-seq": ("- - - - x\n", "nesting is deeper", 1, 7, LIMIT_DEPTH_3),
    "nodes": ("[1, 2, 3, 4, 5]", "expands to more than 5 values", 1, 14, Limits(max_nodes=5)),
    "nodes-alias": ("a: &a [1, 2]\nb: [*a, *a]\n", "expands to more than 12 values", 2, 9,
                    Limits(max_nodes=12)),
    "alias-undefined": ("a: *nope\n", "alias *nope has no anchor &nope before it", 1, 4),
    "alias-before-anchor": ("a: *x\nb: &x 1\n", "has no anchor", 1, 4),
    "alias-recursive": ("a: &x [1, *x]\n", "alias *x refers to a collection that contains it", 1, 11),
    "alias-recursive-map": ("&r {a: {b: *r}}\n", "contains it", 1, 12),
    "control-nul": ("a: b\x00\n", "character U+0000 is not allowed", 1, 5),
    "control-bell": ("a: 1\nb: \x07\n", "character U+0007 is not allowed", 2, 4),
    "control-escape": (b"a: 1\n\x1b[31m: x\n", "U+001B", 2, 1),
    "lone-surrogate": ("a: 1\nb: x\ud800\n", "U+D800", 2, 5),
    "utf8-invalid": (b"a: 1\nb: \xff\xfe\n", "not valid UTF-8: byte 0xff at offset 8", 2, 4),
    "utf8-truncated": (b"ab\xc3", "not valid UTF-8: byte 0xc3 at offset 2", 1, 3),
    "utf8-after-bom": (b"\xef\xbb\xbfa: \x80\n", "offset 6", 1, 4),
    "utf16": ("a: 1\n".encode("utf-16"), "UTF-16", 1, 1),
    "bytes-cap": (b"a: 123456789", "12 bytes, more than the limit of 10 bytes", 1, 1, Limits(max_bytes=10)),
    "text-cap": ("a: 123456789", "more than the limit of 10 bytes", 1, 1, Limits(max_bytes=10)),
    "text-cap-utf8": ("a: \u00e9\u00e9\u00e9\u00e9", "11 bytes", 1, 1, Limits(max_bytes=10)),
    "yaml-1.1": ("%YAML 1.1\n---\nnetspec: 1\n", "YAML 1.1 is not supported", 1, 1),
    "syntax-quote": ("a: 'x", "found unexpected end of stream", 1, 6),
    "syntax-mapping": ("a: b: c\n", "mapping values are not allowed", 1, 5),
    "syntax-tab": ("a:\n\tb: 1\n", "found character '\\t' that cannot start any token", 2, 1),
    "syntax-at": ("a: @x\n", "found character '@' that cannot start any token", 1, 4),
    "syntax-backtick": ("a: `x`\n", "found character '`'", 1, 4),
}


@pytest.mark.parametrize("case", list(RULE_CASES.values()), ids=list(RULE_CASES))
def test_rule_errors(case, parser):
    source, fragment, line, column, *limits = case
    assert_error(source, fragment, line, column, *limits)


def test_error_paths_and_hints():
    assert error_for("n:\n  - {x: 1, x: 2}\n").path == ("n", 0, "x")
    assert error_for("a: {b: [1, .nan]}\n").path == ("a", "b", 1)
    assert error_for("a: {b: !!str x}\n").hint.startswith("a spec holds only plain data")
    assert "repeat the keys" in error_for("<<: {a: 1}\n").hint
    assert "quote the key" in error_for("1: x\n").hint
    assert "tabs" in error_for("a:\n\tb: 1\n").hint
    assert error_for("a: 1\n---\nb: 2\n").hint
    assert error_for("n: " + "[" * 200).path == ("n", 0, 0, 0, 0, 0, 0, 0)  # shortened, still a real path


@pytest.mark.parametrize("source", [
    "a: [1, 2",
    "a: {b: 1",
    "- a\nb: 1\n",
    "a: \"unterminated\n",
    "key: value\n  bad indent: 1\n",
    "a: *\n",
    "&: x\n",
    "a: !<>",
    "? [\n",
], ids=lambda s: repr(s)[:24])
def test_yaml_syntax_errors_become_spec_syntax_errors(source, parser):
    err = error_for(source)
    assert err.line >= 1 and err.column >= 1
    assert err.kind == "syntax"


def test_messages_stay_bounded():
    long_key = "k" * 10_000
    assert len(error_for(f"{long_key}: 1\n{long_key}: 2\n").message) < 200
    assert len(error_for("a: !" + "x" * 5000 + " v\n").message) < 200
    assert len(error_for("a: *" + "x" * 5000 + "\n").message) < 200
    assert len(error_for("a: !" + "x" * 5000 + "!y v\n").message) < 400  # PyYAML's own problem text


def test_tags_never_construct_anything(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [
        f"a: !!python/object/apply:os.system ['touch {marker}']\n",
        f"!!python/object/apply:subprocess.call [['touch', '{marker}']]\n",
        "a: !!python/name:os.system\n",
        f"a: !!python/object/new:os.system ['touch {marker}']\n",
    ]
    with mock.patch("os.system") as system, mock.patch("subprocess.call") as call:
        for text in hostile:
            assert "tags are not allowed" in error_for(text).message
    assert not system.called and not call.called and not marker.exists()


# --- YAML 1.2 core schema -----------------------------------------------------------------------

SCALARS = {
    "yes": "yes", "no": "no", "on": "on", "off": "off", "y": "y", "n": "n", "Yes": "Yes",
    "017": 17, "0o17": 15, "0x1F": 31, "0xff": 255, "-017": -17, "+1": 1, "-0": 0, "0": 0,
    "1e-3": 0.001, "1E3": 1000.0, "1.5e+3": 1500.0, "1.": 1.0, ".5": 0.5, "-.5": -0.5, "+2.5": 2.5,
    "1_000": "1_000", "1:30": "1:30", "2001-01-01": "2001-01-01", "0b101": "0b101", "0O17": "0O17",
    "-0x1F": "-0x1F", "1e": "1e", "e3": "e3", "1.2.3": "1.2.3", "inf": "inf", "nan": "nan",
    "~": None, "null": None, "Null": None, "NULL": None, "nULL": "nULL", "": None,
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "tRue": "tRue", "\u0661": "\u0661", "$width": "$width", "relu": "relu",
}


@pytest.mark.parametrize(("text", "expected"), list(SCALARS.items()), ids=[repr(k) for k in SCALARS])
def test_core_schema_plain_scalars(text, expected):
    for value in (parse_scalar(text), load_yaml(f"v: {text}\n").data["v"]):
        assert type(value) is type(expected) and value == expected


@pytest.mark.parametrize("source", ["v: '1'", 'v: "true"', "v: 'null'", "v: |\n  017\n", "v: >\n  yes\n"],
                         ids=["single", "double", "null", "literal", "folded"])
def test_quoted_and_block_scalars_are_strings(source):
    assert isinstance(load_yaml(source).data["v"], str)


@pytest.mark.parametrize(("text", "fragment"), [
    (".inf", "non-finite"), ("-.inf", "non-finite"), (".NaN", "non-finite"), ("1e999", "out of range"),
    ("9" * 101, "101 digits"), ("x" * 70_000, "characters"),
], ids=["inf", "minus-inf", "nan", "overflow", "digits", "long"])
def test_parse_scalar_refuses(text, fragment):
    with pytest.raises(SpecSyntaxError, match=fragment):
        parse_scalar(text)


def test_parse_scalar_only_takes_text():
    with pytest.raises(SpecSyntaxError, match="expected a string"):
        parse_scalar(5)


# --- source positions ---------------------------------------------------------------------------

SPEC = """\
netspec: 1
name: demo
params: {classes: 10, width: 6}
inputs:
  image: {shape: [32, 32, 1]}
nodes:
  - name: c1
    type: Conv2D
    filters: $width
  - {type: Dense, units: "${classes * 2}", activation: 'relu'}
  -
    type: Dense
notes: |
  line one
  line two
list:
- a
- [b]
"""
VALUES = {
    (): (1, 1, ""),
    ("netspec",): (1, 10, ""),
    ("name",): (2, 7, ""),
    ("params",): (3, 9, "{"),
    ("params", "classes"): (3, 19, ""),
    ("params", "width"): (3, 30, ""),
    ("inputs",): (5, 3, ""),
    ("inputs", "image"): (5, 10, "{"),
    ("inputs", "image", "shape"): (5, 18, "["),
    ("inputs", "image", "shape", 0): (5, 19, ""),
    ("inputs", "image", "shape", 2): (5, 27, ""),
    ("nodes",): (7, 3, ""),
    ("nodes", 0): (7, 5, ""),
    ("nodes", 0, "name"): (7, 11, ""),
    ("nodes", 0, "filters"): (9, 14, ""),
    ("nodes", 1): (10, 5, "{"),
    ("nodes", 1, "type"): (10, 12, ""),
    ("nodes", 1, "units"): (10, 26, '"'),
    ("nodes", 1, "activation"): (10, 56, "'"),
    ("nodes", 2): (12, 5, ""),
    ("notes",): (13, 8, "|"),
    ("list",): (17, 1, ""),
    ("list", 0): (17, 3, ""),
    ("list", 1): (18, 3, "["),
    ("list", 1, 0): (18, 4, ""),
}
KEYS = {
    ("netspec",): (1, 1),
    ("params", "classes"): (3, 10),
    ("params", "width"): (3, 23),
    ("inputs", "image"): (5, 3),
    ("inputs", "image", "shape"): (5, 11),
    ("nodes", 0, "name"): (7, 5),
    ("nodes", 0, "type"): (8, 5),
    ("nodes", 1, "units"): (10, 19),
    ("nodes", 1, "activation"): (10, 44),
    ("nodes", 2, "type"): (12, 5),
    ("list",): (16, 1),
}


@pytest.mark.parametrize(("path", "expected"), list(VALUES.items()), ids=[str(p) for p in VALUES])
def test_value_positions(path, expected, parser):
    source = load_yaml(SPEC, "net.yaml").source
    assert source.values[path] == expected
    assert source.value(path) == Location("net.yaml", *expected[:2])


@pytest.mark.parametrize(("path", "expected"), list(KEYS.items()), ids=[str(p) for p in KEYS])
def test_key_positions(path, expected, parser):
    source = load_yaml(SPEC, "net.yaml").source
    assert source.keys[path] == expected
    assert source.key(path) == Location("net.yaml", *expected)


def test_data_and_document():
    doc = load_yaml(SPEC, "net.yaml")
    assert doc.data["nodes"][1] == {"type": "Dense", "units": "${classes * 2}", "activation": "relu"}
    assert doc.data["notes"] == "line one\nline two\n"
    assert doc.text == SPEC and doc.source.file == "net.yaml"
    assert set(doc.source.keys) <= set(doc.source.values)


def test_source_map_fallbacks():
    source = load_yaml(SPEC, "net.yaml").source
    assert source.value(("nodes", 0, "missing", 3)) == Location("net.yaml", 7, 5)
    assert source.value(["nodes", 1, "units"]) == Location("net.yaml", 10, 26)  # any sequence works
    assert source.key(("nodes", 0)) == Location("net.yaml", 7, 5)  # a list item has no key
    assert source.key(("nope",)) == Location("net.yaml", 1, 1)
    assert SourceMap("x.yaml").value(("a", 1)) == Location("x.yaml", 1, 1)
    assert SourceMap(None).key(()) == Location(None, 1, 1)


INSIDE = {
    "double-quoted": ('units: "${a + b}"\n', ("units",), 2, (1, 11)),
    "double-first": ('units: "${a + b}"\n', ("units",), 0, (1, 9)),
    "plain": ("a: hello world\n", ("a",), 6, (1, 10)),
    "plain-end": ("a: abc\n", ("a",), 3, (1, 7)),
    "flow-plain": ("n: [{x: abc}]\n", ("n", 0, "x"), 1, (1, 10)),
    "single-quoted": ("a: 'x + y'\n", ("a",), 4, (1, 9)),
    "single-escape-after": ("a: 'ab''c'\n", ("a",), 1, (1, 6)),
    "single-escape-at": ("a: 'ab''c'\n", ("a",), 2, (1, 7)),
    "single-escape-before": ("a: 'a''bc'\n", ("a",), 3, (1, 4)),
    "double-escape-after": ('a: "ab\\tc"\n', ("a",), 1, (1, 6)),
    "double-escape-before": ('a: "a\\tbc"\n', ("a",), 3, (1, 4)),
    "multi-line-plain": ("a: one\n  two\n", ("a",), 5, (1, 4)),
    "multi-line-quoted": ("a: 'one\n  two'\n", ("a",), 1, (1, 4)),
    "block-literal": ("a: |\n  text\n", ("a",), 1, (1, 4)),
    "past-the-end": ("a: abc\n", ("a",), 10, (1, 4)),
    "negative": ("a: abc\n", ("a",), -1, (1, 4)),
    "not-a-string": ("a: 12345\n", ("a",), 2, (1, 4)),
    "unknown-path": ("a: {b: x}\n", ("a", "c"), 2, (1, 4)),
    "second-line": ("x: 1\nunits: \"${a}\"\n", ("units",), 2, (2, 11)),
    "unicode": ("a: \u00e9\u00e9 x\n", ("a",), 3, (1, 7)),
}


@pytest.mark.parametrize("case", list(INSIDE.values()), ids=list(INSIDE))
def test_inside(case, parser):
    source, path, offset, expected = case
    assert load_yaml(source, "f.yaml").source.inside(path, offset) == Location("f.yaml", *expected)


def test_crlf_and_bom_positions(parser):
    doc = load_yaml(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 'x'\r\n", "f.yaml")
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert doc.source.values[("b", "c")] == (3, 6, "'")
    assert doc.source.keys[("a",)] == (1, 1)
    assert load_yaml("\ufeffa: 1\n").data == {"a": 1}


# --- aliases ------------------------------------------------------------------------------------

def test_aliases_share_and_record_their_own_position(parser):
    doc = load_yaml("base: &b {units: 8}\nx: *b\ny: [*b]\n", "f.yaml")
    assert doc.data["x"] is doc.data["base"] and doc.data["y"][0] is doc.data["base"]
    assert doc.source.values[("x",)] == (2, 4, "*")
    assert doc.source.values[("y", 0)] == (3, 5, "*")
    assert ("x", "units") not in doc.source.values
    assert doc.source.value(("x", "units")) == Location("f.yaml", 2, 4)


@pytest.mark.parametrize(("source", "expected"), [
    ("a: &n 5\nb: *n\n", {"a": 5, "b": 5}),
    ("a: &k key\n*k : 1\n", {"a": "key", "key": 1}),
    ("a: &x 1\nb: &x 2\nc: *x\n", {"a": 1, "b": 2, "c": 2}),
    ("a: &x [1]\nb: &x [2]\nc: *x\n", {"a": [1], "b": [2], "c": [2]}),
    ("&r [a, &s [b], *s]\n", ["a", ["b"], ["b"]]),
], ids=["scalar", "key", "redefined", "redefined-collection", "root-anchor"])
def test_alias_values(source, expected):
    assert load_yaml(source).data == expected


def test_alias_sizes_are_exact():
    # root, key a, [1, 2] (3 nodes), key b, [*a, *a] (1 + 3 + 3): 13 values after expansion.
    text = "a: &a [1, 2]\nb: [*a, *a]\n"
    assert load_yaml(text, limits=Limits(max_nodes=13)).data == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    assert "more than 12" in error_for(text, Limits(max_nodes=12)).message


CHARS = {  # (source, characters after expansion): scalars and keys as written, counted at every alias use
    "scalars": ("a: &a xyz\nb: [*a, *a]\n", 1 + 3 + 1 + 3 + 3),
    "collection": ("a: &a [xy, z]\nb: [*a, *a, *a]\n", 1 + 3 + 1 + 3 * 3),
    "keys": ("a: &a {key: v}\nb: *a\n", 1 + 4 + 1 + 4),
    "scalar-key-anchor": ("&k key: 1\n*k : 2\n", 0),  # a duplicate key: refused before it counts
}


@pytest.mark.parametrize("source, chars", [v for k, v in CHARS.items() if v[1]],
                         ids=[k for k, v in CHARS.items() if v[1]])
def test_alias_characters_are_exact(source, chars):
    load_yaml(source, limits=Limits(max_chars=chars))
    assert f"more than {chars - 1} characters" in error_for(source, Limits(max_chars=chars - 1)).message


def test_a_big_string_aliased_many_times_fails_fast():
    """A 64 KiB string aliased 240,000 times stands for 16 GB: refused by what it stands for."""
    lines = ["s: &s " + "x" * 65_000, "l0: &l0 [" + ", ".join(["*s"] * 10) + "]"]
    lines += [f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]" for k in range(1, 5)]
    lines.append("top: [" + ", ".join(["*l4"] * 3) + "]")
    start = time.perf_counter()
    err = error_for("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 0.5
    assert "expands to more than 4194304 characters" in err.message and err.path[0] == "l1"
    assert (err.line, err.column) == (3, 10 + 5 * 5)  # s, then 10 uses in l0, then the 6th *l0 of l1


def test_characters_without_aliases_never_reach_the_cap():
    assert DEFAULT_LIMITS.max_chars >= 4 * DEFAULT_LIMITS.max_bytes
    big = "k: [" + ", ".join(["x" * 60_000] * 17) + "]\n"  # just under 1 MiB of text
    assert len(load_yaml(big).data["k"]) == 17


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9, 30], ids=["1e6", "1e9", "1e30"])
def test_billion_laughs_fails_fast(levels):
    start = time.perf_counter()
    err = error_for(billion_laughs(levels))
    assert time.perf_counter() - start < 0.5
    assert "expands to more than 1000000 values" in err.message


def test_many_aliases_within_the_cap_load():
    doc = load_yaml(billion_laughs(levels=4, width=9))  # 9**5 ~ 59k leaves
    assert len(doc.data["a4"]) == 9 and doc.data["a4"][0] is doc.data["a3"]


# --- hostile sizes, in a subprocess so a crash shows up as a signal -----------------------------

DEEP = {
    "brackets": "'[' * (1 << 20)",
    "braces": "'{a: ' * (1 << 18)",
    "block-mappings": "''.join(' ' * (2 * i) + 'a:\\n' for i in range(1000))",
    "block-sequences": "'- ' * (1 << 19)",
    "closed-brackets": "'[' * (1 << 19) + ']' * (1 << 19)",
}


@pytest.mark.parametrize("expr", list(DEEP.values()), ids=list(DEEP))
def test_deep_nesting_fails_cleanly_in_a_subprocess(expr):
    script = textwrap.dedent(f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from netspec.errors import SpecSyntaxError
        from netspec.source.loader import load_yaml
        text = {expr}
        assert len(text.encode()) <= 1 << 20
        start = time.perf_counter()
        try:
            load_yaml(text)
        except SpecSyntaxError as err:
            print("ERR", err.line, err.column, err.message, "%.3f" % (time.perf_counter() - start))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    tag, line, column, rest = run.stdout.split(" ", 3)
    assert tag == "ERR" and "nesting is deeper than the limit of 100 levels" in rest
    assert int(line) >= 1 and int(column) >= 1
    assert float(rest.rsplit(" ", 1)[1]) < 2.0


def test_size_cap_is_checked_before_parsing():
    start = time.perf_counter()
    assert "more than the limit" in error_for("a" * (64 << 20)).message
    assert "more than the limit" in error_for(b"a" * (64 << 20)).message
    assert time.perf_counter() - start < 1.0


# --- property tests: only SpecSyntaxError escapes ----------------------------------------------

YAMLISH = st.text(alphabet=list("[]{}:,-?&*!|>'\"#%@` \n\t\\abcxy01.~<=+e\u00e9\x00\ufeff"), max_size=80)


def check_loaded(doc) -> None:
    """Every recorded path exists in the data (sub-paths of aliases are never recorded)."""
    for path in doc.source.values:
        node = doc.data
        for part in path:
            node = node[part]
    assert set(doc.source.keys) <= set(doc.source.values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_spec_syntax_error(data):
    try:
        check_loaded(load_yaml(data))
    except SpecSyntaxError as err:
        assert err.location is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_yamlish_text_raises_only_spec_syntax_error(text):
    for parser in (loader._EVENT_LOADER, yaml.SafeLoader):
        with mock.patch.object(loader, "_EVENT_LOADER", parser):
            try:
                check_loaded(load_yaml(text, limits=Limits(max_depth=5, max_nodes=200)))
            except SpecSyntaxError as err:
                assert err.location is not None and err.line >= 1 and err.column >= 1


PLAIN_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet="abcxyz _-$.{}", max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(PLAIN_DATA, st.sampled_from([None, True, False]))
def test_round_trip_of_dumped_plain_data(data, flow):
    doc = load_yaml(yaml.safe_dump(data, default_flow_style=flow))
    assert doc.data == data
    check_loaded(doc)


# --- files --------------------------------------------------------------------------------------

def test_load_path_names_the_file_as_given(tmp_path, monkeypatch):
    (tmp_path / "net.yaml").write_bytes(b"a: 1\nb: [x]\n")
    monkeypatch.chdir(tmp_path)
    doc = load_path("net.yaml")
    assert doc.data == {"a": 1, "b": ["x"]} and doc.source.file == "net.yaml"
    assert doc.source.value(("b", 0)) == Location("net.yaml", 2, 5)
    assert load_path(tmp_path / "net.yaml").source.file == str(tmp_path / "net.yaml")


@pytest.mark.parametrize(("name", "fragment"), [
    ("missing.yaml", "no such spec file"),
    ("adir", "is a directory"),
    ("bad\x00name", "cannot read"),
], ids=["missing", "directory", "nul-in-path"])
def test_load_path_file_problems(tmp_path, name, fragment):
    (tmp_path / "adir").mkdir()
    path = str(tmp_path / name)
    with pytest.raises(SpecSyntaxError, match=fragment) as info:
        load_path(path)
    assert info.value.file == path and info.value.line == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_load_path_unreadable(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    with pytest.raises(SpecSyntaxError, match="permission denied"):
        load_path(path)


def test_load_path_checks_size_before_reading(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(64 << 30)  # sparse: reading it all would take minutes
    start = time.perf_counter()
    with pytest.raises(SpecSyntaxError, match="68719476736 bytes, more than the limit"):
        load_path(path)
    assert time.perf_counter() - start < 1.0


def test_load_path_errors_carry_the_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_bytes(b"a: 1\na: 2\n")
    with pytest.raises(SpecSyntaxError) as info:
        load_path(path)
    assert str(info.value).startswith(f"{path}:2:1: $.a: duplicate key 'a'")
    (tmp_path / "empty.yaml").write_bytes(b"")
    with pytest.raises(SpecSyntaxError, match="the spec is empty"):
        load_path(tmp_path / "empty.yaml")


# --- odds and ends ------------------------------------------------------------------------------

def test_explicit_null_document_and_yaml_1_2_directive():
    assert load_yaml("null\n").data is None
    assert load_yaml("%YAML 1.2\n---\na: yes\n").data == {"a": "yes"}
    assert load_yaml("a: 1\n...\n").data == {"a": 1}


def test_source_must_be_text_or_bytes():
    assert "Received: int" in error_for(5).message
    assert load_yaml(bytearray(b"a: 1")).data == {"a": 1}


def test_ten_thousand_nodes_load_quickly():
    text = "nodes:\n" + "".join(f"  - {{name: d{i}, type: Dense, units: 8, activation: relu}}\n"
                                for i in range(10_000))
    start = time.process_time()
    doc = load_yaml(text)
    assert time.process_time() - start < 3.0  # ~0.3-0.5 s on a loaded 2-core box; generous for CI
    assert doc.data["nodes"][9999] == {"name": "d9999", "type": "Dense", "units": 8, "activation": "relu"}
    assert doc.source.values[("nodes", 9999, "units")] == (10_001, 39, "")
