"""Text-level helpers for the loader: decoding and byte caps, YAML 1.2 plain scalars, positions."""

from __future__ import annotations

import math
import re

from ..errors import Location, SpecSyntaxError, short

# The whole core schema for null and bool: `yes`, `no`, `on`, `off`, `y`, `n` stay strings.
_KEYWORDS: dict[str, object] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
}
# Explicit ASCII classes: Python's int()/float() also accept `1_000`, spaces and non-ASCII digits,
# which the core schema reads as strings, so a literal must match one of these before conversion.
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_NUMBER_START = frozenset("0123456789+-.")

# YAML line breaks as libyaml counts them, so positions we compute agree with the parser's marks.
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Characters YAML forbids in a stream (the parsers' own check, done once and with a position);
# the class also excludes lone surrogates, which a Python str may hold.
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UTF8_BOM = b"\xef\xbb\xbf"


class ScalarError(ValueError):
    """A plain scalar that reads as a number netspec refuses (non-finite, too many digits)."""


def resolve_plain(text: str, max_int_digits: int) -> object:
    """The value of a plain scalar under the YAML 1.2 core schema.

    Args:
        text: the scalar as the parser delivered it.
        max_int_digits: the longest integer literal accepted, in digits.

    Returns:
        None, a bool, an int, a finite float, or ``text`` itself.

    Raises:
        ScalarError: for `.inf`/`.nan`, floats that overflow, and over-long integer literals.
    """
    if text in _KEYWORDS:
        return _KEYWORDS[text]
    if text[0] not in _NUMBER_START:  # fast path for the common case: names, types, activations
        return text
    if _INT.fullmatch(text):
        return _to_int(text, len(text) - (text[0] in "+-"), 10, max_int_digits)
    if _OCT.fullmatch(text):
        return _to_int(text[2:], len(text) - 2, 8, max_int_digits)
    if _HEX.fullmatch(text):
        return _to_int(text[2:], len(text) - 2, 16, max_int_digits)
    if _FLOAT.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):
            raise ScalarError(f"float {short(text)} is out of range (non-finite floats are not allowed)")
        return value
    if _NON_FINITE.fullmatch(text):
        raise ScalarError(f"non-finite floats are not allowed. Received: {text}")
    return text


def _to_int(digits: str, count: int, base: int, max_int_digits: int) -> int:
    # Checked before int() so a hostile literal costs nothing (int() is quadratic in its length).
    if count > max_int_digits:
        raise ScalarError(f"integer literal has {count} digits, more than the limit of {max_int_digits}")
    return int(digits, base)


def location_at(text: str, index: int, file: str | None) -> Location:
    """The 1-based line and column of character ``index`` of ``text``."""
    line, start = 1, 0
    for match in _BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return Location(file, line, index - start + 1)


def too_large(size: int, max_bytes: int, where: Location, at_least: bool = False) -> SpecSyntaxError:
    """The error for a spec over the size cap."""
    size_text = f"at least {size}" if at_least else str(size)
    return SpecSyntaxError(f"the spec is {size_text} bytes, more than the limit of {max_bytes} bytes",
                           location=where)


def decode_source(source: str | bytes, file: str | None, max_bytes: int) -> str:
    """The text of a spec: size cap, strict UTF-8, BOM removed, only characters YAML allows.

    Args:
        source: the spec as text or bytes.
        file: the file name for locations.
        max_bytes: the size cap, in UTF-8 bytes.

    Returns:
        The text, without a leading byte order mark.

    Raises:
        SpecSyntaxError: too large, not UTF-8, or holding a control character or lone surrogate.
    """
    where = Location(file, 1, 1)
    if isinstance(source, str):
        if len(source) > max_bytes:  # at least that many bytes: no need to encode a huge string
            raise too_large(len(source), max_bytes, where, at_least=True)
        text = source[1:] if source.startswith("\ufeff") else source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes, where)
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise SpecSyntaxError("the spec is UTF-16 or UTF-32 (byte order mark); netspec reads UTF-8 only",
                                  location=where)
        skip = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
        try:
            text = data[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = skip + exc.start
            before = data[skip:offset].decode("utf-8", "replace")
            raise SpecSyntaxError(f"the spec is not valid UTF-8: byte 0x{data[offset]:02x} at offset "
                                  f"{offset}", location=location_at(before, len(before), file)) from None
    else:
        raise SpecSyntaxError(f"expected YAML text or bytes. Received: {type(source).__name__}",
                              location=where)
    bad = _NON_PRINTABLE.search(text)
    if bad:
        raise SpecSyntaxError(f"character U+{ord(bad.group()):04X} is not allowed in a spec",
                              location=location_at(text, bad.start(), file))
    if isinstance(source, str):
        size = len(text.encode("utf-8"))  # safe now: no lone surrogates left
        if size > max_bytes:
            raise too_large(size, max_bytes, where)
    return text
