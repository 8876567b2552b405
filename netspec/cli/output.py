"""The one reporter every command prints through: text for people, or one JSON document (``--format json``).

Text meant for a terminal goes through :func:`terminal_safe` here, the one place every command's
output passes: names, versions and metadata read from an artifact are a stranger's bytes, and an ANSI
escape or a carriage return in them must not redraw the user's screen or forge a line.

Results go to standard output. In text mode warnings and errors go to standard error; in JSON mode
the result carries its own warnings and an error is a JSON document ``{"ok": false, "error": ...}``
on standard output, so a script reads one stream.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable

from ..errors import NetspecError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
_KEEP = "\n\t"  # a command's own line structure


def terminal_safe(text: str) -> str:
    """``text`` with every non-printable character but newline and tab escaped as Python writes it
    (``\\x1b``, ``\\r``, ``\\u202e``): ANSI escapes, C1 controls and bidirectional overrides are shown, not obeyed."""
    if all(line.isprintable() for line in text.replace("\t", " ").split("\n")):
        return text
    return "".join(ch if ch in _KEEP or ch.isprintable() else repr(ch)[1:-1] for ch in text)


class Reporter:
    """Prints a command's result, warnings and errors in the format the command line asked for.

    Streams are looked up at each call (not kept), so redirections made after construction apply.
    """

    def __init__(self, format: str = "text") -> None:
        self.json = format == "json"

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Reporter:
        """The reporter for ``--format`` (text for commands that have no such option)."""
        return cls(getattr(args, "format", "text"))

    def result(self, text: str, data: dict[str, Any], *, to_stderr: bool = False) -> None:
        """The result: ``text`` (nothing when empty; on stderr with ``to_stderr``), or ``data`` as JSON."""
        if self.json:
            print(json.dumps(data, indent=1))
        elif text:
            print(terminal_safe(text), file=sys.stderr if to_stderr else sys.stdout)

    def warnings(self, warnings: Iterable[str]) -> None:
        """Warnings, one ``warning: ...`` line each on stderr (the JSON result carries its own)."""
        if not self.json:
            for w in warnings:
                print(terminal_safe(f"warning: {w}"), file=sys.stderr)

    def error(self, error: NetspecError, **extra: Any) -> int:
        """A user-facing error, with ``extra`` fields beside it in JSON; returns the exit code (1)."""
        if self.json:
            print(json.dumps({"ok": False, "error": error.to_dict(), **extra}, indent=1))
        else:
            print(terminal_safe(str(error)), file=sys.stderr)
        return EXIT_SPEC

    def document(self, text: str) -> None:
        """A document the command produces (a spec, the schema), written to stdout as it is."""
        sys.stdout.write(text)
