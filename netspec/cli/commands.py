"""The ``netspec`` subcommands: each has an ``*_arguments`` function and a ``cmd_*`` function (see main.py).

A ``cmd_*`` function takes the parsed arguments, prints its result through one :class:`.output.Reporter`
and returns the exit code; user errors are raised (``NetspecError``, ``UsageError``) and printed by
:func:`.main.main`.
"""

from __future__ import annotations

import os
from argparse import ArgumentParser, BooleanOptionalAction, Namespace
from typing import TYPE_CHECKING, cast

from .options import (
    KERAS_FILE_PLUGINS,
    UsageError,
    budget,
    budget_arguments,
    data_root_argument,
    format_argument,
    load_spec,
    load_named_plugins,
    output_path,
    plugins_argument,
    quiet_tensorflow,
    spec_arguments,
)
from .output import EXIT_OK, EXIT_SPEC, Reporter

if TYPE_CHECKING:
    from ..export.pipeline import LoadArrays
    from ..spec import Spec

# -- validate -----------------------------------------------------------------------------------


def validate_arguments(p: ArgumentParser) -> None:
    spec_arguments(p)
    data_root_argument(p)
    p.add_argument("--target", metavar="NAME", help="also report what this export target refuses or rewrites")


def cmd_validate(args: Namespace) -> int:
    """``netspec validate``: the schema, the graph and the train:/export: sections, without TensorFlow."""
    from ..graph import DeferredArg

    report = Reporter.for_args(args)
    spec = load_spec(args)
    spec.validate()  # the train: and export: sections, data files included; still no TensorFlow
    if args.target:
        return _validate_target(args, spec, report)
    g = spec.graph
    deferred = sum(isinstance(v, DeferredArg) for n in g.nodes for v in n.args.values())
    report.warnings(spec.warnings)
    text = (f"{args.spec}: ok ({g.name}: {len(g.inputs)} input{'s' * (len(g.inputs) != 1)}, "
            f"{len(g.nodes)} layers, {len(g.outputs)} output{'s' * (len(g.outputs) != 1)}"
            + (f"; {deferred} value{'s' * (deferred != 1)} wait for shape inference" if deferred else "") + ")")
    report.result(text, {"ok": True, "file": str(args.spec), "name": g.name, "inputs": len(g.inputs),
                         "layers": len(g.nodes), "outputs": [n for n, _ in g.outputs], "deferred": deferred,
                         "warnings": spec.warnings})
    return EXIT_OK


def _validate_target(args: Namespace, spec: Spec, report: Reporter) -> int:
    from ..export import compat
    from ..export.targets import get_target, spec_targets

    spec_targets(spec)  # every export: entry is checked, not only the one asked for
    target = get_target(args.target, spec)
    findings = compat.check(spec, target.format)
    refused = sum(f.action == "refused" for f in findings)
    report.warnings(spec.warnings)
    report.result(compat.summary(findings, target.name),
                  {"ok": not refused, "file": str(args.spec), "target": target.to_dict(),
                   "findings": [f.to_dict() for f in findings]}, to_stderr=bool(refused))
    return EXIT_SPEC if refused else EXIT_OK


# -- check, build, plot ---------------------------------------------------------------------------


def check_arguments(p: ArgumentParser) -> None:
    spec_arguments(p)
    data_root_argument(p)
    budget_arguments(p)
    p.add_argument("--no-run", action="store_true",
                   help="skip calling the built model once on a generated batch of the declared shapes (one "
                        "forward pass within the activation budget: about 0.6 s and 130 MB for ResNet-50 "
                        "on 2 cores); for very large models")


def cmd_check(args: Namespace) -> int:
    """``netspec check``: every node's shape, parameters and line, inferred by Keras."""
    report = Reporter.for_args(args)
    quiet_tensorflow()
    spec = load_spec(args)
    result = spec.check(budget(args), run=not args.no_run)
    report.warnings(result.warnings)
    report.result(result.table(), {"ok": True, "file": str(args.spec), **result.to_dict()})
    return EXIT_OK


def build_arguments(p: ArgumentParser) -> None:
    spec_arguments(p)
    budget_arguments(p)
    p.add_argument("-o", "--output", help="the .keras file to write (default: <name>.keras)")


def cmd_build(args: Namespace) -> int:
    """``netspec build``: compile the spec and save the Keras model."""
    report = Reporter.for_args(args)
    quiet_tensorflow()
    from ..build.saving import save_model

    spec = load_spec(args)
    out = output_path(args, f"{spec.name}.keras", (".keras",), "a .keras")
    model = spec.build(budget(args))
    save_model(model, out, spec.metadata())
    report.warnings(spec.warnings)
    report.result(f"wrote {out} ({model.count_params():,} params)",
                  {"ok": True, "file": str(args.spec), "output": out, "params": model.count_params()})
    return EXIT_OK


