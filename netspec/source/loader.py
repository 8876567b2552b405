"""Stage 1: read an untrusted YAML spec into plain data and a source map of every key and value."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from ..errors import Location, SpecSyntaxError, short
from .scalars import ScalarError, decode_source, resolve_plain, too_large

__all__ = ["DEFAULT_LIMITS", "Document", "Limits", "SourceMap", "load_path", "load_yaml", "parse_scalar"]

# libyaml only produces events here; its parser is iterative. The crash on deep nesting lives in
# the recursive composer, which we replace (1 MiB of '[' read until the depth cap is clean).
_EVENT_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_CORE_TAG = "tag:yaml.org,2002:"
_MAX_PROBLEM = 200  # PyYAML quotes some user text (tag handles) in its problem strings
_DEPTH_PATH = 8  # path elements reported with a nesting error


@dataclass(frozen=True)
class Limits:
    """Caps that make a hostile spec fail fast instead of exhausting memory, stack or time."""

    max_bytes: int = 1 << 20
    max_depth: int = 100
    max_nodes: int = 1_000_000  # collections + scalars after alias expansion
    # Characters of scalars and keys after alias expansion: without aliases a spec holds fewer than
    # max_bytes, so this only stops a small anchor used many times (a 64 KiB string aliased 240,000
    # times stands for 16 GB of text to validate and interpolate). 4x the file cap.
    max_chars: int = 4 << 20
    max_scalar_chars: int = 65_536
    max_int_digits: int = 100


DEFAULT_LIMITS = Limits()


@dataclass
class SourceMap:
    """Where each key and value of a loaded document was written (1-based lines and columns).

    ``values`` maps a path to ``(line, column, style)``: style is ``''`` for plain scalars and block
    collections, ``"'"``/``'"'`` for quoted, ``'|'``/``'>'`` for block scalars, ``'['``/``'{'`` for
    flow collections and ``'*'`` for aliases. ``keys`` maps the path of a mapping entry to its key.
    """

    file: str | None
    values: dict[tuple, tuple[int, int, str]] = field(default_factory=dict)
    keys: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    # Source text of single-line string scalars, so inside() can point into them.
    _raw: dict[tuple, str] = field(default_factory=dict, repr=False, compare=False)

    def value(self, path: Sequence[str | int]) -> Location:
        """Location of the value at ``path``, else of its longest known prefix, else line 1 col 1."""
        path = tuple(path)
        while True:
            hit = self.values.get(path)
            if hit is not None:
                return Location(self.file, hit[0], hit[1])
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]

    def key(self, path: Sequence[str | int]) -> Location:
        """Location of the key of the mapping entry at ``path`` if known, else ``value(path)``."""
        hit = self.keys.get(tuple(path))
        return Location(self.file, hit[0], hit[1]) if hit else self.value(path)

    def inside(self, path: Sequence[str | int], offset: int) -> Location:
        """Location of character ``offset`` of the string at ``path``, exact where the source allows.

        Exact for single-line plain scalars and single-line quoted scalars without an escape
        before ``offset``; otherwise the location of the value.
        """
        path = tuple(path)
        start, raw = self.value(path), self._raw.get(path)
        if raw is None or offset < 0:
            return start
        style = self.values[path][2]
        if style == "":
            exact = offset <= len(raw)
        else:
            body = raw[1:-1]
            # Escapes ('' in single quotes, backslashes in double) shift columns after them.
            exact = offset <= len(body) and ("'" if style == "'" else "\\") not in body[:offset]
            offset += 1
        return Location(self.file, start.line, start.column + offset) if exact else start


@dataclass
class Document:
    """A loaded spec: its plain data, where everything in it was written, and the decoded text."""

    data: Any  # plain data: dict, list, str, int, float, bool or None
    source: SourceMap
    text: str


def parse_scalar(text: str) -> object:
    """Resolve one plain scalar by the YAML 1.2 core schema (for ``--set key=value``).

    Args:
        text: the scalar, exactly as written (no quotes, no flow collections).

    Returns:
        None, bool, int, finite float or the string itself.

    Raises:
        SpecSyntaxError: for `.inf`/`.nan`, overflowing floats and over-long integers (no location).
    """
    if not isinstance(text, str):
        raise SpecSyntaxError(f"expected a string. Received: {type(text).__name__}")
    if len(text) > DEFAULT_LIMITS.max_scalar_chars:
        raise SpecSyntaxError(f"value is {len(text)} characters, more than the limit of "
                              f"{DEFAULT_LIMITS.max_scalar_chars}")
    try:
        return resolve_plain(text, DEFAULT_LIMITS.max_int_digits)
    except ScalarError as exc:
        raise SpecSyntaxError(str(exc)) from None


def load_path(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read and load a spec file, checking its size before reading it.

    Args:
        path: the file; locations name it exactly as given.
        limits: the caps to enforce.

    Returns:
        The loaded document.

    Raises:
        SpecSyntaxError: the file is missing, a directory, unreadable, too large, or not a valid spec.
    """
    name = os.fsdecode(path)
    where = Location(name, 1, 1)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_bytes:
                raise too_large(size, limits.max_bytes, where)
            # Bounded even when st_size lies (pipes, /proc files, a file growing while we read).
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise SpecSyntaxError(f"no such spec file: {short(name, 200)}", location=where) from None
    except IsADirectoryError:
        raise SpecSyntaxError(f"{short(name, 200)} is a directory, not a spec file", location=where) from None
    except PermissionError:
        raise SpecSyntaxError(f"cannot read {short(name, 200)}: permission denied", location=where) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecSyntaxError(f"cannot read {short(name, 200)}: {short(reason, 100)}",
                              location=where) from exc
    return load_yaml(data, name, limits=limits)


