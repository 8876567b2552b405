"""Validate plain data against netspec's JSON Schema: a fast draft 2020-12 subset with Keras-style messages."""

from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Iterable, Iterator

from ..errors import short
from .issue import Issue
from .keywords import CMP, KIND_OF, TYPES, SchemaNode, always, equal, multiple_ok, never, unique
from .messages import Messages

# Keys that assert nothing; "x-..." keys are ignored too ("x-message" is read for messages).
_IGNORED = frozenset({"default", "description", "title", "examples", "$schema", "$id", "$comment", "deprecated",
                      "readOnly"})
_SUB_MAPS = ("properties", "patternProperties", "$defs")  # where sub-schemas live, for the keyword scan
_SUB_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUB_ONE = ("additionalProperties", "propertyNames", "items", "not", "if", "then", "else")
_KNOWN = frozenset({"type", "const", "enum", "required", "uniqueItems", "$ref", "x-message", *KIND_OF,
                    *_SUB_MAPS, *_SUB_LISTS, *_SUB_ONE})
# What the schema scan does per key: recurse ("map"/"list"/"one"), check something, or nothing ("").
_SCAN = dict.fromkeys(_KNOWN | _IGNORED, "") | dict.fromkeys(_SUB_MAPS, "map") | dict.fromkeys(_SUB_LISTS, "list") \
    | dict.fromkeys(_SUB_ONE, "one") | {k: k for k in ("$ref", "pattern", "type", "x-message")}


def ecma_dollar(pattern: Any) -> Any:
    """``pattern`` with every unescaped ``$`` outside a character class made ``\\Z``.

    JSON Schema patterns are ECMA-262 regular expressions, where ``$`` matches only at the end of the
    input; Python's ``$`` also matches before a final newline, so ``^[a-z]+$`` would accept ``"nl\\n"``
    (a layer name, then a file name, with a newline in it). Anything not a string is returned as is.
    """
    if not isinstance(pattern, str) or "$" not in pattern:
        return pattern
    out, k, start = [], 0, -1  # start: where the open character class began, -1 outside one
    while k < len(pattern):
        c = pattern[k]
        if c == "\\":
            out.append(pattern[k:k + 2])
            k += 2
            continue
        if start >= 0:  # a ']' first in a class (after an optional '^') is a literal to Python's re
            if c == "]" and k > start + 1 and not (k == start + 2 and pattern[start + 1] == "^"):
                start = -1
        elif c == "[":
            start = k
        elif c == "$":
            c = "\\Z"
        out.append(c)
        k += 1
    return "".join(out)


def _bare_ref(s: Any) -> bool:
    """A schema that is only a ``$ref`` (plus annotations) stands for its target."""
    return isinstance(s, dict) and "$ref" in s and not (s.keys() - _IGNORED - {"$ref", "$defs"})


def _required_key(s: Any) -> str | None:
    """``k`` when ``s`` is just ``{"required": [k]}`` (oneOf over such schemas: "exactly one of these keys")."""
    if isinstance(s, dict) and not (s.keys() - _IGNORED - {"required"}) and len(s.get("required", ())) == 1:
        return s["required"][0]
    return None


