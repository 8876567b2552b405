"""Re-check interpolated values against the schema: a ``${...}`` result must be what a literal there must be.

The document's schema pass accepts ``$name``/``${...}`` text wherever a value may go (the ``interp``
def). Once interpolated, the value takes the place of that text, so it is validated again against
the same schema location with interpolation no longer accepted: a strict copy of the schema in which
every ``interp`` alternative is dropped (each def copied on first use). Every section goes through
:func:`check_interpolated`: ``train:`` and ``export:`` (``resolve.resolve_section``), each model input
(``Resolver._model_inputs``), each node's ``input_spec:`` and ``output_shape:`` (:func:`check_nodes`,
and ``inputspec`` at build time for shape-dependent ones), and layer arguments (``Catalog.check_args``).
The error is located at the ``${...}`` that produced the bad value and says what it evaluated to.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import SchemaError, short
from ..graph import DeferredArg
from .issue import Issue
from .schemafile import load_schema
from .validator import Validator

INTERP_REF = {"$ref": "#/$defs/interp"}
# Issues read before ranking: a value made by one ${...} cannot need more to explain it, and an
# interpolated list of a million bad items must not build a million issues.
MAX_ISSUES = 100

_STRICT: dict[int, tuple[dict, dict, Validator]] = {}  # id(schema) -> (schema kept alive, strict copy, validator)


def strict_schema(schema: dict) -> dict:
    """A copy of ``schema`` in which no value may be a ``$param``/``${...}`` text.

    Every ``anyOf``/``oneOf`` alternative that is the ``interp`` def is dropped (so messages name only
    the real types), and the ``interp`` def itself accepts nothing.
    """
    return _strict(schema)[1]


def strict_validator(schema: dict | None = None) -> Validator:
    """The validator of :func:`strict_schema` (default: the committed schema), built once per schema."""
    if schema is None:
        schema = load_schema()
    return _strict(schema)[2]


def _strict(schema: dict) -> tuple[dict, dict, Validator]:
    hit = _STRICT.get(id(schema))
    if hit is None:
        copy = _drop_interp({k: v for k, v in schema.items() if k != "$defs"})
        copy["$defs"] = _StrictDefs(schema.get("$defs", {}))
        hit = _STRICT[id(schema)] = (schema, copy, Validator(copy, scan=False))
    return hit


class _StrictDefs(dict):
    """The strict ``$defs``, each made on first use: a spec touches a few of the hundreds of defs, and
    copying them all would cost validate a tenth of its time."""

    def __init__(self, defs: dict) -> None:
        super().__init__()
        self._defs = defs

    def __contains__(self, key: object) -> bool:
        return key in self._defs

    def __getitem__(self, key: str) -> Any:
        if not super().__contains__(key):
            super().__setitem__(key, False if key == "interp" else _drop_interp(self._defs[key]))
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._defs else default


def _drop_interp(s: Any) -> Any:
    # The schema is a tree of JSON data a few levels deep (refs are strings, not shared objects).
    if isinstance(s, dict):
        out = {}
        for k, v in s.items():
            if k in ("anyOf", "oneOf") and isinstance(v, list):
                kept = [b for b in v if b != INTERP_REF]
                out[k] = [_drop_interp(b) for b in (kept or v)]
            else:
                out[k] = _drop_interp(v)
        return out
    if isinstance(s, list):
        return [_drop_interp(v) for v in s]
    return s


def section_schema(key: str) -> Any:
    """The strict subschema of a top-level key (``train``, ``export``); None if unknown."""
    return strict_validator().schema.get("properties", {}).get(key)


def def_schema(name: str) -> dict:
    """A ``{"$ref": "#/$defs/<name>"}`` schema, for :func:`check_interpolated`."""
    return {"$ref": f"#/$defs/{name}"}


def issues_of(value: Any, schema: Any, path: tuple = (), validator: Validator | None = None) -> tuple[Issue | None, int]:
    """The best strict-schema issue of ``value`` and the number of others (``(None, 0)`` when valid)."""
    validator = validator or strict_validator()
    issues = list(itertools.islice(validator.iter_issues(value, schema, path), MAX_ISSUES))
    if not issues:
        return None, 0
    return validator.best(issues), len(issues) - 1


def check_interpolated(value: Any, raw: Any, path: tuple, source, schema: Any, *, note: str | None = None,
                       validator=None) -> None:
    """Validate an interpolated value against the strict schema of its location.

    Args:
        value: the data at ``path`` with ``$name``/``${...}`` evaluated.
        raw: the data at ``path`` as written (to find the ``${...}`` that made a bad value).
        path: where ``value`` sits in the document.
        source: the document's :class:`~netspec.source.loader.SourceMap`.
        schema: the subschema of that location, e.g. ``def_schema("inputSpec")``.
        note: appended in parentheses (the block instance a node belongs to).
        validator: a strict validator (default: the committed schema's).

    Raises:
        SchemaError: at the ``${...}`` that evaluated to the bad value, saying what it evaluated to.
    """
    if schema is None or raw is value and not _has_interp(raw):
        return
    best, more = issues_of(value, schema, tuple(path), validator)
    if best is None:
        return
    where, written, got, whole = _origin(raw, value, tuple(path), tuple(best.path))
    message = best.message
    if written is not None:
        message = f"{short(written)} evaluated to {short(got)}; {message}"
    if note:
        message += f" ({note})"
    location = source.key(where) if best.at_key and whole else source.value(where)
    raise SchemaError(message, path=tuple(best.path), location=location, hint=best.hint, more=more)


def _origin(raw: Any, value: Any, base: tuple, issue_path: tuple):
    """``(path, text, value, whole)``: the innermost written place on the way to the issue, the ``$`` text
    written there (None when the issue is in literal text), what that text evaluated to, and whether
    that place is the issue's own path."""
    rel = issue_path[len(base):] if issue_path[:len(base)] == base else ()
    here = base
    for step in rel:
        if isinstance(raw, str) and "$" in raw:
            break
        if not (isinstance(raw, dict) and isinstance(value, dict) and step in raw and step in value
                or isinstance(raw, list) and isinstance(value, list) and isinstance(step, int)
                and step < min(len(raw), len(value))):
            return here, None, None, False
        raw, value = raw[step], value[step]
        here = here + (step,)
    if isinstance(raw, str) and "$" in raw:
        return here, raw, value, here == issue_path
    return here, None, None, here == issue_path


def _has_interp(raw: Any) -> bool:
    # Iterative: the loader bounds depth, but this is called on every section, so keep it cheap.
    stack = [raw]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if "$" in x:
                return True
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return False


def check_section(doc, key: str, value: Any) -> None:
    """Re-check an interpolated top-level section (``train``, ``export``).

    Raises:
        SchemaError: see :func:`check_interpolated`.
    """
    data = doc.data if isinstance(doc.data, dict) else {}
    if key not in data or not _has_interp(data[key]):
        return  # the document's own schema pass saw this section as it is
    check_interpolated(value, data[key], (key,), doc.source, section_schema(key))


def check_nodes(doc, graph) -> None:
    """Re-check each node's interpolated ``input_spec:`` and ``output_shape:`` (those not shape-dependent;
    those are checked when built).

    Raises:
        SchemaError: see :func:`check_interpolated`.
    """
    for node in graph.nodes:
        for key, name in (("input_spec", "inputSpec"), ("output_shape", "outputShape")):
            value = getattr(node, key, None)
            if value is None or isinstance(value, DeferredArg):
                continue
            path = node.path + (key,)
            raw = _raw_at(doc.data, path)
            if _has_interp(raw):
                check_interpolated(value, raw, path, doc.source, def_schema(name), note=node.instance_note)


def _raw_at(data: Any, path: tuple) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data
