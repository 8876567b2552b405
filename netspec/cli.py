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
    if getattr(args, "target", None):
        return _validate_target(args, spec)
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


def _validate_target(args, spec) -> int:
    from . import compat
    from .targets import get_target, spec_targets

    spec_targets(spec)  # every export: entry is checked, not only the one asked for
    target = get_target(args.target, spec)
    findings = compat.check(spec, target.format)
    refused = sum(f.action == "refused" for f in findings)
    _warn(args, spec.warnings)
    if args.format == "json":
        print(json.dumps({"ok": not refused, "file": str(args.spec), "target": target.to_dict(),
                          "findings": [f.to_dict() for f in findings]}, indent=1))
    else:
        print(compat.summary(findings, target.name), file=sys.stderr if refused else sys.stdout)
    return EXIT_SPEC if refused else EXIT_OK


def cmd_export(args) -> int:
    from .targets import describe_targets, get_target, with_overrides

    spec = _load(args) if args.spec and not _is_model_file(args.spec) else None
    if args.list_targets:
        from .targets import all_targets

        if args.format == "json":
            print(json.dumps({"targets": [t.to_dict() for t in all_targets(spec).values()]}, indent=1))
        else:
            print(describe_targets(spec))
        return EXIT_OK
    if not args.spec:
        raise UsageError("export needs a spec or a .keras file (or --list-targets)")
    if not args.target:
        raise UsageError("export needs --target NAME (see --list-targets)")
    if args.weights and spec is None:
        raise UsageError("--weights applies to a spec; a .keras file has its own weights")
    batch = "keep" if args.batch_size is None else (None if args.batch_size == "dynamic" else _batch(args.batch_size))
    target = with_overrides(get_target(args.target, spec), opset=args.opset, batch_size=batch)
    name = spec.name if spec is not None else os.path.splitext(os.path.basename(args.spec))[0]
    out = args.output or f"{name}-{target.name}{target.suffix}"
    if not out.endswith(target.suffix):
        raise UsageError(f"target {target.name!r} writes {target.suffix} files. Received: -o {out}")
    quiet_tensorflow()
    from .export import GateError, export

    # The spec's training data calibrates int8 and measures held-out accuracy once netspec.data exists.
    try:
        from .data import load_arrays
    except ImportError:
        load_arrays = None
    try:
        report = export(spec if spec is not None else args.spec, target, out, weights=args.weights,
                        load_arrays=load_arrays, latency=not args.no_latency)
    except GateError as e:
        if args.format == "json":
            print(json.dumps({"ok": False, "error": e.to_dict(), "report": e.report.to_dict()}, indent=1))
        else:
            print(str(e), file=sys.stderr)
        return EXIT_SPEC
    _warn(args, spec.warnings if spec is not None else [])
    _emit(args, report.text(), report.to_dict())
    return EXIT_OK


def _is_model_file(path: str) -> bool:
    return path.endswith(".keras")


