"""The ``netspec`` command line: parse arguments, run one command, report as text or JSON, exit 0/1/2/3."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import NetspecError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


def quiet_tensorflow() -> None:
    """Import Keras with TensorFlow's C++ start-up chatter kept out of netspec's output.

    TensorFlow logs through absl before any Python setting applies, so the import runs with
    file descriptor 2 pointed at a temporary file, which is replayed only if the import fails.
    ``NETSPEC_TF_LOGS=1`` keeps the logs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules or os.environ.get("NETSPEC_TF_LOGS") == "1":
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.constant(0)  # device start-up logs too
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# -- what commands share ------------------------------------------------------------------------


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``--set name=value`` items as params (values read as YAML scalars or flow collections)."""
    from ..source.loader import load_yaml

    out: dict[str, Any] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"--set expects name=value. Received: {item!r}")
        try:
            out[name] = load_yaml(text, "--set").data if text.strip() else None
        except NetspecError as e:
            raise UsageError(f"--set {name}: {e.message}") from None
    return out


def load_spec(args):
    """The spec named on the command line, with ``--set``, ``--trust-plugins`` and ``--data-root`` applied."""
    from ..spec import load

    return load(args.spec, params=parse_sets(args.set), trust_plugins=args.trust_plugins,
                data_root=getattr(args, "data_root", None))


def budget(args):
    """The parameter and activation budget of ``--max-params`` / ``--max-activation-mb``."""
    from ..build.compiler import DEFAULT_BUDGET, Budget

    return Budget(
        max_params=args.max_params if args.max_params is not None else DEFAULT_BUDGET.max_params,
        max_activation_bytes=(args.max_activation_mb << 20) if args.max_activation_mb is not None
        else DEFAULT_BUDGET.max_activation_bytes,
    )


def emit(args, text: str, data: dict) -> None:
    """Print the result: ``text``, or ``data`` as JSON with ``--format json``."""
    if args.format == "json":
        print(json.dumps(data, indent=1))
    elif text:
        print(text)


def warn(args, warnings: list[str]) -> None:
    """Print warnings to stderr (the JSON result carries its own)."""
    if args.format != "json":
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)


def spec_arguments(p: argparse.ArgumentParser, *, optional: bool = False, help: str = "the spec file (YAML)") -> None:
    """The arguments of every command that reads a spec."""
    p.add_argument("spec", nargs="?" if optional else None, help=help)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
    p.add_argument("--trust-plugins", action="store_true", help="allow the spec's plugins: to run Python code")
    format_argument(p)


def format_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def budget_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-params", type=int, metavar="N", help="parameter budget (default: from the machine's memory, at most 2,000,000,000)")
    p.add_argument("--max-activation-mb", type=int, metavar="MB",
                   help="budget for all node outputs of one sample, in MiB (default: a quarter of memory, at most 4096)")


def data_root_argument(p: argparse.ArgumentParser) -> None:
    """``--data-root DIR``: the one place outside the spec's directory its data paths may lead."""
    p.add_argument("--data-root", metavar="DIR", help="also allow the spec's data paths inside DIR (by default "
                   "they must stay inside the spec's directory)")


def plugins_argument(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--plugins", nargs="+", metavar="MODULE_OR_FILE", default=[], help=help)


# -- the command table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One subcommand: what it does (for ``--help``), its arguments, and the function that runs it."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any], int]


def commands() -> dict[str, Command]:
    from . import commands as c

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
        "plot": Command("draw the graph (types, shapes, params, blocks) as SVG or PNG", c.plot_arguments, c.cmd_plot),
        "import": Command("write a spec from a Keras model (.keras file or keras.applications)",
                          c.import_arguments, c.cmd_import),
        "schema": Command("print the JSON Schema of the spec language", c.schema_arguments, c.cmd_schema),
    }


def make_parser(table: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(prog="netspec", description="A declarative network compiler for Keras.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in (table or commands()).items():
        command.arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    table = commands()
    parser = make_parser(table)
    args = parser.parse_args(argv)
    fmt = getattr(args, "format", "text")
    try:
        return table[args.command].run(args)
    except UsageError as e:
        parser.exit(EXIT_USAGE, f"netspec {args.command}: error: {e}\n")
    except NetspecError as e:
        if fmt == "json":
            print(json.dumps({"ok": False, "error": e.to_dict()}, indent=1))
        else:
            print(str(e), file=sys.stderr)
        return EXIT_SPEC
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print("netspec: internal error; this is a bug in netspec, please report it with the spec that caused it",
              file=sys.stderr)
        return EXIT_BUG


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