def plot_arguments(p: ArgumentParser) -> None:
    spec_arguments(p)
    budget_arguments(p)
    p.add_argument("-o", "--output", help="the .svg or .png file to write (default: <name>.svg)")


def cmd_plot(args: Namespace) -> int:
    """``netspec plot``: draw the checked graph as SVG or PNG."""
    from ..plot.render import check_size, render_file

    report = Reporter.for_args(args)
    spec = load_spec(args)
    out = output_path(args, f"{spec.name}.svg", (".svg", ".png"), "a .svg or .png")
    check_size(spec)  # before TensorFlow and check(): a graph over plot's bound costs no build
    quiet_tensorflow()
    result = spec.check(budget(args), run=False)  # a picture needs shapes, not a run
    info = render_file(spec, result, out)
    report.warnings(result.warnings)
    report.result(f"wrote {out} ({info})", {"ok": True, "file": str(args.spec), "output": out})
    return EXIT_OK


# -- train ----------------------------------------------------------------------------------------


def train_arguments(p: ArgumentParser) -> None:
    spec_arguments(p)
    data_root_argument(p)
    p.add_argument("--epochs", type=int, metavar="N", help="total epochs (overrides train.epochs)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory "
                   "from its last checkpoint")
    p.add_argument("--run-dir", metavar="DIR", help="the run directory (default: runs/<spec name>)")
    p.add_argument("--check-data", action="store_true",
                   help="check the data against the model, then stop without training")


def cmd_train(args: Namespace) -> int:
    """``netspec train``: every section and data error first, then the fit (Keras prints its progress)."""
    report = Reporter.for_args(args)
    spec = load_spec(args)
    from ..train.config import train_config

    config = train_config(spec)  # every section error before TensorFlow starts
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1. Received: {args.epochs}")
    from ..train.data import read_split

    data = read_split(spec, config)  # and every data error (numpy only)
    if config.distribute == "multi_worker":
        from ..train.distribute import start_strategy

        start_strategy()  # before any TensorFlow op
    quiet_tensorflow()
    from ..train.fit import train

    result = train(spec, epochs=args.epochs, resume=args.resume, run_dir=args.run_dir,
                   verbose=0 if report.json else "auto", check_only=args.check_data, data=data)
    if result is None:
        report.result(f"{args.spec}: the data fits the model", {"ok": True, "file": str(args.spec)})
        return EXIT_OK
    # In text mode Keras's progress and the run directory's messages are the output.
    report.result("", {"ok": True, "file": str(args.spec), "run_dir": str(result.run_dir),
                       "best_model": str(result.best_model), "epochs": result.epochs_done,
                       "monitor": result.monitor, "best": result.best, "best_epoch": result.best_epoch})
    return EXIT_OK


# -- export ---------------------------------------------------------------------------------------


def export_arguments(p: ArgumentParser) -> None:
    spec_arguments(p, optional=True, help="the spec file (YAML), or a .keras model file")
    data_root_argument(p)
    p.add_argument("--target", metavar="NAME", help="an export: target of the spec, or a built-in profile")
    p.add_argument("-o", "--output", help="the file to write (default: <name>-<target>.onnx/.tflite)")
    p.add_argument("--weights", metavar="FILE", help="trained weights (.keras or .weights.h5) for the spec's model")
    p.add_argument("--opset", type=int, help="ONNX opset, 13-18 (default: the target's, else 17)")
    p.add_argument("--batch-size", metavar="N|dynamic", help="a fixed batch size, or 'dynamic'")
    p.add_argument("--input-shape", metavar="[INPUT=]D,D,...", action="append", default=[],
                   help="fix an input's dimensions (without batch) in the exported file and prove the export "
                        "at that shape: 224,224,3 for a model with one input, image=224,224,3 per input "
                        "(repeat the option); overrides the target's input_shape")
    p.add_argument("--calibration", metavar="METHOD", help="int8 calibration: minmax, entropy or percentile "
                   "(ONNX int8 targets)")
    p.add_argument("--per-channel", action=BooleanOptionalAction, default=None,
                   help="int8 weights per output channel (default) or per tensor (ONNX int8 targets)")
    p.add_argument("--keep-float", metavar="NODE", action="append",
                   help="leave a spec node in float in an int8 export (repeat, or comma-separated)")
    p.add_argument("--include-preprocess", action="store_true", default=None,
                   help="fold the inputs' preprocess: (cast, rescale, mean/std) into the exported model, which "
                        "then takes raw inputs (uint8 images)")
    p.add_argument("--list-targets", action="store_true", help="list the built-in and the spec's targets")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement in the report")
    plugins_argument(p, KERAS_FILE_PLUGINS)