def _batch(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--batch-size expects a positive integer or 'dynamic'. Received: {text!r}")
    return int(text)


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


def cmd_import(args) -> int:
    quiet_tensorflow()
    import os

    from .catalog import schema_path
    from .importcheck import ImportVerifyError, compare
    from .importer import import_model, keras_app, load_keras_file
    from .plugins import load_plugin_targets
    from .saving import atomic_path

    if bool(args.model) == bool(args.keras_app):
        raise UsageError("give a MODEL.keras file or --keras-app NAME (one of them)")
    if args.plugins:  # naming plugins on this command line is the user's own choice to run them
        load_plugin_targets(args.plugins)
    source = keras_app(args.keras_app) if args.keras_app else load_keras_file(args.model)
    out = args.output
    if out is not None and not out.endswith((".yaml", ".yml")):
        raise UsageError(f"-o must name a .yaml file. Received: {out!r}")
    ref = os.path.relpath(schema_path(), os.path.dirname(os.path.abspath(out))) if out else None
    base = os.path.dirname(os.path.abspath(out)) if out else os.getcwd()
    plugins = [os.path.relpath(os.path.abspath(p), base) if p.endswith(".py") else p for p in args.plugins]
    result = import_model(source, name=args.name, fold_blocks=not args.flat, schema_ref=ref, plugins=plugins)
    check = compare(source.model, result) if not args.no_verify else None
    if check is not None and not check.ok:
        raise ImportVerifyError(f"the imported spec does not rebuild the model: {check.summary()}")
    if out is None:
        sys.stdout.write(result.text)
    else:
        with atomic_path(out) as tmp:
            tmp.write_text(result.text, encoding="utf-8")
    blocks = ", ".join(f"{name} x{n}" for name, n in result.blocks.items())
    text = (f"{'wrote ' + out if out else 'imported'} ({result.name}: {result.layers} layers in "
            f"{result.lines} lines" + (f"; blocks: {blocks}" if blocks else "") + ")"
            + (f"\nverified: {check.summary()}" if check is not None else ""))
    if args.format == "json":
        print(json.dumps({"ok": True, "output": out, "name": result.name, "layers": result.layers,
                          "lines": result.lines, "blocks": result.blocks,
                          "verified": check.ok if check is not None else None,
                          "params": check.spec_params if check is not None else None}, indent=1))
    elif out is not None:
        print(text)
    else:
        print(text, file=sys.stderr)
    return EXIT_OK


def cmd_plot(args) -> int:
    quiet_tensorflow()
    from .plot import render_file

    spec = _load(args)
    out = args.output or f"{spec.name}.svg"
    if not out.endswith((".svg", ".png")):
        raise UsageError(f"-o must name a .svg or .png file. Received: {out!r}")
    result = spec.check(_budget(args))
    info = render_file(spec, result, out)
    _warn(args, result.warnings)
    _emit(args, f"wrote {out} ({info})", {"ok": True, "file": str(args.spec), "output": out})
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[[Any], int], str]] = {
    "validate": (cmd_validate, "check a spec against the schema and resolve it (no TensorFlow)"),
    "check": (cmd_check, "infer every node's shape: a table of nodes, shapes, params and lines"),
    "build": (cmd_build, "compile the spec into a Keras model file (.keras)"),
    "schema": (cmd_schema, "print the JSON Schema of the spec language"),
    "export": (cmd_export, "export to ONNX or LiteRT for a target, verified against Keras"),
    "plot": (cmd_plot, "draw the graph (types, shapes, params, blocks) as SVG or PNG"),
    "import": (cmd_import, "write a spec from a Keras model (.keras file or keras.applications)"),
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
        if name == "import":  # takes a model, not a spec
            p.add_argument("model", nargs="?", help="the .keras file (loaded with safe_mode=True)")
            p.add_argument("--keras-app", metavar="NAME", help="a keras.applications model, built with weights=None")
            p.add_argument("-o", "--output", help="the spec file to write (default: standard output)")
            p.add_argument("--name", help="the spec's name (default: the model's)")
            p.add_argument("--flat", action="store_true", help="one node per layer: do not fold blocks")
            p.add_argument("--no-verify", action="store_true",
                           help="skip compiling the spec back and comparing it with the model")
            p.add_argument("--plugins", nargs="+", metavar="MODULE_OR_FILE", default=[],
                           help="import these modules or .py files first (user layer classes)")
            p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
            continue
        if name == "export":
            p.add_argument("spec", nargs="?", help="the spec file (YAML), or a .keras model file")
        else:
            p.add_argument("spec", help="the spec file (YAML)")
        p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a param (repeatable)")
        p.add_argument("--trust-plugins", action="store_true", help="allow the spec's plugins: to run Python code")
        p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
        if name in ("check", "build", "plot"):
            p.add_argument("--max-params", type=int, metavar="N", help="parameter budget (default 2,000,000,000)")
            p.add_argument("--max-activation-mb", type=int, metavar="MB",
                           help="budget for all node outputs of one sample, in MiB (default 4096)")
        if name == "build":
            p.add_argument("-o", "--output", help="the .keras file to write (default: <name>.keras)")
        if name == "validate":
            p.add_argument("--target", metavar="NAME", help="also report what this export target refuses or rewrites")
        if name == "export":
            p.add_argument("--target", metavar="NAME", help="an export: target of the spec, or a built-in profile")
            p.add_argument("-o", "--output", help="the file to write (default: <name>-<target>.onnx/.tflite)")
            p.add_argument("--weights", metavar="FILE", help="trained weights (.keras or .weights.h5) for the spec's model")
            p.add_argument("--opset", type=int, help="ONNX opset, 13-18 (default: the target's, else 17)")
            p.add_argument("--batch-size", metavar="N|dynamic", help="a fixed batch size, or 'dynamic'")
            p.add_argument("--list-targets", action="store_true", help="list the built-in and the spec's targets")
            p.add_argument("--no-latency", action="store_true", help="skip the latency measurement in the report")
        if name == "plot":
            p.add_argument("-o", "--output", help="the .svg or .png file to write (default: <name>.svg)")
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
