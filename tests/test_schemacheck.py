"""netspec.schema.validator: messages per keyword, agreement with jsonschema, the dispatch fast path, speed."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netspec.schema.validator import Issue, Validator, ecma_dollar

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "netspec.schema.json"
INTERP = {"type": "string", "pattern": r"^\$([A-Za-z_][A-Za-z0-9_]*|\{.+\})$"}
NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "a name"}


def issue_for(schema: dict, instance) -> Issue:
    """The best issue for an instance that must be invalid."""
    v = Validator(schema)
    issues = list(v.iter_issues(instance))
    assert issues and not v.is_valid(instance), f"expected {instance!r} to be invalid"
    return v.best(issues)


def _ecma(schema):
    """``schema`` with its patterns in Python's spelling of ECMA-262 ``$`` (end of input only): jsonschema
    evaluates patterns with Python's re, where ``$`` also matches before a final newline."""
    if isinstance(schema, list):
        return [_ecma(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k == "pattern":
            out[k] = ecma_dollar(v)
        elif k == "patternProperties" and isinstance(v, dict):
            out[k] = {ecma_dollar(p): _ecma(s) for p, s in v.items()}
        elif k in ("const", "enum"):
            out[k] = v
        else:
            out[k] = _ecma(v)
    return out


def reference(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_ecma(schema))


# ----- one table of cases per keyword: (schema, instance, fragment, path, keyword, hint) -----

UNITS = {"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/interp"}]}
LAYER = {
    "$defs": {"interp": INTERP},
    "type": "object",
    "properties": {
        "type": {"const": "Conv2D"},
        "filters": UNITS,
        "units": UNITS,
        "padding": {"anyOf": [{"enum": ["same", "valid"]}, {"$ref": "#/$defs/interp"}]},
        "name": NAME,
        "use_bias": {"type": "boolean"},
        "kernel_size": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3},
    },
    "required": ["type"],
    "additionalProperties": False,
}