def cmd_export(args: Namespace) -> int:
    """``netspec export``: convert for a target and verify against Keras (or list the targets)."""
    from ..export.targets import all_targets, describe_targets, get_target, with_overrides

    report = Reporter.for_args(args)
    spec = load_spec(args) if args.spec and not args.spec.endswith(".keras") else None
    if args.list_targets:
        report.result(describe_targets(spec), {"targets": [t.to_dict() for t in all_targets(spec).values()]})
        return EXIT_OK
    if not args.spec:
        raise UsageError("export needs a spec or a .keras file (or --list-targets)")
    if not args.target:
        raise UsageError("export needs --target NAME (see --list-targets)")
    if args.weights and spec is None:
        raise UsageError("--weights applies to a spec; a .keras file has its own weights")
    batch = "keep" if args.batch_size is None else (None if args.batch_size == "dynamic" else _batch(args.batch_size))
    keep_float = [n for arg in args.keep_float for n in arg.split(",") if n] if args.keep_float else None
    target = with_overrides(get_target(args.target, spec), opset=args.opset, batch_size=batch,
                            input_shape=_input_shapes(args.input_shape), calibration=args.calibration,
                            per_channel=args.per_channel, keep_float=keep_float,
                            include_preprocess=args.include_preprocess)
    name = spec.name if spec is not None else file_stem(args.spec)
    out = args.output or f"{name}-{target.name}{target.suffix}"
    if not out.endswith(target.suffix):
        raise UsageError(f"target {target.name!r} writes {target.suffix} files. Received: -o {out}")
    output_path(args, out, (target.suffix,), f"a {target.suffix}")  # no control characters in the name
    load_named_plugins(args)
    from ..build.saving import check_model_file

    for model_file in (args.spec if spec is None else None, args.weights):
        if model_file and model_file.endswith(".keras"):
            check_model_file(model_file)  # archive, config and cost, before TensorFlow starts
    quiet_tensorflow()
    from ..train.data import load_arrays
    from ..export import GateError, export

    # cast: export calls it only with the netspec.Spec it was given (a SpecView) and "train" or "validation"
    loader = cast("LoadArrays", load_arrays)
    try:
        exported = export(spec if spec is not None else args.spec, target, out, weights=args.weights,
                          load_arrays=loader, latency=not args.no_latency)
    except GateError as e:
        return report.error(e, report=e.report.to_dict())
    report.warnings(spec.warnings if spec is not None else [])
    report.result(exported.text(), exported.to_dict())
    return EXIT_OK


def file_stem(path: str) -> str:
    """A default output name from an input file's name: control characters and spaces become ``_``."""
    import re

    return re.sub(r"[\x00-\x1f\x7f\s]", "_", os.path.splitext(os.path.basename(path))[0]) or "model"


