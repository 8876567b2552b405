"""Keras-style messages for the schema validator: describe what a schema accepts, rank branches, build issues."""

from __future__ import annotations

import re
from functools import partial
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, cast

from ..errors import hint_for, short
from .issue import Issue
from .keywords import CMP, KIND_OF, TYPES, SchemaNode, equal, is_number

_NOUN = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean",
         "null": "null", "object": "a mapping", "array": "a list"}
_MAX_LISTED = 10
_WEAK = frozenset({"anyOf", "oneOf", "not"})
# Issues of one anyOf/oneOf branch looked at to rank it (a 100,000-item list fails a branch 100,000 ways).
_MAX_BRANCH_ISSUES = 1_000


def _received(path: tuple, x: Any) -> str:
    """``units=-4`` / ``kernel_size[1]=0``: the value, named by the nearest key in its path."""
    index = ""
    for elem in reversed(path):
        if not isinstance(elem, int):
            return f"{elem}{index}={short(x)}"
        index = f"[{elem}]{index}"
    return short(x)


def _join_or(parts: Iterable[str]) -> str:
    parts = list(dict.fromkeys(parts))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _listing(values: list) -> str:
    shown = ", ".join(short(v) for v in values[:_MAX_LISTED])
    return shown + (f" ... ({len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else "")


def _count(lo: int | None, hi: int | None, unit: str) -> str:
    def n(k: int) -> str:
        return f"{k} {unit}{'' if k == 1 else 's'}"
    if lo is not None and hi is not None:
        return f"exactly {n(lo)}" if lo == hi else f"{lo} to {n(hi)}"
    if lo is not None:
        return f"at least {n(lo)}"
    assert hi is not None, "a count has at least one bound"  # every caller passes one
    return f"at most {n(hi)}"


def _json_kind(v: Any) -> str:
    return ("null" if v is None else "boolean" if isinstance(v, bool) else "number" if is_number(v)
            else "string" if isinstance(v, str) else "array" if isinstance(v, list) else "object")


def _literal_prefix(pattern: str) -> str:
    """The text every match of an anchored pattern starts with (``^\\$(...)`` -> ``$``), else ''."""
    try:  # re's own parser (private, present since 3.11): any surprise just means "no prefix"
        from re import _parser  # type: ignore[attr-defined]  # private, so typeshed has no stub for it

        items = list(_parser.parse(pattern))
    except Exception:  # noqa: BLE001
        return ""
    if not items or str(items[0][1]) != "AT_BEGINNING":
        return ""
    prefix = []
    for op, arg in items[1:]:  # a repeated or optional literal is a MAX_REPEAT item, so it ends the prefix
        if str(op) != "LITERAL":
            break
        prefix.append(chr(arg))
    return "".join(prefix)


class Messages:
    """Turns the failed keywords of compiled schemas into issues; a :class:`~netspec.schema.validator.Validator` holds one.

    Args:
        compile: the validator's compiled node for a (sub)schema.
        resolve: the schema a ``$ref`` string points to.
        fill: compiles a node's checks (``node.ops``) when they are not built yet.
    """

    def __init__(self, compile: Callable[[Any], SchemaNode], resolve: Callable[[Any], Any],
                 fill: Callable[[SchemaNode], object]) -> None:
        self._compile = compile
        self._resolve = resolve
        self._fill = fill

    def best(self, issues: Iterable[Issue]) -> Issue | None:
        """The issue to report first: the deepest, then one from a strong keyword, then the earliest.

        jsonschema's ``best_match`` prefers shallow errors at the top; here deeper wins, so an unknown key
        (with its "did you mean") beats its mapping's missing-key issue.

        Returns:
            The chosen issue, or None when there are none.
        """
        best, best_key = None, None
        for issue in issues:
            key = (len(issue.path), issue.keyword not in _WEAK)
            if best_key is None or key > best_key:
                best, best_key = issue, key
        return best

    def issues(self, node: SchemaNode, x: Any, path: tuple) -> Iterator[Issue]:
        """Every issue of ``x`` against ``node`` (none when it is valid); ``path`` prefixes each issue's path."""
        ops = node.ops
        if ops is None:
            self._fill(node)
            ops = cast("list[tuple[str, Callable, Callable]]", node.ops)  # _fill always sets node.ops
        if not node.valid(x):
            for kw, check in node.value_checks:
                if not check(x):
                    yield self._value_issue(node, kw, x, path)
                    break  # one folded message says everything the value keywords expect
            for _, check, explain in ops:
                if not check(x):
                    yield from explain(x, path)

    def _value_issue(self, node: SchemaNode, kw: str, x: Any, path: tuple) -> Issue:
        s = node.schema
        if s is False:
            if path and isinstance(path[-1], str):
                return Issue(path, f"key {short(path[-1])} is not allowed", "false", at_key=True)
            return Issue(path, f"no value is allowed here. Received: {_received(path, x)}", "false")
        hint = None
        if kw in ("enum", "const"):
            hint = partial(hint_for, x, [v for v in (s["enum"] if kw == "enum" else [s["const"]]) if isinstance(v, str)])
        return Issue(path, f"{node.xmsg or 'expected ' + self._describe(s)}. Received: {_received(path, x)}", kw,
                           hint)

    def _pick(self, owner: SchemaNode, kw: str, branches: list[SchemaNode], keys: list, x: Any, path: tuple) -> Issue:
        """The issue of the branch ``x`` was most likely meant for; a summary when no branch stands out."""
        scored = []
        for n in branches:
            issues = list(islice(self.issues(n, x, path), _MAX_BRANCH_ISSUES))
            b = self.best(issues) or Issue(path, f"expected {self._describe(n.schema)}", kw)
            # Prefer a branch for this kind of value, then one that got further in, then fewer complaints.
            scored.append(((self._kind_ok(n.schema, x), len(b.path), -len(issues)), b))
        top = max(score for score, _ in scored)
        tied = [i for i, (score, _) in enumerate(scored) if score == top]
        if len(tied) == 1:
            return scored[tied[0]][1]
        if owner.xmsg:
            head = owner.xmsg
        elif None not in keys:  # a oneOf/anyOf of {"required": [k]}: name the keys
            head = f"expected {'exactly ' if kw == 'oneOf' else ''}one of {self._forms(branches, keys)}"
        elif not top[0]:  # a kind of value no branch takes: say what they all take
            head = f"expected {_join_or(self._describe(branches[i].schema) for i in tied)}"
        else:
            return scored[tied[0]][1]
        return Issue(path, f"{head}. Received: {_received(path, x)}", kw)

    def _forms(self, branches: list[SchemaNode], keys: list) -> str:
        if None not in keys:
            return f"the keys {_listing(keys)}"
        return f"these forms: {', '.join(self._describe(n.schema) for n in branches)}"

    def _kind_ok(self, s: Any, x: Any, depth: int = 0) -> bool:
        """Whether ``x`` is the kind of value ``s`` is about: its type, literal prefix and discriminator."""
        if isinstance(s, bool) or depth > 8:
            return s is not False
        if "type" in s:
            if not any(TYPES[t](x) for t in ([s["type"]] if isinstance(s["type"], str) else s["type"])):
                return False
        elif "const" in s or "enum" in s:
            if _json_kind(x) not in {_json_kind(v) for v in ([s["const"]] if "const" in s else s["enum"])}:
                return False
        elif "anyOf" in s or "oneOf" in s:
            if not any(self._kind_ok(b, x, depth + 1) for b in s.get("anyOf", s.get("oneOf"))):
                return False
        elif "$ref" in s and not self._kind_ok(self._resolve(s["$ref"]), x, depth + 1):
            return False
        prefix = _literal_prefix(s["pattern"]) if "pattern" in s else ""
        if prefix and isinstance(x, str) and not x.startswith(prefix):
            return False  # "abc" is no attempt at a "^\$..." interpolation
        props = s.get("properties", {})
        for k in s.get("required", ()) if isinstance(x, dict) else ():
            sub = props.get(k)
            if k in x and isinstance(sub, dict) and ("const" in sub or "enum" in sub):
                if not self._compile(sub).valid(x[k]):
                    return False  # a discriminator ("type: L1") says which branch was meant
        return True

    def describe(self, s: Any) -> str:
        """What subschema ``s`` accepts, as a noun phrase (for messages and the layer catalogue)."""
        return self._describe(s)

    def _describe(self, s: Any, depth: int = 0) -> str:
        """A noun phrase for what ``s`` accepts: "an integer >= 1", "one of 'same', 'valid'"."""
        if isinstance(s, bool) or depth > 4:
            return "no value" if s is False else "any value"
        if "x-netspec-noun" in s:  # the schema's own phrase, instead of a regular expression
            return s["x-netspec-noun"]
        if "const" in s:
            return short(s["const"])
        if "enum" in s:
            return f"one of {_listing(list(s['enum']))}"
        types = [s["type"]] if isinstance(s.get("type"), str) else list(s.get("type", ()))
        if not types:
            for kw in ("anyOf", "oneOf", "$ref"):
                if kw in s:
                    subs = s[kw] if kw != "$ref" else [self._resolve(s[kw])]
                    return _join_or(self._describe(b, depth + 1) for b in subs)
            types = list(dict.fromkeys(KIND_OF[k] for k in s if k in KIND_OF))
            types += ["object"] if s.keys() & {"properties", "required", "additionalProperties"} else []
            if not types:
                return "a valid value"
        return _join_or(self._describe_type(t, s) for t in types)

    @staticmethod
    def _describe_type(t: str, s: dict) -> str:
        noun = _NOUN[t]
        if t in ("integer", "number"):
            bounds = [f"{CMP[k][0]} {short(s[k])}" for k in CMP if k in s]
            if len(bounds) == 2 and "minimum" in s and "maximum" in s:
                bounds = [f"between {short(s['minimum'])} and {short(s['maximum'])}"]
            noun = " ".join([noun, " and ".join(bounds)]).strip()
            return noun + (f" that is a multiple of {short(s['multipleOf'])}" if "multipleOf" in s else "")
        if t == "string":
            desc = s.get("description")
            if "pattern" in s and isinstance(desc, str) and re.match(r"(?i)an? [^.;\n]{1,50}\.?$", desc):
                noun = desc[0].lower() + desc[1:].rstrip(".")  # the schema's own name for it: "a layer name"
            lo, hi = s.get("minLength"), s.get("maxLength")
            if lo == 1 and hi is None and noun == "a string":
                noun = "a non-empty string"
            elif lo is not None or hi is not None:
                noun += f" of {_count(lo, hi, 'character')}"
            return noun + (f" matching {s['pattern']}" if "pattern" in s else "")
        if t in ("array", "object"):
            unit, lo, hi = ("item", s.get("minItems"), s.get("maxItems")) if t == "array" else \
                ("key", s.get("minProperties"), s.get("maxProperties"))
            if hi == 0:
                return f"an empty {noun[2:]}"
            if lo is not None or hi is not None:
                return f"{noun} {'of' if t == 'array' else 'with'} {_count(lo, hi, unit)}"
        return noun

    def explain_properties(self, props, patterns, closed, joined_search, extra, x: dict,
                           path: tuple) -> Iterator[Issue]:
        """Issues of a mapping's values and unknown keys (``properties``, ``patternProperties``, ``additionalProperties``)."""
        for k, v in x.items():  # document order, so the first issue is the first in the file
            sub = props.get(k)
            for n in ([sub] if sub is not None else []) + [n for rx, n in patterns if rx.search(k)]:
                yield from self.issues(n, v, path + (k,))
            if closed and sub is None and not joined_search(k):
                if extra is False:
                    yield Issue(path + (k,), f"unknown key {short(k)}", "additionalProperties",
                                      partial(hint_for, k, props), at_key=True)
                else:
                    yield from self.issues(extra, v, path + (k,))

    def explain_required(self, required, x: dict, path: tuple) -> Iterator[Issue]:
        """One issue per missing required key."""
        return (Issue(path, f"missing required key {short(r)}", "required") for r in required if r not in x)

    def explain_unique(self, x: list, path: tuple) -> Iterator[Issue]:
        """The first repeated item of a ``uniqueItems`` list."""
        pair = next(((j, i) for i in range(len(x)) for j in range(i) if equal(x[i], x[j])), None)
        detail = f" (item {pair[1]} repeats item {pair[0]})" if pair else ""
        yield Issue(path, f"expected a list of unique items{detail}. Received: {_received(path, x)}", "uniqueItems")

    def explain_property_names(self, names, x: dict, path: tuple) -> Iterator[Issue]:
        """Issues of keys that fail ``propertyNames``, at the key."""
        for k in x:
            sub = self.best(self.issues(names, k, ()))
            if sub is not None:  # its message quotes the key: "Received: '1abc'"
                yield Issue(path + (k,), f"invalid key: {sub.message}", "propertyNames", sub.lazy_hint, at_key=True)

    def explain_items(self, prefix, rest, n_prefix, x: list, path: tuple) -> Iterator[Issue]:
        """Issues of a list's items (``prefixItems``, ``items``), or of its length when ``items`` is false."""
        for i, (n, v) in enumerate(zip(prefix, x)):
            yield from self.issues(n, v, path + (i,))
        if rest is not None and rest.schema is False and len(x) > n_prefix:
            at_most = _count(None, n_prefix, "item")
            yield Issue(path, f"expected a list of {at_most}. Received: {_received(path, x)}", "items")
        elif rest is not None:
            for i in range(n_prefix, len(x)):
                yield from self.issues(rest, x[i], path + (i,))

    def explain_choice(self, owner, kw, branches, keys, x: Any, path: tuple) -> Iterator[Issue]:
        """The issue of a failed ``anyOf``/``oneOf``: from the branch meant, or a summary."""
        matched = [i for i, n in enumerate(branches) if n.valid(x)]
        if not matched:
            yield self._pick(owner, kw, branches, keys, x, path)
        elif len(matched) > 1:
            found = f"found {_listing([keys[i] for i in matched])}" if None not in keys else \
                f"alternatives {_join_or(map(str, matched)).replace(' or ', ' and ')} all match"
            head = owner.xmsg or f"expected exactly one of {self._forms(branches, keys)}; {found}"
            yield Issue(path, f"{head}. Received: {_received(path, x)}", kw)

    def explain_not(self, owner, negated, x: Any, path: tuple) -> Iterator[Issue]:
        """The issue of a value that matches a ``not`` schema."""
        head = owner.xmsg or f"expected anything except {self._describe(negated.schema)}"
        yield Issue(path, f"{head}. Received: {_received(path, x)}", "not")