INVALID = {
    "type-integer": ({"type": "integer"}, "abc", "expected an integer. Received: 'abc'", (), "type", None),
    "type-bool-is-not-integer": ({"type": "integer"}, True, "expected an integer", (), "type", None),
    "type-bool-is-not-number": ({"type": "number"}, False, "expected a number", (), "type", None),
    "type-boolean": ({"properties": {"b": {"type": "boolean"}}}, {"b": 1}, "expected a boolean. Received: b=1",
                     ("b",), "type", None),
    "type-mapping": ({"type": "object"}, [1], "expected a mapping", (), "type", None),
    "type-list": ({"type": "array"}, {}, "expected a list", (), "type", None),
    "type-union": ({"type": ["integer", "null"]}, "x", "expected an integer or null", (), "type", None),
    "minimum": (LAYER, {"type": "Conv2D", "units": -4}, "expected an integer >= 1. Received: units=-4",
                ("units",), "minimum", None),
    "minimum-float": ({"type": "number", "minimum": 0.5}, 0.25, "expected a number >= 0.5", (), "minimum", None),
    "maximum": ({"type": "integer", "maximum": 3}, 4, "expected an integer <= 3", (), "maximum", None),
    "between": ({"type": "integer", "minimum": 1, "maximum": 3}, 0, "expected an integer between 1 and 3", (),
                "minimum", None),
    "exclusive": ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 1,
                  "expected a number > 0 and < 1. Received: 1", (), "exclusiveMaximum", None),
    "multipleOf": ({"type": "integer", "multipleOf": 8}, 12, "an integer that is a multiple of 8", (), "multipleOf",
                   None),
    "multipleOf-float": ({"multipleOf": 0.5}, 0.75, "a multiple of 0.5", (), "multipleOf", None),
    "minLength": ({"type": "string", "minLength": 1}, "", "expected a non-empty string", (), "minLength", None),
    "maxLength-code-points": ({"type": "string", "maxLength": 2}, "\U0001d11e" * 3,  # 3 code points, 12 bytes
                              "a string of at most 2 characters", (), "maxLength", None),
    "pattern-description": (LAYER, {"type": "Conv2D", "name": "1x"},
                            "expected a name matching ^[A-Za-z_][A-Za-z0-9_]*$. Received: name='1x'",
                            ("name",), "pattern", None),
    "pattern-bare": ({"type": "string", "pattern": "^a+$"}, "b", "expected a string matching ^a+$", (), "pattern",
                     None),
    "x-message-value": ({"type": "string", "pattern": "^a+$", "x-message": "a run of a's."}, "b",
                        "a run of a's. Received: 'b'", (), "pattern", None),
    "enum": (LAYER, {"type": "Conv2D", "padding": "vaid"}, "expected one of 'same', 'valid'. Received: padding='vaid'",
             ("padding",), "enum", "did you mean 'valid'?"),
    "enum-long": ({"enum": [f"v{i}" for i in range(14)]}, "x", "'v9' ... (4 more). Received: 'x'", (), "enum", None),
    "const": ({"const": "Dense"}, "Dnese", "expected 'Dense'", (), "const", "did you mean 'Dense'?"),
    "const-bool-is-not-1": ({"const": True}, 1, "expected True. Received: 1", (), "const", None),
    "unknown-key": (LAYER, {"type": "Conv2D", "fliters": 3}, "unknown key 'fliters'", ("fliters",),
                    "additionalProperties", "did you mean 'filters'?"),
    "required": (LAYER, {"units": 3}, "missing required key 'type'", (), "required", None),
    "additionalProperties-schema": ({"additionalProperties": {"type": "integer"}}, {"a": "x"},
                                    "expected an integer. Received: a='x'", ("a",), "type", None),
    "patternProperties": ({"patternProperties": {"^n_": {"type": "integer"}}}, {"n_a": 1.5},
                          "expected an integer", ("n_a",), "type", None),
    "propertyNames": ({"propertyNames": NAME}, {"ok": 1, "1bad": 2},
                      "invalid key: expected a name matching ^[A-Za-z_][A-Za-z0-9_]*$. Received: '1bad'",
                      ("1bad",), "propertyNames", None),
    "minProperties": ({"type": "object", "minProperties": 1}, {}, "expected a mapping with at least 1 key", (),
                      "minProperties", None),
    "maxProperties": ({"maxProperties": 1}, {"a": 1, "b": 2}, "a mapping with at most 1 key", (), "maxProperties",
                      None),
    "items": (LAYER, {"type": "Conv2D", "kernel_size": [3, 0]}, "expected an integer >= 1. Received: kernel_size[1]=0",
              ("kernel_size", 1), "minimum", None),
    "minItems": (LAYER, {"type": "Conv2D", "kernel_size": []}, "expected a list of 1 to 3 items", ("kernel_size",),
                 "minItems", None),
    "maxItems-zero": ({"type": "array", "maxItems": 0}, [1], "expected an empty list", (), "maxItems", None),
    "prefixItems": ({"prefixItems": [{"type": "string"}, {"type": "integer"}]}, ["a", "b"], "expected an integer",
                    (1,), "type", None),
    "items-false": ({"prefixItems": [{"type": "string"}], "items": False}, ["a", 1, 2],
                    "expected a list of at most 1 item", (), "items", None),
    "uniqueItems": ({"uniqueItems": True}, [1, 2, 1.0], "unique items (item 2 repeats item 0)", (), "uniqueItems",
                    None),
    "false-property": ({"properties": {"old": False}}, {"old": 1}, "key 'old' is not allowed", ("old",), "false", None),
    "anyOf-picks-integer-for-negative": (LAYER, {"type": "Conv2D", "filters": -4},
                                         "expected an integer >= 1. Received: filters=-4", ("filters",), "minimum",
                                         None),
    "anyOf-plain-string-names-both": (LAYER, {"type": "Conv2D", "filters": "abc"},
                                      "expected an integer >= 1 or a string matching", ("filters",), "anyOf", None),
    "anyOf-dollar-string-is-interp": (LAYER, {"type": "Conv2D", "filters": "$1x"},
                                      "expected a string matching ^\\$", ("filters",), "pattern", None),
    "anyOf-enum-near-miss": (LAYER, {"type": "Conv2D", "padding": "Same "}, "expected one of 'same', 'valid'",
                             ("padding",), "enum", "did you mean 'same'?"),
    "anyOf-discriminator": (
        {"anyOf": [{"properties": {"type": {"const": "L1"}, "l1": {"type": "number"}}, "required": ["type"]},
                   {"properties": {"type": {"const": "L2"}, "l2": {"type": "number"}}, "required": ["type"]}]},
        {"type": "L2", "l2": "x"}, "expected a number. Received: l2='x'", ("l2",), "type", None),
    "oneOf-none-keys": ({"oneOf": [{"required": ["type"]}, {"required": ["block"]}]}, {"name": "x"},
                        "expected exactly one of the keys 'type', 'block'. Received: {'name': 'x'}", (), "oneOf",
                        None),
    "oneOf-two-keys": ({"oneOf": [{"required": ["type"]}, {"required": ["block"]}]}, {"type": 1, "block": 2},
                       "expected exactly one of the keys 'type', 'block'; found 'type', 'block'", (), "oneOf", None),
    "oneOf-two-forms": ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 3,
                        "exactly one of these forms: an integer, a number; alternatives 0 and 1 all match", (),
                        "oneOf", None),
    "oneOf-x-message": ({"oneOf": [{"required": ["type"]}, {"required": ["expr"]}],
                         "x-message": "a node needs exactly one of 'type', 'expr'"}, {},
                        "a node needs exactly one of 'type', 'expr'. Received: {}", (), "oneOf", None),
    "not": ({"not": {"type": "string"}}, "x", "expected anything except a string", (), "not", None),
    "allOf": ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 1, "expected a number >= 2", (), "minimum", None),
    "if-then": ({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"]}, "else": {"required": ["y"]}},
                {"k": "a"}, "missing required key 'x'", (), "required", None),
    "if-else": ({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"]}, "else": {"required": ["y"]}},
                {"k": "b"}, "missing required key 'y'", (), "required", None),
    "ref-escaped": ({"$defs": {"a/b": {"$defs": {"c~d": {"type": "null"}}}}, "$ref": "#/$defs/a~1b/$defs/c~0d"}, 0,
                    "expected null", (), "type", None),
    "ref-percent": ({"$defs": {"a b": {"type": "null"}}, "$ref": "#/$defs/a%20b"}, 0, "expected null", (), "type",
                    None),
    "deeper-wins": (LAYER, {"units": 3, "fliters": 1}, "unknown key 'fliters'", ("fliters",), "additionalProperties",
                    "did you mean 'filters'?"),
}


@pytest.mark.parametrize("schema, instance, fragment, path, keyword, hint", INVALID.values(), ids=INVALID.keys())
def test_invalid_cases(schema, instance, fragment, path, keyword, hint):
    issue = issue_for(schema, instance)
    assert fragment in issue.message
    assert (issue.path, issue.keyword, issue.hint) == (path, keyword, hint)
    assert issue.at_key == (keyword in ("additionalProperties", "propertyNames", "false"))
    assert not reference(schema).is_valid(instance)


VALID = {
    "integral-float-is-integer": ({"type": "integer", "minimum": 1}, 2.0),
    "big-int": ({"type": "integer", "multipleOf": 3}, 3 * 10**30),
    "interp": (LAYER, {"type": "Conv2D", "filters": "${width * 2}", "units": "$u", "padding": "$p"}),
    "pattern-is-search": ({"pattern": "b"}, "abc"),
    "non-strings-skip-string-keywords": ({"minLength": 3, "pattern": "^x"}, 5),
    "enum-1-equals-1.0": ({"enum": [1, "a"]}, 1.0),
    "const-nested": ({"const": {"a": [1, True]}}, {"a": [1.0, True]}),
    "patternProperties-not-additional": ({"patternProperties": {"^x": True}, "additionalProperties": False}, {"xy": 1}),
    "items-after-prefix": ({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", 1, 2]),
    "unique-bool-vs-int": ({"uniqueItems": True}, [1, True, 0, False]),
    # jsonschema only compares sorted neighbours, so it calls this unique; verdicts must agree.
    "unique-mirrors-reference": ({"uniqueItems": True}, [[1], [True], [1]]),
    "oneOf-exactly-one": ({"oneOf": [{"required": ["type"]}, {"required": ["block"]}]}, {"type": "Dense"}),
    "if-without-then": ({"if": {"type": "string"}}, 3),
    "recursive": ({"$defs": {"t": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/t"}}}}},
                   "$ref": "#/$defs/t"}, {"kids": [{"kids": []}, {}]}),
    "ignored-keywords": ({"type": "integer", "default": 1, "description": "d", "title": "t", "examples": [1],
                          "$comment": "c", "deprecated": True, "readOnly": True, "x-anything": {"any": 1}}, 3),
}


@pytest.mark.parametrize("schema, instance", VALID.values(), ids=VALID.keys())
def test_valid_cases(schema, instance):
    v = Validator(schema)
    assert v.is_valid(instance) and list(v.iter_issues(instance)) == [] and v.best([]) is None
    assert reference(schema).is_valid(instance)


def test_multiple_of_is_total_where_the_reference_raises():
    # jsonschema computes 10**400 / 0.5 in floats and raises OverflowError; a spec must never crash us.
    with pytest.raises(OverflowError):
        reference({"multipleOf": 0.5}).is_valid(10**400)
    assert Validator({"multipleOf": 0.5}).is_valid(10**400)
    assert not Validator({"multipleOf": 0.3}).is_valid(10**400 + 1)
    assert not Validator({"multipleOf": 0.5}).is_valid(float("nan"))


BAD_SCHEMAS = {
    "unsupported-keyword": ({"properties": {"a": {"unevaluatedProperties": False}}}, "unevaluatedProperties"),
    "format-is-not-supported": ({"format": "email"}, "format"),
    "remote-ref": ({"$ref": "https://example.com/s.json#/x"}, "only local"),
    "anchor-ref": ({"$ref": "#foo"}, "only local"),
    "dangling-ref": ({"$ref": "#/$defs/missing"}, "does not resolve"),
    "unknown-type": ({"type": "int"}, "unknown JSON Schema type"),
    "bad-pattern": ({"pattern": "("}, "bad pattern"),
    "ref-cycle": ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "cycle"),
    "x-message-not-string": ({"x-message": 3}, "x-message"),
    "schema-not-mapping": ({"items": 3}, "mapping or a boolean"),
}


@pytest.mark.parametrize("schema, fragment", BAD_SCHEMAS.values(), ids=BAD_SCHEMAS.keys())
def test_bad_schemas_fail_at_construction(schema, fragment):
    with pytest.raises(ValueError, match=fragment):
        Validator(schema)


def test_sub_schema_and_path_prefix():
    v = Validator(LAYER)
    issues = list(v.iter_issues("vaid", {"$ref": "#/properties/padding"}, path=("nodes", 2, "padding")))
    assert [(i.path, i.hint) for i in issues] == [(("nodes", 2, "padding"), "did you mean 'valid'?")]
    assert v.is_valid("same", {"$ref": "#/properties/padding"})
    # fresh {"$ref": ...} dicts per call share one compiled node
    assert v._external({"$ref": "#/$defs/interp"}) is v._external({"$ref": "#/$defs/interp"})


def test_best_prefers_deeper_then_strong_then_first():
    shallow, deep = Issue(("x",), "shallow", "type"), Issue(("x", 1), "deep", "type")
    weak, strong = Issue(("y", 2), "weak", "anyOf"), Issue(("y", 3), "strong", "enum")
    best = Validator({}).best
    assert best([shallow, deep]) is deep
    assert best([shallow, weak, strong]) is strong
    assert best([deep, strong]) is deep  # equal rank: the first one found (document order)


def test_lazy_compile_leaves_unused_branches_alone():
    v = Validator(LAYER)
    assert v.is_valid({"type": "Conv2D", "units": 3})
    assert v._compile(LAYER["properties"]["kernel_size"]).ops is None  # never reached, never built


# ----- agreement with jsonschema on random instances -----

KEYS = ["a", "b", "type", "units", "n_1", "xy", "kids", "i", "n", "s", "l", "o", ""]
STRINGS = ["", "a", "ab", "abc", "$x", "${a}", "$1", "same", "valid", "Dense", "L1", "L2", "é", "𝄞𝄞𝄞", "xy"]
scalars = (
    st.none() | st.booleans() | st.integers(-3, 12) | st.integers(-(2**70), 2**70)
    | st.integers(-4, 10).map(float) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 1.5, 0.1, 2.5, -0.0]) | st.sampled_from(STRINGS) | st.text(max_size=4)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)

AGREEMENT = {
    "types": {"type": "object", "properties": {
        "i": {"type": "integer"}, "n": {"type": "number"}, "s": {"type": "string"}, "l": {"type": "array"},
        "o": {"type": "object"}, "a": {"type": "boolean"}, "b": {"type": "null"},
        "xy": {"type": ["integer", "string"]}}},
    "numbers": {"items": {"anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 10}, {"exclusiveMinimum": 100}, {"exclusiveMaximum": -100},
        {"type": "number", "multipleOf": 0.5, "minimum": 50, "maximum": 60}, {"multipleOf": 7, "minimum": 70},
        {"type": ["string", "null", "boolean", "object", "array"]}]}},
    "strings": {"properties": {"a": {"minLength": 2}, "b": {"maxLength": 2}, "s": {"pattern": "b"},
                               "xy": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1, "maxLength": 3}}},
    "enum-const": {"properties": {"a": {"enum": [1, "a", None, True, [1, 2], {"a": 1}, 2.5]}, "b": {"const": 1},
                                  "i": {"const": False}, "l": {"const": [1, True]}, "o": {"const": {"a": [0]}},
                                  "s": {"enum": ["same", "valid"]}}},
    "objects": {"type": "object", "required": ["a"], "properties": {"a": True, "b": {"type": "integer"}},
                "patternProperties": {"^n_": {"type": "number"}, "y$": {"type": "string"}},
                "additionalProperties": {"type": ["array", "object"]},
                "propertyNames": {"maxLength": 2}, "minProperties": 1, "maxProperties": 3},
    "closed": {"properties": {"a": {}, "b": {}}, "additionalProperties": False, "patternProperties": {"^x": False}},
    "arrays": {"anyOf": [
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
        {"type": "array", "items": {"type": ["integer", "string"]}, "minItems": 2, "maxItems": 3, "uniqueItems": True},
        {"type": "object", "properties": {"l": {"uniqueItems": True}}}]},
    "combinators": {"properties": {
        "a": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}, {"type": "string"}]},
        "b": {"allOf": [{"type": ["integer", "string"]}, {"not": {"const": 3}},
                        {"not": {"type": "string", "maxLength": 1}}]},
        "s": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "array", "minItems": 1}},
        "l": {"if": {"type": "array"}, "then": {"items": {"type": "integer"}}}}},
    "interp": LAYER,
    "recursive": {"$defs": {"t": {"type": "object", "properties": {
                      "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}, "a": {"$ref": "#"}}}},
                  "anyOf": [{"$ref": "#/$defs/t"}, {"type": "integer"}]},
    "booleans": {"properties": {"a": False, "b": True}, "items": False, "prefixItems": [True]},
    "dispatch": None,  # filled below
}


def dispatch_schema(kinds: int = 5, props: int = 4) -> dict:
    """The netspec shape: a node ``allOf`` of ``if type == K then layer.K``, each layer closed."""
    defs: dict = {"interp": INTERP}
    arg = [{"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/interp"}]},
           {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1}, {"$ref": "#/$defs/interp"}]},
           {"anyOf": [{"enum": ["same", "valid", "causal"]}, {"$ref": "#/$defs/interp"}]},
           {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/interp"}]},
           {"anyOf": [{"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3},
                      {"type": "integer", "minimum": 1}, {"$ref": "#/$defs/interp"}]}]
    names = [f"L{k}" for k in range(kinds)]
    for k, name in enumerate(names):
        properties = {"type": {"const": name}, "name": NAME}
        properties |= {f"arg{p}": arg[(k + p) % len(arg)] for p in range(props)}
        defs[f"layer.{name}"] = {"type": "object", "properties": properties, "additionalProperties": False}
    defs["node"] = {"type": "object", "required": ["type"], "properties": {"type": {"enum": names}},
                    "allOf": [{"if": {"required": ["type"], "properties": {"type": {"const": n}}},
                               "then": {"$ref": f"#/$defs/layer.{n}"}} for n in names]}
    return {"$defs": defs, "type": "array", "items": {"$ref": "#/$defs/node"}}


AGREEMENT["dispatch"] = dispatch_schema()
NODE_KEYS = ["type", "name", "arg0", "arg1", "arg2", "arg3", "argx"]
nodes = st.lists(st.dictionaries(
    st.sampled_from(NODE_KEYS), st.sampled_from(["L0", "L1", "L4", "L9"]) | scalars | st.lists(scalars, max_size=3),
    max_size=5) | scalars, max_size=3)


def paths_compatible(mine: set, theirs: set) -> bool:
    """Every path of one side has a prefix-related path on the other (anyOf may report deeper than jsonschema)."""
    def related(p, q):
        return p[: len(q)] == q or q[: len(p)] == p
    return all(any(related(p, q) for q in theirs) for p in mine) and all(
        any(related(q, p) for p in mine) for q in theirs)


def check_agreement(v: Validator, ref: jsonschema.Draft202012Validator, instance) -> None:
    """Same verdict as jsonschema, issues exactly when invalid, and compatible failing paths."""
    theirs = {tuple(e.absolute_path) for e in ref.iter_errors(instance)}
    verdict = v.is_valid(instance)
    assert verdict == (not theirs), instance
    issues = list(v.iter_issues(instance))
    assert bool(issues) != verdict
    if issues:
        assert v.best(issues) is not None
        assert paths_compatible({i.path for i in issues}, theirs)


@pytest.mark.parametrize("name", AGREEMENT)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_agrees_with_jsonschema(name, data):
    schema = AGREEMENT[name]
    instance = data.draw(nodes if name == "dispatch" else json_values)
    check_agreement(Validator(schema), reference(schema), instance)


@settings(max_examples=200, deadline=None)
@given(instance=nodes)
def test_dispatch_fast_path_matches_slow_path(instance):
    schema = AGREEMENT["dispatch"]
    fast, slow = Validator(schema), Validator(schema, fast_dispatch=False)
    assert fast.is_valid(instance) == slow.is_valid(instance)
    assert sorted(map(repr, fast.iter_issues(instance))) == sorted(map(repr, slow.iter_issues(instance)))


def test_dispatch_fast_path_keeps_non_mapping_semantics():
    # For a non-mapping every `if` holds vacuously, so every `then` applies, exactly as jsonschema says.
    schema = {"allOf": [{"if": {"required": ["type"], "properties": {"type": {"const": k}}}, "then": then}
                        for k, then in (("a", {"type": "object"}), ("b", {"minimum": 3}))]}
    for instance in (5, 1, "s", {"type": "a"}, {"type": "b"}, {"type": 1}, {}):
        for fast in (True, False):
            assert Validator(schema, fast_dispatch=fast).is_valid(instance) == reference(schema).is_valid(instance)


# ----- the real netspec schema -----

LENET = {
    "netspec": 1, "name": "lenet5", "description": "LeNet-5 for 32x32 grey images.",
    "params": {"classes": 10, "width": 6}, "inputs": {"image": {"shape": [32, 32, 1]}},
    "nodes": [
        {"name": "c1", "type": "Conv2D", "filters": "$width", "kernel_size": 5, "activation": "tanh"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"name": "c3", "type": "Conv2D", "filters": "${width * 16 // 6}", "kernel_size": 5, "activation": "tanh"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 120, "activation": "tanh"},
        {"type": "Dense", "units": 84, "activation": "tanh"},
        {"name": "probs", "type": "Dense", "units": "$classes", "activation": "softmax"},
    ],
    "outputs": ["probs"],
}


def _edit(path: tuple, value=None, *, drop: bool = False):
    def apply(doc):
        *head, last = path
        target = doc
        for k in head:
            target = target[k]
        if drop:
            del target[last]
        else:
            target[last] = value
        return doc
    return apply


SPEC_EDITS = {
    "as-written": lambda d: d,
    "units-negative": _edit(("nodes", 5, "units"), -4),
    "units-typo-key": _edit(("nodes", 5, "unit"), 4),
    "padding-typo": _edit(("nodes", 0, "padding"), "vaid"),
    "filters-not-int": _edit(("nodes", 0, "filters"), "abc"),
    "filters-float": _edit(("nodes", 0, "filters"), 6.0),
    "bool-for-int": _edit(("nodes", 0, "filters"), True),
    "unknown-layer": _edit(("nodes", 4, "type"), "Flaten"),
    "no-discriminator": _edit(("nodes", 4, "type"), drop=True),
    "two-discriminators": _edit(("nodes", 4, "block"), "b"),
    "block-node": _edit(("nodes", 4), {"block": "conv", "filters": 3}),
    "expr-node": _edit(("nodes", 4), {"expr": "x ** 2", "name": "sq"}),
    "share-node": _edit(("nodes", 4), {"share": "c1"}),
    "top-typo": _edit(("nodez",), []),
    "missing-inputs": _edit(("inputs",), drop=True),
    "bad-name": _edit(("name",), "1x"),
    "version-true": _edit(("netspec",), True),
    "input-shorthand": _edit(("inputs", "image"), [32, 32, 1]),
    "input-zero-dim": _edit(("inputs", "image", "shape", 0), 0),
    "input-null-dim": _edit(("inputs", "image", "shape", 0), None),
    "initializer-mapping": _edit(("nodes", 0, "kernel_initializer"), {"type": "HeNormal", "seed": 3}),
    "initializer-bad-arg": _edit(("nodes", 0, "kernel_initializer"), {"type": "HeNormal", "sed": 3}),
    "activation-typo": _edit(("nodes", 0, "activation"), "relu7"),
    "outputs-mapping": _edit(("outputs",), {"out": "probs"}),
    "nodes-empty": _edit(("nodes",), []),
    "repeat-interp": _edit(("nodes", 5, "repeat"), "${2 * 2}"),
    "train": _edit(("train",), {"epochs": 3, "batch_size": 32, "optimizer": {"type": "Adam", "learning_rate": 1e-3},
                                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}),
}


@pytest.fixture(scope="module")
def netspec_schema() -> dict:
    if not SCHEMA_FILE.exists():
        pytest.skip(f"{SCHEMA_FILE} is not generated yet")
    return json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def netspec_validators(netspec_schema):
    return Validator(netspec_schema), Validator(netspec_schema, fast_dispatch=False), reference(netspec_schema)


@pytest.mark.parametrize("edit", SPEC_EDITS.values(), ids=SPEC_EDITS.keys())
def test_netspec_schema_agrees_with_jsonschema(netspec_validators, edit):
    fast, slow, ref = netspec_validators
    doc = edit(copy.deepcopy(LENET))
    check_agreement(fast, ref, doc)
    assert slow.is_valid(doc) == fast.is_valid(doc)


def test_netspec_schema_example_is_valid_and_typo_is_located(netspec_validators):
    fast, _, _ = netspec_validators
    assert fast.is_valid(LENET)
    issue = fast.best(fast.iter_issues(_edit(("nodes", 5, "unit"), 4)(copy.deepcopy(LENET))))
    assert (issue.path, issue.message, issue.at_key) == (("nodes", 5, "unit"), "unknown key 'unit'", True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_netspec_schema_agrees_on_random_edits(netspec_validators, data):
    fast, _, ref = netspec_validators
    doc = copy.deepcopy(LENET)
    node = doc["nodes"][data.draw(st.integers(0, len(doc["nodes"]) - 1))]
    key = data.draw(st.sampled_from(sorted(node) + ["units", "padding", "strides", "use_bias", "rate", "x"]))
    node[key] = data.draw(json_values)
    check_agreement(fast, ref, doc)


# ----- speed -----

def timed_batch(n: int, kinds: int = 150, props: int = 10) -> float:
    """Seconds to validate ``n`` small nodes against a ``kinds``-way dispatch schema (best of 3)."""
    schema = dispatch_schema(kinds, props)
    v = Validator(schema)
    good = [3, 0.5, "same", True, [1, 2]]  # a valid value for each of dispatch_schema's argument kinds
    batch = [{"type": f"L{i % kinds}", "name": f"n{i}", "arg1": "$x", "arg2": "${a * 2}"}
             | {f"arg{p}": good[(i % kinds + p) % len(good)] for p in (0, 3, 4, 5, 6, 7)} for i in range(n)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        ok = v.is_valid(batch)
        best = min(best, time.perf_counter() - start)
    assert ok, v.best(v.iter_issues(batch))
    return best


def test_dispatch_is_fast_and_linear():
    small, large = timed_batch(1_000), timed_batch(10_000)
    assert large < 1.0, f"10,000 nodes took {large:.3f} s"
    assert large < 20 * small, f"not linear: 1k {small:.4f} s, 10k {large:.4f} s"


if __name__ == "__main__":  # python -m tests.test_schemacheck: print the timing table
    for n in (100, 1_000, 10_000):
        print(f"{n:>6} nodes: {timed_batch(n) * 1000:8.2f} ms")


def test_the_committed_schema_passes_the_scan_that_commands_skip():
    from netspec.schema.catalog import load_schema

    Validator(load_schema(), scan=True)  # raises on an unsupported keyword, bad pattern or dangling ref


# ----- patterns are ECMA-262: "$" is the end of the input, never "before a final newline" -----

PATTERNS = {  # (pattern, its Python spelling, an instance, whether it matches)
    "name-trailing-newline": ("^[a-z]+$", "^[a-z]+\\Z", "nl\n", False),
    "name-plain": ("^[a-z]+$", "^[a-z]+\\Z", "nl", True),
    "escaped-dollar-kept": ("^\\$x$", "^\\$x\\Z", "$x", True),
    "dollar-in-class-kept": ("^[$a]+$", "^[$a]+\\Z", "$a$", True),
    "bracket-first-in-class": ("^[]$]$", "^[]$]\\Z", "$", True),
    "negated-bracket-first": ("^[^]$]$", "^[^]$]\\Z", "a\n", False),
    "alternation": ("a$|b$", "a\\Z|b\\Z", "a\n", False),
    "escaped-backslash-then-dollar": ("\\\\$", "\\\\\\Z", "\\\n", False),
    "unanchored": ("b", "b", "abc\n", True),
}


@pytest.mark.parametrize("pattern, python, instance, ok", PATTERNS.values(), ids=PATTERNS.keys())
def test_pattern_dollar_is_end_of_input(pattern, python, instance, ok):
    assert ecma_dollar(pattern) == python
    v = Validator({"type": "string", "pattern": pattern})
    assert v.is_valid(instance) is ok
    assert bool(list(v.iter_issues(instance))) is not ok
    keyed = Validator({"patternProperties": {pattern: True}, "additionalProperties": False})
    assert keyed.is_valid({instance: 1}) is ok


NEWLINE_NAMES = {  # every name, ref and key the schema checks with a pattern refuses a trailing newline
    "spec-name": (("name",), "nl\n"),
    "node-name": (("nodes", 0, "name"), "d\n"),
    "ref": (("nodes", 1, "in"), "c1\n"),
    "block-name": (("blocks",), {"b\n": {"nodes": [{"type": "ReLU"}]}}),
    "param-name": (("params",), {"p\n": 1}),
    "input-name": (("inputs",), {"x\n": [4]}),
    "output-name": (("outputs",), {"o\n": "c1"}),
}


@pytest.mark.parametrize("where, value", NEWLINE_NAMES.values(), ids=NEWLINE_NAMES.keys())
def test_the_netspec_schema_refuses_names_with_a_newline(netspec_validators, where, value):
    fast, _, _ = netspec_validators
    doc = _edit(where, value)(copy.deepcopy(LENET))
    assert not fast.is_valid(doc)
    assert any("\\n" in i.message for i in fast.iter_issues(doc))


# ----- cost of failing: hints only for the issue shown, and a bound on issues collected -----

def test_hints_are_computed_only_when_read(monkeypatch):
    import netspec.schema.messages as messages

    calls = []
    real = messages.hint_for
    monkeypatch.setattr(messages, "hint_for", lambda *a: calls.append(a) or real(*a))
    v = Validator(LAYER)
    bad = [{"type": "Conv2D", "filtrs": 3, "paddin": "same", "units": 1}] * 50
    issues = list(v.iter_issues(bad, {"type": "array", "items": LAYER}))
    assert len(issues) == 100 and calls == []
    best = v.best(issues)
    assert best.hint == "did you mean 'filters'?" and len(calls) == 1
    assert best.hint == "did you mean 'filters'?" and len(calls) == 1  # computed once, then kept


def test_lazy_and_plain_hints_compare_equal():
    plain = Issue(("a",), "m", "enum", "did you mean 'b'?")
    lazy = Issue(("a",), "m", "enum", lambda: "did you mean 'b'?")
    assert plain == lazy and hash(plain) == hash(lazy) and repr(plain) == repr(lazy)
    with pytest.raises(AttributeError):
        plain.message = "changed"


def test_property_name_issues_pass_their_hint_on_lazily():
    v = Validator({"propertyNames": {"enum": ["alpha", "beta"]}})
    issue = v.best(v.iter_issues({"alpah": 1}))
    assert callable(issue.lazy_hint) and issue.hint == "did you mean 'alpha'?"


def test_validate_reports_the_best_of_a_bounded_number_of_issues():
    """315,000 misspelled arguments (aliases of one node): collected up to MAX_ISSUES, in well under a second."""
    import netspec
    from netspec.resolve.validate import MAX_ISSUES

    node = "{type: Dense, units: 2, " + ", ".join(f"unitz{k}: 1" for k in range(7)) + "}"
    lines = ["netspec: 1", "name: t", "blocks:", "  b0:", "    nodes: &L [&a " + node + ", " + ", ".join(["*a"] * 999) + "]"]
    lines += [f"  b{k}: {{nodes: *L}}" for k in range(1, 45)]
    lines += ["inputs: {x: [4]}", "nodes: [{type: ReLU}]"]
    start = time.perf_counter()
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1.5
    e = info.value
    assert e.more == MAX_ISSUES - 1 and e.more_at_least and e.hint == "did you mean 'units'?"
    assert f"(more than {MAX_ISSUES - 1} other errors not shown)" in str(e)
    assert e.to_dict()["more_at_least"] is True


def test_few_issues_are_counted_exactly():
    import netspec

    with pytest.raises(netspec.NetspecError) as info:
        netspec.load("netspec: 1\nname: t\ninputs: {x: [4]}\nnodes: [{type: Dense, unitz: 2}, {type: ReLU, x: 1}]\n")
    assert info.value.more >= 1 and not info.value.more_at_least and "more than" not in str(info.value)