def _both(a: Callable[[Any], bool], b: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """The check that passes when ``a`` and then ``b`` pass."""
    return lambda x: a(x) and b(x)


def _conjoin(fns: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    # Specialised for short lists: the valid path is a few direct calls, no generator.
    if len(fns) <= 2:
        return always if not fns else fns[0] if len(fns) == 1 else _both(fns[0], fns[1])

    def check(x: Any) -> bool:
        for f in fns:
            if not f(x):
                return False
        return True
    return check


class Validator:
    """Validates instances against one root schema, compiling each sub-schema once, on first use.

    Supported keywords: ``$ref`` (local JSON pointers), ``$defs``, ``type``, ``enum``, ``const``,
    ``properties``, ``required``, ``additionalProperties``, ``patternProperties``, ``propertyNames``,
    ``minProperties``, ``maxProperties``, ``items``, ``prefixItems``, ``minItems``, ``maxItems``,
    ``uniqueItems``, ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``,
    ``minLength``, ``maxLength``, ``pattern``, ``anyOf``, ``oneOf``, ``allOf``, ``not``, ``if``/``then``/``else``.
    Annotations and ``x-...`` keys are ignored, except ``x-message``: on a schema, it replaces the generated
    text for that schema's value keywords, its ``not``, and its ``anyOf``/``oneOf`` when several branches
    match or none does and no branch stands out. A ``description`` that starts with "a"/"an" names what
    a ``pattern`` schema accepts ("expected a layer name matching ..."). ``$id`` never changes the base of a
    ref: refs resolve in the root document ("#/..." or the root's own ``$id`` + "#/...").
    The explanations of failures come from the validator's :class:`~netspec.schema.messages.Messages`
    (``self.messages``), which reads the compiled nodes the checks are made of.

    Args:
        schema: the root schema; treated as immutable from here on.
        fast_dispatch: turn ``allOf`` items ``{"if": {"required": [K], "properties": {K: {"const": X}}},
            "then": S}`` into one dict lookup on the instance's ``K``; same verdicts, far faster.
        scan: check the whole schema's keywords, patterns and refs up front (skip only for a schema
            already known to pass, like netspec's committed one).

    Raises:
        ValueError: the schema uses an unsupported keyword, a non-local or dangling ``$ref``, an unknown
            type name or a bad ``pattern`` (checked by one cheap scan of the whole schema).
    """

    def __init__(self, schema: dict, *, fast_dispatch: bool = True, scan: bool = True) -> None:
        self.schema = schema
        self._fast = fast_dispatch
        self._cache: dict[Any, tuple[Any, SchemaNode]] = {}  # id(schema) -> (schema, kept alive so ids stay unique; node)
        self._targets: dict[str, Any] = {}
        if scan:  # netspec's own committed schema skips it: a test scans that file (a third of validate's time)
            self._scan(schema)
        self.messages = Messages(self._compile, self._resolve, self._fill)  # explains what the checks refuse
        self._root = self._compile(schema)

    # ----- public API -----

    def iter_issues(self, instance: Any, schema: dict | None = None, path: tuple = ()) -> Iterator[Issue]:
        """Every issue of ``instance``; a failed ``anyOf``/``oneOf`` gives one, from its most relevant branch.

        Args:
            instance: plain data (dicts, lists, str, int, float, bool, None).
            schema: the root schema by default, or a sub-schema such as ``{"$ref": "#/$defs/layer.Dense"}``.
            path: where ``instance`` sits in the document; prefixed to every issue's path.

        Returns:
            An iterator of issues, empty when the instance is valid.

        Raises:
            ValueError: ``schema`` uses an unsupported keyword or ref.
        """
        node = self._external(schema)
        if not node.valid(instance):  # the cheap check first: a valid document builds no issues at all
            yield from self.messages.issues(node, instance, tuple(path))

    def is_valid(self, instance: Any, schema: dict | None = None) -> bool:
        """Whether ``instance`` matches ``schema`` (default: the root schema).

        Raises:
            ValueError: ``schema`` uses an unsupported keyword or ref.
        """
        return self._external(schema).valid(instance)

    def best(self, issues: Iterable[Issue]) -> Issue | None:
        """The issue to report first (see :meth:`Messages.best`): the deepest, then a strong keyword, then the earliest."""
        return self.messages.best(issues)

    def describe(self, s: Any) -> str:
        """What subschema ``s`` accepts, as a noun phrase (for messages and the layer catalogue)."""
        return self.messages.describe(s)

    # ----- checking the schema, compiling it -----

    def _scan(self, root: Any) -> None:
        """Check every keyword, type name, pattern and ref once, without compiling anything."""
        stack, seen = [root], set()
        while stack:
            s = stack.pop()
            if s is True or s is False or id(s) in seen:
                continue
            if not isinstance(s, dict):
                raise ValueError(f"a schema must be a mapping or a boolean. Received: {short(s)}")
            seen.add(id(s))
            for kw, v in s.items():
                act = _SCAN.get(kw)
                if not act:
                    if act is None and not kw.startswith("x-"):
                        raise ValueError(f"unsupported JSON Schema keyword {kw!r} in {short(s)}")
                elif act == "map":
                    stack.extend(v.values())
                    if kw == "patternProperties":
                        list(map(self._regex, v))
                elif act == "list":
                    stack.extend(v)
                elif act == "one":
                    stack.append(v)
                elif act == "$ref":
                    target, chain = self._resolve(v), {id(s)}
                    while _bare_ref(target) and _bare_ref(s):  # a loop of bare refs never reaches a schema
                        if id(target) in chain:
                            raise ValueError(f"$ref cycle that never reaches a schema. Received: $ref={v!r}")
                        chain.add(id(target))
                        target = self._resolve(target["$ref"])
                elif act == "pattern":
                    self._regex(v)
                elif act == "type" and not (v in TYPES if isinstance(v, str) else set(v).issubset(TYPES)):
                    raise ValueError(f"unknown JSON Schema type in {short(s)}")
                elif act == "x-message" and not isinstance(v, str):
                    raise ValueError(f"x-message must be a string. Received: {short(v)}")

    @staticmethod
    def _regex(pattern: Any) -> re.Pattern:
        try:
            return re.compile(ecma_dollar(pattern))
        except (re.error, TypeError) as e:
            raise ValueError(f"bad pattern: {e}. Received: {short(pattern)}") from e

    def _resolve(self, ref: Any) -> Any:
        if isinstance(ref, str) and ref in self._targets:
            return self._targets[ref]
        base = self.schema.get("$id", "") if isinstance(self.schema, dict) else ""
        local = ref[len(base):] if isinstance(ref, str) and base and ref.startswith(base + "#") else ref
        if not isinstance(local, str) or not (local == "#" or local.startswith("#/")):
            raise ValueError(f"only local JSON-pointer refs ('#/...') are supported. Received: $ref={short(ref)}")
        target = self.schema
        for token in local[2:].split("/") if local != "#" else ():
            if "%" in token:
                from urllib.parse import unquote  # a URI fragment may be percent-encoded; rare, so lazily

                token = unquote(token)
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            elif isinstance(target, dict) and token in target:
                target = target[token]
            else:
                raise ValueError(f"$ref does not resolve inside the schema. Received: $ref={ref!r}")
        self._targets[ref] = target
        return target

    def _external(self, schema: Any) -> SchemaNode:
        if schema is None:
            return self._root
        key = ("$ref", schema["$ref"]) if isinstance(schema, dict) and schema.keys() == {"$ref"} else id(schema)
        if key not in self._cache:  # callers often build a fresh {"$ref": ...} per call: cache it by its ref
            self._scan(schema)
            self._cache[key] = (schema, self._compile(schema))
        return self._cache[key][1]

    def _compile(self, schema: Any) -> SchemaNode:
        """The node for ``schema``: cached; its checks are built on first use (most layer kinds never are)."""
        hit = self._cache.get(id(schema))
        if hit is not None:
            return hit[1]
        if _bare_ref(schema):  # its target's node: no extra call per instance, the chain walked once, here
            node = self._compile(self._resolve(schema["$ref"]))
        else:
            node = SchemaNode(schema)
            if isinstance(schema, bool):
                node.valid, node.ops = (always, []) if schema else (never, [])
                node.value_checks = [] if schema else [("false", never)]
            else:
                # Compiled on first use; the trampoline stays reachable from closures that captured it.
                node.valid = lambda x: (node.valid if node.ops is not None else self._fill(node))(x)
        self._cache[id(schema)] = (schema, node)
        return node

    def _fill(self, node: SchemaNode) -> Callable[[Any], bool]:
        s, ops = node.schema, []
        node.xmsg = s["x-message"].rstrip(".") if "x-message" in s else None
        node.value_checks = self._value_checks(s)
        if "$ref" in s:
            target = self._compile(self._resolve(s["$ref"]))
            ops.append(("$ref", lambda x: target.valid(x), lambda x, p: self.messages.issues(target, x, p)))
        if s.keys() & {"properties", "patternProperties", "additionalProperties"}:
            ops.append(self._op_properties(s))
        if s.get("required"):
            ops.append(self._op_required(list(s["required"])))
        if "propertyNames" in s:
            ops.append(self._op_property_names(self._compile(s["propertyNames"])))
        if "items" in s or "prefixItems" in s:
            ops.append(self._op_items(s))
        if s.get("uniqueItems"):
            ops.append(("uniqueItems", lambda x: not isinstance(x, list) or unique(x), self.messages.explain_unique))
        if "allOf" in s:
            ops.extend(self._ops_all_of(s["allOf"]))
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                ops.append(self._op_choice(node, kw, [self._compile(b) for b in s[kw]]))
        if "not" in s:
            ops.append(self._op_not(node, self._compile(s["not"])))
        if "if" in s and ("then" in s or "else" in s):
            ops.append(self._op_if(self._compile(s["if"]), self._compile(s["then"]) if "then" in s else None,
                                   self._compile(s["else"]) if "else" in s else None))
        node.ops = ops
        node.valid = _conjoin([c for _, c in node.value_checks] + [c for _, c, _ in ops])
        return node.valid

    def _value_checks(self, s: dict) -> list[tuple[str, Callable[[Any], bool]]]:
        checks: list[tuple[str, Callable[[Any], bool]]] = []
        types = [s["type"]] if isinstance(s.get("type"), str) else list(s.get("type", ()))
        if types:
            preds = [TYPES[t] for t in types]
            checks.append(("type", preds[0] if len(preds) == 1 else lambda x: any(p(x) for p in preds)))
        if "const" in s:
            # Callable[..., bool]: the default argument (bound now) makes the lambda's own type wider.
            const_ok: Callable[..., bool] = lambda x, c=s["const"]: equal(x, c)  # noqa: E731
            checks.append(("const", const_ok))
        if "enum" in s:
            values = list(s["enum"])
            strings = frozenset(v for v in values if type(v) is str)
            if len(strings) == len(values):  # a str only equals a str, so a set lookup is exact
                checks.append(("enum", lambda x: isinstance(x, str) and x in strings))
            else:
                checks.append(("enum", lambda x: any(equal(v, x) for v in values)))
        for kw, kind in KIND_OF.items():
            if kw not in s:
                continue
            b = s[kw]
            test: Callable[..., bool]  # called with the value alone; the lambdas bind b by default argument
            if kw in CMP:
                test = CMP[kw][1](b)
            elif kw == "multipleOf":
                test = lambda x, b=b: multiple_ok(x, b)  # noqa: E731
            elif kw == "pattern":
                test = lambda x, search=self._regex(b).search: search(x) is not None  # noqa: E731
            else:
                test = (lambda x, b=b: len(x) >= b) if kw.startswith("min") else (lambda x, b=b: len(x) <= b)
            # A keyword ignores other kinds of value; the guard is skipped when "type" (checked first) implies it.
            if not (types and all(t == kind or (t, kind) == ("integer", "number") for t in types)):
                test = (lambda is_kind, t: lambda x: not is_kind(x) or t(x))(TYPES[kind], test)
            checks.append((kw, test))
        return checks

    def _op_properties(self, s: dict) -> tuple:
        props = {k: self._compile(v) for k, v in s.get("properties", {}).items()}
        patterns = [(self._regex(p), self._compile(v)) for p, v in s.get("patternProperties", {}).items()]
        joined = "|".join(s.get("patternProperties", ()))  # jsonschema tests "additional" with one joined regex
        joined_search = self._regex(joined).search if joined else never
        extra = s.get("additionalProperties", True)
        extra = extra if isinstance(extra, bool) else self._compile(extra)
        closed = extra is not True
        extra_node = extra if isinstance(extra, SchemaNode) else None  # None: no additional keys (when closed)

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for k, v in x.items():  # the instance's few keys, not the schema's many properties
                sub = props.get(k)
                if sub is not None:
                    if not sub.valid(v):
                        return False
                elif closed and not joined_search(k) and (extra_node is None or not extra_node.valid(v)):
                    return False
                if patterns and not all(n.valid(v) for rx, n in patterns if rx.search(k)):
                    return False
            return True
        return ("properties", check, partial(self.messages.explain_properties, props, patterns, closed, joined_search, extra))

    def _op_required(self, required: list) -> tuple:
        def check(x: Any) -> bool:
            if isinstance(x, dict):
                for r in required:
                    if r not in x:
                        return False
            return True
        return ("required", check, partial(self.messages.explain_required, required))

    def _op_property_names(self, names: SchemaNode) -> tuple:
        return ("propertyNames", lambda x: not isinstance(x, dict) or all(map(names.valid, x)),
                partial(self.messages.explain_property_names, names))

    def _op_items(self, s: dict) -> tuple:
        prefix = [self._compile(p) for p in s.get("prefixItems", ())]
        rest, n_prefix = (self._compile(s["items"]) if "items" in s else None), len(prefix)

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            for n, v in zip(prefix, x):
                if not n.valid(v):
                    return False
            if rest is not None and len(x) > n_prefix:
                valid = rest.valid
                for v in x[n_prefix:] if n_prefix else x:
                    if not valid(v):
                        return False
            return True
        return ("items", check, partial(self.messages.explain_items, prefix, rest, n_prefix))

    def _ops_all_of(self, items: list) -> list[tuple]:
        table: dict[str, list[SchemaNode]] = {}
        plain: list[SchemaNode] = []
        key = None
        for item in items:
            entry = _dispatch_entry(item) if self._fast else None
            if entry and key in (None, entry[0]):
                key = entry[0]
                table.setdefault(entry[1], []).append(self._compile(entry[2]))
            else:
                plain.append(self._compile(item))
        everything = plain + [n for ns in table.values() for n in ns]
        table = {x: plain + ns for x, ns in table.items()}

        def chosen(x: Any) -> list[SchemaNode]:
            if isinstance(x, dict):
                v = x.get(key)  # only the `if` whose const equals it holds; a non-string equals no const
                return table.get(v, plain) if isinstance(v, str) else plain
            return everything  # `required` and `properties` ignore non-mappings, so every `if` holds

        def check(x: Any) -> bool:
            for n in chosen(x):
                if not n.valid(x):
                    return False
            return True
        return [("allOf", check, lambda x, p: (i for n in chosen(x) for i in self.messages.issues(n, x, p)))]

    def _op_choice(self, owner: SchemaNode, kw: str, branches: list[SchemaNode]) -> tuple:
        def check(x: Any) -> bool:
            for n in branches:
                if n.valid(x):
                    return True
            return False

        def check_one(x: Any) -> bool:
            matched = 0
            for n in branches:
                if n.valid(x):
                    if matched:
                        return False
                    matched = 1
            return matched == 1
        keys = [_required_key(n.schema) for n in branches]
        return (kw, check if kw == "anyOf" else check_one, partial(self.messages.explain_choice, owner, kw, branches, keys))

    def _op_not(self, owner: SchemaNode, negated: SchemaNode) -> tuple:
        return ("not", lambda x: not negated.valid(x), partial(self.messages.explain_not, owner, negated))

    def _op_if(self, cond: SchemaNode, then: SchemaNode | None, else_: SchemaNode | None) -> tuple:
        def check(x: Any) -> bool:
            n = then if cond.valid(x) else else_
            return n is None or n.valid(x)
        def explain(x: Any, p: tuple) -> Iterator[Issue]:
            n = then if cond.valid(x) else else_
            return self.messages.issues(n, x, p) if n is not None else iter(())  # check never fails on None
        return ("if", check, explain)


def _dispatch_entry(item: Any) -> tuple[str, str, Any] | None:
    """``(K, X, then)`` for ``{"if": {"required": [K], "properties": {K: {"const": X}}}, "then": then}``."""
    if not (isinstance(item, dict) and item.keys() == {"if", "then"} and isinstance(item["if"], dict)):
        return None
    cond = item["if"]
    req, props = cond.get("required"), cond.get("properties")
    if cond.keys() != {"required", "properties"} or not (isinstance(req, list) and len(req) == 1):
        return None
    sub = props.get(req[0]) if isinstance(props, dict) and len(props) == 1 else None
    if not (isinstance(sub, dict) and sub.keys() == {"const"} and type(sub["const"]) is str):
        return None
    return req[0], sub["const"], item["then"]
