"""The ``netspec`` command line: parse arguments, run one stage, report as text or JSON, exit 0/1/2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any, Callable, Sequence

from .errors import NetspecError

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


def _parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    from .loader import load_yaml

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


def _load(args):
    from .spec import load

    return load(args.spec, params=_parse_sets(args.set), trust_plugins=args.trust_plugins)


def _budget(args):
    from .compile import DEFAULT_BUDGET, Budget

    return Budget(
        max_params=args.max_params if args.max_params is not None else DEFAULT_BUDGET.max_params,
        max_activation_bytes=(args.max_activation_mb << 20) if args.max_activation_mb is not None
        else DEFAULT_BUDGET.max_activation_bytes,
    )


def _emit(args, text: str, data: dict) -> None:
    if args.format == "json":
        print(json.dumps(data, indent=1))
    else:
        print(text)


def _warn(args, warnings: list[str]) -> None:
    if args.format != "json":
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)


# -- commands -------------------------------------------------------------------------------


def cmd_validate(args) -> int:
    from .graph import DeferredArg

    spec = _load(args)
    if spec.data.get("train") is not None:
        from .trainconfig import train_config

        train_config(spec)  # names, output keys, monitors, data files: still no TensorFlow
    g = spec.graph
    deferred = sum(isinstance(v, DeferredArg) for n in g.nodes for v in n.args.values())
    _warn(args, spec.warnings)
    text = (f"{args.spec}: ok ({g.name}: {len(g.inputs)} input{'s' * (len(g.inputs) != 1)}, "
            f"{len(g.nodes)} layers, {len(g.outputs)} output{'s' * (len(g.outputs) != 1)}"
            + (f"; {deferred} value{'s' * (deferred != 1)} wait for shape inference" if deferred else "") + ")")
    _emit(args, text, {"ok": True, "file": str(args.spec), "name": g.name, "inputs": len(g.inputs),
                       "layers": len(g.nodes), "outputs": [n for n, _ in g.outputs], "deferred": deferred,
                       "warnings": spec.warnings})
    return EXIT_OK


def cmd_check(args) -> int:
    quiet_tensorflow()
    spec = _load(args)
    result = spec.check(_budget(args))
    _warn(args, result.warnings)
    _emit(args, result.table(), {"ok": True, "file": str(args.spec), **result.to_dict()})
    return EXIT_OK


def cmd_build(args) -> int:
    quiet_tensorflow()
    from .saving import save_model

    spec = _load(args)
    out = args.output or f"{spec.name}.keras"
    if not out.endswith(".keras"):
        raise UsageError(f"-o must name a .keras file. Received: {out!r}")
    model = spec.build(_budget(args))
    save_model(model, out)
    _warn(args, spec.warnings)
    _emit(args, f"wrote {out} ({model.count_params():,} params)",
          {"ok": True, "file": str(args.spec), "output": out, "params": model.count_params()})
    return EXIT_OK


def cmd_train(args) -> int:
    spec = _load(args)
    from .trainconfig import train_config

    config = train_config(spec)  # every section error before TensorFlow starts
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1. Received: {args.epochs}")
    if config.distribute == "multi_worker":
        from .distribute import start_strategy

        start_strategy()  # before any TensorFlow op
    quiet_tensorflow()
    from .train import train

    result = train(spec, epochs=args.epochs, resume=args.resume, run_dir=args.run_dir,
                   verbose=0 if args.format == "json" else "auto", check_only=args.check_data)
    if result is None:
        _emit(args, f"{args.spec}: the data fits the model", {"ok": True, "file": str(args.spec)})
        return EXIT_OK
    if args.format == "json":
        _emit(args, "", {"ok": True, "file": str(args.spec), "run_dir": str(result.run_dir),
                         "best_model": str(result.best_model), "epochs": result.epochs_done,
                         "monitor": result.monitor, "best": result.best, "best_epoch": result.best_epoch})
    return EXIT_OK


def cmd_schema(args) -> int:
    from .catalog import load_schema, schema_path

    if not args.plugins:
        sys.stdout.write(schema_path().read_text(encoding="utf-8"))
        return EXIT_OK
    quiet_tensorflow()
    from . import registry
    from .plugins import load_plugin_targets
    from .schemagen import render, with_user_layers

    # Naming plugins on this command line is the user's own choice to run them.
    load_plugin_targets(args.plugins)
    sys.stdout.write(render(with_user_layers(load_schema(), registry.LAYERS)))
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[[Any], int], str]] = {
    "validate": (cmd_validate, "check a spec against the schema and resolve it (no TensorFlow)"),
    "check": (cmd_check, "infer every node's shape: a table of nodes, shapes, params and lines"),
    "build": (cmd_build, "compile the spec into a Keras model file (.keras)"),
    "train": (cmd_train, "train the model as the spec's train: section says, in a resumable run directory"),
    "schema": (cmd_schema, "print the JSON Schema of the spec language"),
}


def make_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="netspec", description="A declarative network compiler for Keras.")
    parser.add_argument("--version", action="version", version=f"netspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "schema":
            p.add_argument("--plugins", nargs="+", metavar="MODULE_OR_FILE", default=[],
                           help="import these modules or .py files and add their registered layers")
            continue
        p.add_argument("spec", help="the spec file (YAML)")
        p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
        p.add_argument("--trust-plugins", action="store_true", help="allow the spec's plugins: to run Python code")
        p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
        if name in ("check", "build"):
            p.add_argument("--max-params", type=int, metavar="N", help="parameter budget (default 2,000,000,000)")
            p.add_argument("--max-activation-mb", type=int, metavar="MB",
                           help="budget for all node outputs of one sample, in MiB (default 4096)")
        if name == "build":
            p.add_argument("-o", "--output", help="the .keras file to write (default: <name>.keras)")
        if name == "train":
            p.add_argument("--epochs", type=int, metavar="N", help="total epochs (overrides train.epochs)")
            p.add_argument("--resume", action="store_true", help="continue the run in the run directory "
                           "from its last checkpoint")
            p.add_argument("--run-dir", metavar="DIR", help="the run directory (default: runs/<spec name>)")
            p.add_argument("--check-data", action="store_true",
                           help="check the data against the model, then stop without training")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    fmt = getattr(args, "format", "text")
    try:
        return COMMANDS[args.command][0](args)
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