def load_yaml(source: str | bytes, file: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Load one YAML document of plain data with the position of every key and value.

    Args:
        source: the spec text, or its bytes (UTF-8, optionally with a BOM).
        file: the file name used in locations.
        limits: the caps to enforce.

    Returns:
        The document: data of dict/list/str/int/float/bool/None, its source map and its text.

    Raises:
        SpecSyntaxError: for anything that is not a single acceptable YAML document, with a location.
    """
    text = decode_source(source, file, limits.max_bytes)
    return _Composer(text, file, limits).run()


class _Frame:
    """An open collection on the composer's explicit stack."""

    __slots__ = ("obj", "path", "kind", "key", "size", "chars", "anchor")

    def __init__(self, obj, path: tuple, kind: str, anchor: str | None) -> None:
        self.obj, self.path, self.kind, self.anchor = obj, path, kind, anchor
        self.key = None  # for mappings: the key waiting for its value
        self.size = 1  # nodes in this subtree after alias expansion, itself included
        self.chars = 0  # characters of its scalars and keys after alias expansion


class _Composer:
    """Builds data and source map from parser events in one pass, without recursion."""

    def __init__(self, text: str, file: str | None, limits: Limits) -> None:
        self.text, self.file, self.limits = text, file, limits
        self.source = SourceMap(file)
        self.anchors: dict[str, tuple[object, int, int]] = {}  # name -> (node, values, characters)
        self.open_anchors: dict[str, int] = {}  # anchors of collections not yet closed
        self.empty_root = False  # a document with no content at all (`---` alone)

    def run(self) -> Document:
        parser = _EVENT_LOADER(self.text)
        try:
            data = self._compose(parser.get_event)
        except yaml.MarkedYAMLError as exc:
            raise self._from_marked(exc) from None
        except yaml.YAMLError as exc:  # ReaderError and friends (our pre-checks should catch them)
            raise SpecSyntaxError(f"invalid YAML: {short(str(exc), _MAX_PROBLEM)}",
                                  location=Location(self.file, 1, 1)) from None
        finally:
            parser.dispose()
        return Document(data, self.source, self.text)

    def _error(self, message: str, mark, path: tuple = (), hint: str | None = None) -> SpecSyntaxError:
        return SpecSyntaxError(message, path=path, hint=hint,
                               location=Location(self.file, mark.line + 1, mark.column + 1))

    def _compose(self, next_event) -> object:
        # get_event() directly: yaml.parse()'s check_event/get_event generator doubles the cost.
        next_event()  # StreamStartEvent
        start = next_event()
        if not isinstance(start, DocumentStartEvent):
            raise SpecSyntaxError("the spec is empty", location=Location(self.file, 1, 1))
        if start.version is not None and start.version != (1, 2):
            raise self._error(f"YAML {start.version[0]}.{start.version[1]} is not supported; netspec "
                              "reads YAML 1.2 (remove the %YAML directive)", start.start_mark)
        root = _Frame([], (), "root", None)
        stack = [root]
        # Locals for the hot loop: it runs once per event, ~10 per node of a typical spec.
        values, keys, raws, text_all = self.source.values, self.source.keys, self.source._raw, self.text
        anchors, open_anchors = self.anchors, self.open_anchors
        limits = self.limits
        max_nodes, max_chars, max_digits = limits.max_nodes, limits.max_scalar_chars, limits.max_int_digits
        max_total = limits.max_chars
        count = total = 0  # values and characters after alias expansion: one accountant for both
        while True:
            event = next_event()
            cls = event.__class__
            if cls is MappingEndEvent or cls is SequenceEndEvent:
                done = stack.pop()
                stack[-1].size += done.size
                stack[-1].chars += done.chars
                if done.anchor is not None:
                    anchors[done.anchor] = (done.obj, done.size, done.chars)
                    open_anchors[done.anchor] -= 1
                continue
            if cls is DocumentEndEvent or event is None:  # None: the parser ran out (never expected)
                break
            top = stack[-1]
            mark = event.start_mark
            if cls is ScalarEvent:
                if event.tag is not None:
                    raise self._tag_error(event, top)
                text, style = event.value, event.style or ""
                if len(text) > max_chars:
                    raise self._error(f"scalar is {len(text)} characters, more than the limit of {max_chars}",
                                      mark, self._child(top))
                if style:
                    value = text
                else:
                    try:
                        value = resolve_plain(text, max_digits)
                    except ScalarError as exc:
                        raise self._error(str(exc), mark, self._child(top)) from None
                size, chars = 1, len(text)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                if event.tag is not None:
                    raise self._tag_error(event, top)
                if len(stack) > limits.max_depth:
                    # The path of an outer collection: a hundred `[0]`s would bury the message.
                    raise self._error(f"nesting is deeper than the limit of {limits.max_depth} levels",
                                      mark, top.path[:_DEPTH_PATH])
                if cls is MappingStartEvent:
                    value, style = {}, "{" if event.flow_style else ""
                else:
                    value, style = [], "[" if event.flow_style else ""
                size, chars = 1, 0
            elif cls is AliasEvent:
                value, size, chars = self._alias(event, top)
                style = "*"
            else:
                continue
            # An alias counts as the whole subtree it stands for, so expansion bombs stop here.
            count += size
            total += chars
            if count > max_nodes:
                raise self._error(f"the spec expands to more than {max_nodes} values (aliases counted at "
                                  "every use)", mark, self._child(top))
            if total > max_total:
                raise self._error(f"the spec expands to more than {max_total} characters (aliases counted at "
                                  "every use, with the text they stand for)", mark, self._child(top))
            top.size += size
            top.chars += chars
            kind = top.kind
            if kind == "map":
                key = top.key
                if key is None:
                    if value.__class__ is int and top.path[-2:] == ("input_spec", "axes"):
                        value = str(value)  # axis numbers: YAML reads `-1:` as an int; the schema takes "-1"
                    if value.__class__ is not str or value in top.obj or value == "<<":
                        self._bad_key(top, value, event)  # raises, unless `<<` was quoted
                    keys[top.path + (value,)] = (mark.line + 1, mark.column + 1)
                    top.key = value
                    if cls is ScalarEvent and event.anchor is not None:
                        anchors[event.anchor] = (value, 1, chars)
                    continue
                path = top.path + (key,)
                top.obj[key] = value
                top.key = None
            elif kind == "seq":
                path = top.path + (len(top.obj),)
                top.obj.append(value)
            else:
                path = ()
                top.obj.append(value)
                self.empty_root = cls is ScalarEvent and event.value == "" and not style and not event.anchor
            values[path] = (mark.line + 1, mark.column + 1, style)
            if cls is ScalarEvent:
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1, chars)
                if value.__class__ is str and mark.line == event.end_mark.line:
                    raws[path] = text_all[mark.index:event.end_mark.index]
            elif cls is not AliasEvent:
                stack.append(_Frame(value, path, "map" if cls is MappingStartEvent else "seq", event.anchor))
                if event.anchor is not None:
                    open_anchors[event.anchor] = open_anchors.get(event.anchor, 0) + 1
        extra = next_event()
        if isinstance(extra, DocumentStartEvent):
            raise self._error("a spec file holds one YAML document; found a second one", extra.start_mark,
                              hint="remove the '---' line and what follows, or split the file")
        if self.empty_root:
            raise SpecSyntaxError("the spec is empty", location=Location(self.file, 1, 1))
        return root.obj[0]

    def _bad_key(self, top: _Frame, key: object, event) -> None:
        """Raise the error for a key that is not a string, a merge key or a duplicate."""
        mark = event.start_mark
        if key.__class__ is not str:
            if isinstance(event, AliasEvent):
                received = f"an alias to {type(key).__name__}"
            else:
                received = "a collection" if isinstance(key, (dict, list)) else short(key)
            raise self._error(f"keys must be strings. Received: {received}", mark, top.path,
                              hint="quote the key to make it a string")
        if key == "<<" and isinstance(event, ScalarEvent) and not event.style:
            raise self._error("merge keys (<<) are not allowed", mark, top.path,
                              hint="repeat the keys, or define a block and use it twice")
        path = top.path + (key,)
        if key in top.obj:
            first = self.source.keys[path][0]
            raise self._error(f"duplicate key {short(key)} (first defined at line {first})", mark, path)

    def _alias(self, event, top: _Frame) -> tuple[object, int, int]:
        """The node an alias stands for, and its values and characters after expansion."""
        name = event.anchor
        if self.open_anchors.get(name):
            raise self._error(f"alias *{_clip(name)} refers to a collection that contains it",
                              event.start_mark, self._child(top))
        if name not in self.anchors:
            raise self._error(f"alias *{_clip(name)} has no anchor &{_clip(name)} before it",
                              event.start_mark, self._child(top))
        return self.anchors[name]

    @staticmethod
    def _child(top: _Frame) -> tuple:
        """The path the next value in ``top`` will have (for error reports)."""
        if top.kind == "map":
            return top.path + (top.key,) if top.key is not None else top.path
        return top.path + (len(top.obj),) if top.kind == "seq" else ()

    def _tag_error(self, event, top: _Frame) -> SpecSyntaxError:
        tag = event.tag
        tag = "!!" + tag[len(_CORE_TAG):] if tag.startswith(_CORE_TAG) else tag
        return self._error(f"tags are not allowed. Received: {short(tag)}", event.start_mark,
                           self._child(top), hint="a spec holds only plain data: null, booleans, "
                           "numbers, strings, lists and mappings")

    def _from_marked(self, exc: yaml.MarkedYAMLError) -> SpecSyntaxError:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = None
        if "cannot start any token" in problem and mark is not None and mark.index < len(self.text):
            char = self.text[mark.index]
            problem = f"found character {short(char)} that cannot start any token"
            hint = "indent with spaces; YAML does not allow tabs there" if char == "\t" else None
        if "maximum nesting depth" in problem:
            # libyaml (PyYAML >= 6.0.3) caps flow nesting itself while it scans ahead for simple
            # keys, before our composer sees the events: report it as our own cap.
            problem = f"nesting is deeper than the limit of {self.limits.max_depth} levels"
        message = _clip(problem, _MAX_PROBLEM)
        cmark = exc.context_mark
        # mark is never None when cmark is set (mark falls back to it); the test says so to the checker.
        if exc.context and exc.problem and cmark is not None and mark is not None and (
                cmark.line, cmark.column) != (mark.line, mark.column):
            message += f" ({_clip(exc.context, 80)} at line {cmark.line + 1}, column {cmark.column + 1})"
        if mark is None:
            return SpecSyntaxError(message, location=Location(self.file, 1, 1), hint=hint)
        return self._error(message, mark, hint=hint)


def _clip(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters, for names quoted in messages without repr quotes."""
    return text if len(text) <= limit else text[:limit] + "..."