def _batch(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--batch-size expects a positive integer or 'dynamic'. Received: {text!r}")
    return int(text)


def _input_shapes(texts: list[str]) -> dict[str, tuple[int, ...]] | None:
    from ..export.sizes import parse_input_shapes

    try:
        return parse_input_shapes(texts) if texts else None
    except ValueError as e:
        raise UsageError(str(e)) from None


# -- import ---------------------------------------------------------------------------------------


def import_arguments(p: ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="the .keras file (loaded with safe_mode=True)")
    p.add_argument("--keras-app", metavar="NAME", help="a keras.applications model, built with weights=None")
    p.add_argument("-o", "--output", help="the spec file to write (default: standard output)")
    p.add_argument("--name", help="the spec's name (default: the model's)")
    p.add_argument("--flat", action="store_true", help="one node per layer: do not fold blocks")
    p.add_argument("--no-verify", action="store_true", help="skip compiling the spec back and comparing it with the model")
    plugins_argument(p, "import these modules or .py files first (user layer classes)")
    format_argument(p)


def cmd_import(args: Namespace) -> int:
    """``netspec import``: write a spec from a Keras model and prove it rebuilds the model."""
    report = Reporter.for_args(args)
    if args.model:
        from ..build.saving import check_model_file

        check_model_file(args.model)  # archive, config and cost, before TensorFlow starts
    quiet_tensorflow()
    from ..errors import ImportVerifyError
    from ..schema.catalog import schema_path
    from ..importing.check import compare
    from ..importing.importer import import_model, keras_app, load_keras_file
    from ..build.saving import atomic_path

    if bool(args.model) == bool(args.keras_app):
        raise UsageError("give a MODEL.keras file or --keras-app NAME (one of them)")
    load_named_plugins(args)  # naming plugins on this command line is the user's own choice to run them
    source = keras_app(args.keras_app) if args.keras_app else load_keras_file(args.model)
    out = output_path(args, None, (".yaml", ".yml"), "a .yaml")
    ref = os.path.relpath(schema_path(), os.path.dirname(os.path.abspath(out))) if out else None
    base = os.path.dirname(os.path.abspath(out)) if out else os.getcwd()
    plugins = [os.path.relpath(os.path.abspath(p), base) if p.endswith(".py") else p for p in args.plugins]
    result = import_model(source, name=args.name, fold_blocks=not args.flat, schema_ref=ref, plugins=plugins)
    check = compare(source.model, result) if not args.no_verify else None
    if check is not None and not check.ok:
        raise ImportVerifyError(f"the imported spec does not rebuild the model: {check.summary()}")
    if out is None:
        report.document(result.text)
    else:
        with atomic_path(out) as tmp:
            tmp.write_text(result.text, encoding="utf-8")
    blocks = ", ".join(f"{name} x{n}" for name, n in result.blocks.items())
    text = (f"{'wrote ' + out if out else 'imported'} ({result.name}: {result.layers} layers in "
            f"{result.lines} lines" + (f"; blocks: {blocks}" if blocks else "") + ")"
            + (f"\nverified: {check.summary()}" if check is not None else "")
            + "".join(f"\nnote: {note}" for note in result.notes))
    # Without -o the spec is standard output, so the summary goes to standard error.
    report.result(text, {"ok": True, "output": out, "name": result.name, "layers": result.layers,
                         "lines": result.lines, "blocks": result.blocks,
                         "verified": check.ok if check is not None else None,
                         "params": check.spec_params if check is not None else None, "notes": result.notes},
                  to_stderr=out is None)
    return EXIT_OK


# -- schema ---------------------------------------------------------------------------------------


def schema_arguments(p: ArgumentParser) -> None:
    plugins_argument(p, "import these modules or .py files and add their registered layers")


def cmd_schema(args: Namespace) -> int:
    """``netspec schema``: the JSON Schema, with ``--plugins``' registered layers added."""
    from ..schema.catalog import load_schema, schema_path

    report = Reporter.for_args(args)
    if not args.plugins:
        report.document(schema_path().read_text(encoding="utf-8"))
        return EXIT_OK
    quiet_tensorflow()
    from ..schema import registry
    from ..schema.plugins import load_plugin_targets
    from ..schema.derive.render import render
    from ..schema.derive.nodes import with_user_layers

    # Naming plugins on this command line is the user's own choice to run them.
    load_plugin_targets(args.plugins)
    report.document(render(with_user_layers(load_schema(), registry.LAYERS)))
    return EXIT_OK


# -- inspect --------------------------------------------------------------------------------------


def inspect_arguments(p: ArgumentParser) -> None:
    p.add_argument("artifact", metavar="ARTIFACT", help="an exported file: .onnx, .tflite, .keras or OpenVINO .xml")
    p.add_argument("--spec", metavar="OUT.yaml", help="write the resolved spec stored in the file, after checking "
                   "it against the stored hash")
    format_argument(p)


def cmd_inspect(args: Namespace) -> int:
    """``netspec inspect``: what an exported file carries (version, spec hash, target, shapes, contract, gate)."""
    from ..deploy.inspect import inspect, write_spec

    report = Reporter.for_args(args)
    if args.spec is not None and (not args.spec.endswith((".yaml", ".yml")) or
                                  any(ord(ch) < 32 or ord(ch) == 127 for ch in args.spec)):
        raise UsageError(f"--spec must name a .yaml file. Received: {args.spec!r}")
    if args.spec is not None:
        from ..build.saving import check_writable

        check_writable(args.spec)  # before reading the artifact
    if args.artifact.endswith(".keras"):
        quiet_tensorflow()  # a .keras file's shapes are read off the model, loaded through the checked gate
    found = inspect(args.artifact)
    text, data = found.text(), found.to_dict()
    if args.spec is not None:
        digest = write_spec(found, args.spec)
        text += f"\nwrote {args.spec} (the stored spec; sha256 {digest} checked)"
        data["spec_written"] = args.spec
    report.result(text, data)
    return EXIT_OK
