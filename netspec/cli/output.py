"""The one reporter every command prints through: text for people, or one JSON document (``--format json``).

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
            print(text, file=sys.stderr if to_stderr else sys.stdout)

    def warnings(self, warnings: Iterable[str]) -> None:
        """Warnings, one ``warning: ...`` line each on stderr (the JSON result carries its own)."""
        if not self.json:
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)

    def error(self, error: NetspecError, **extra: Any) -> int:
        """A user-facing error, with ``extra`` fields beside it in JSON; returns the exit code (1)."""
        if self.json:
            print(json.dumps({"ok": False, "error": error.to_dict(), **extra}, indent=1))
        else:
            print(str(error), file=sys.stderr)
        return EXIT_SPEC

    def document(self, text: str) -> None:
        """A document the command produces (a spec, the schema), written to stdout as it is."""
        sys.stdout.write(text)
