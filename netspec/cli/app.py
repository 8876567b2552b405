"""The ``netspec`` command line: the parser and command table; run one command, exit 0/1/2/3.

Commands print their results through :class:`.output.Reporter` (text or ``--format json``); the
errors they raise are printed here, the same way for every command.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import NetspecError
from . import commands as c
from . import deploycmds as d
from .options import UsageError
from .output import EXIT_BUG, EXIT_USAGE, Reporter


@dataclass(frozen=True)
class Command:
    """One subcommand: what it does (for ``--help``), its arguments, and the function that runs it."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    intermixed: bool = False  # options may come between its positionals (``predict M a.png --top-k 3 b.png``)


def commands() -> dict[str, Command]:
    """The subcommands in ``--help`` order."""
    return {
        "validate": Command("check a spec against the schema and resolve it (no TensorFlow)",
                            c.validate_arguments, c.cmd_validate),
        "check": Command("infer every node's shape: a table of nodes, shapes, params and lines",
                         c.check_arguments, c.cmd_check),
        "build": Command("compile the spec into a Keras model file (.keras)", c.build_arguments, c.cmd_build),
        "train": Command("train the model as the spec's train: section says, in a resumable run directory",
                         c.train_arguments, c.cmd_train),
        "export": Command("export to ONNX or LiteRT for a target, verified against Keras",
                          c.export_arguments, c.cmd_export),
        "predict": Command("run an exported model (or a spec, .keras) on images, arrays or CSV rows: top-k labels",
                           d.predict_arguments, d.cmd_predict, intermixed=True),
        "evaluate": Command("the spec's metrics for several artifacts side by side on held-out data",
                            d.evaluate_arguments, d.cmd_evaluate),
        "plot": Command("draw the graph (types, shapes, params, blocks) as SVG or PNG", c.plot_arguments, c.cmd_plot),
        "import": Command("write a spec from a Keras model (.keras file or keras.applications)",
                          c.import_arguments, c.cmd_import),
        "inspect": Command("show what an exported file carries: version, spec hash, target, shapes, contract, gate",
                           c.inspect_arguments, c.cmd_inspect),
        "schema": Command("print the JSON Schema of the spec language", c.schema_arguments, c.cmd_schema),
    }


def make_parser(table: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    """The argument parser: ``--version`` and one subparser per command of ``table``."""
    from ..version import __version__

    parser = argparse.ArgumentParser(prog="netspec", description="A declarative network compiler for Keras.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in (table or commands()).items():
        command.arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def parse(parser: argparse.ArgumentParser, table: dict[str, Command], argv: list[str]) -> argparse.Namespace:
    """The arguments; a command marked ``intermixed`` is parsed by its own parser's ``parse_intermixed_args``
    (argparse stops a ``nargs="+"`` positional at the first option and cannot resume it after)."""
    args, rest = parser.parse_known_args(argv)
    if rest and table[args.command].intermixed:
        command = table[args.command]
        sub = argparse.ArgumentParser(prog=f"{parser.prog} {args.command}", description=command.help)
        command.arguments(sub)
        at = argv.index(args.command)  # the first positional: the top level has only --version and -h
        return sub.parse_intermixed_args(argv[at + 1:], argparse.Namespace(command=args.command))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    table = commands()
    parser = make_parser(table)
    args = parse(parser, table, list(sys.argv[1:] if argv is None else argv))
    try:
        return table[args.command].run(args)
    except UsageError as e:
        parser.exit(EXIT_USAGE, f"netspec {args.command}: error: {e}\n")
    except NetspecError as e:
        return Reporter.for_args(args).error(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `netspec inspect m.onnx | head`: the reader left; say nothing, as Unix tools do
        return _pipe_closed()
    except OSError as e:
        if e.errno not in _NO_ROOM:
            raise
        return _no_room(e)
    except Exception:
        traceback.print_exc()
        print("netspec: internal error; this is a bug in netspec, please report it with the spec that caused it",
              file=sys.stderr)
        return EXIT_BUG


def _no_room(e: OSError) -> int:
    """A full disk or quota, or an I/O error, writing a file or standard output (`> /dev/full`)."""
    where = e.filename if e.filename else "standard output"
    try:
        print(f"netspec: cannot write {where}: {e.strerror or type(e).__name__}", file=sys.stderr)
    except OSError:
        pass
    return 1


_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EIO)
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool the closed pipe stopped


def _pipe_closed() -> int:
    """Standard output's reader is gone: point stdout at /dev/null so the interpreter's final flush of what
    is still buffered cannot raise a second BrokenPipeError (and its "Exception ignored" lines)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def run() -> None:
    """Console-script entry point (``python -m netspec`` too): EPIPE while flushing the last output
    ends the command quietly, as it does inside :func:`main`."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _pipe_closed()
    except OSError as e:
        if e.errno not in _NO_ROOM:
            raise
        code = _no_room(e)
        with contextlib.suppress(OSError, ValueError):  # the interpreter's last flush must not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
