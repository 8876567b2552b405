"""The commands that use an exported model: ``predict`` and ``evaluate`` (see :mod:`netspec.deploy`)."""

from __future__ import annotations

from argparse import ArgumentParser, Namespace

from .options import (KERAS_FILE_PLUGINS, SPEC_FILE_TRUST, UsageError, data_root_argument, format_argument,
                      load_named_plugins, plugins_argument, quiet_tensorflow, trust_argument)
from .output import EXIT_OK, Reporter

ARTIFACT_HELP = "a spec (.yaml, with --weights), .keras, .onnx, .tflite or OpenVINO .xml file"


# -- predict --------------------------------------------------------------------------------------


def predict_arguments(p: ArgumentParser) -> None:
    p.add_argument("artifact", metavar="ARTIFACT", help=ARTIFACT_HELP)
    p.add_argument("inputs", metavar="INPUT", nargs="+",
                   help="image files (PNG, JPEG, BMP, ...), .npy/.npz arrays or CSV rows, all raw (the artifact's "
                        "stamped contract is applied to them); for a model with several inputs, NAME=FILE per input "
                        "(the k-th files of each input are paired), or one .npz holding an array per input name. "
                        "Options may come before, between or after them")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to show per output (default 5)")
    p.add_argument("--raw", action="store_true", help="print the outputs as they are, not the top-k labels")
    p.add_argument("--weights", metavar="FILE", help="trained weights (.keras or .weights.h5) for a spec")
    data_root_argument(p)
    plugins_argument(p, KERAS_FILE_PLUGINS)
    trust_argument(p, SPEC_FILE_TRUST)
    format_argument(p)


def cmd_predict(args: Namespace) -> int:
    """``netspec predict``: raw inputs through the artifact's contract and runtime, top-k labels out."""
    from ..deploy.predict import MAX_TOP_K, predict, report as predict_report
    from ..deploy.runtimes import kind_of, open_artifact

    report = Reporter.for_args(args)
    if not 1 <= args.top_k <= MAX_TOP_K:
        raise UsageError(f"--top-k takes 1 to {MAX_TOP_K}. Received: {args.top_k}")
    if args.weights and kind_of(args.artifact) != "spec":
        raise UsageError("--weights applies to a spec; a .keras, .onnx, .tflite or .xml file has its own weights")
    if kind_of(args.artifact) in ("spec", "keras"):
        quiet_tensorflow()
    load_named_plugins(args)
    artifact = open_artifact(args.artifact, weights=args.weights, data_root=args.data_root,
                             trust_plugins=args.trust_plugins)
    if artifact.kind == "spec" and not args.weights:
        report.warnings([f"{artifact.shown} is run with its initial (untrained) weights; pass --weights"])
    rows = predict(artifact, list(args.inputs))
    text, data = predict_report(artifact, rows, args.top_k, args.raw)
    report.result(text, data)
    return EXIT_OK


# -- evaluate -------------------------------------------------------------------------------------


def evaluate_arguments(p: ArgumentParser) -> None:
    p.add_argument("artifacts", metavar="ARTIFACT", nargs="+",
                   help=ARTIFACT_HELP + "; several are evaluated side by side, each against the first")
    p.add_argument("--spec", metavar="FILE", help="the spec whose train: section names the data and metrics "
                   "(default: the first artifact that is a spec or carries one)")
    p.add_argument("--data", metavar="SOURCE", help="the data instead of the spec's validation data: a .npz or "
                   ".csv file, or a source mapping as in train.data, such as "
                   "'{source: npz, path: d.npz, x: images, y: labels}'")
    p.add_argument("--raw-data", action="store_true",
                   help="the data is raw (what an artifact with include_preprocess takes): artifacts without the "
                        "preprocessing folded in get the contract's numeric steps applied first")
    p.add_argument("--weights", metavar="FILE", help="trained weights (.keras or .weights.h5) for a spec artifact")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="samples per run (default 64)")
    plugins_argument(p, KERAS_FILE_PLUGINS)
    trust_argument(p, SPEC_FILE_TRUST)
    p.add_argument("--data-root", metavar="DIR", help="where the data paths of a spec stamped in an artifact lead: "
                   "relative paths start in DIR and must stay inside it (default: the artifact's own directory; "
                   "never the spec's original location, which the file records but does not hash). For a spec "
                   "artifact or --spec, also allow its data paths inside DIR")
    format_argument(p)


def cmd_evaluate(args: Namespace) -> int:
    """``netspec evaluate``: the spec's metrics per artifact, side by side, with the change against the first."""
    from ..deploy.evaluate import Progress, evaluate, evaluation_data, evaluation_spec
    from ..deploy.runtimes import kind_of, open_artifact

    report = Reporter.for_args(args)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1. Received: {args.batch_size}")
    specs = [a for a in args.artifacts if kind_of(a) == "spec"]
    if args.weights and len(specs) != 1:
        raise UsageError("--weights applies to exactly one spec among the artifacts")
    quiet_tensorflow()  # the metrics are Keras's
    load_named_plugins(args)
    artifacts = [open_artifact(a, weights=args.weights if kind_of(a) == "spec" else None, data_root=args.data_root,
                               trust_plugins=args.trust_plugins) for a in args.artifacts]
    source = evaluation_spec(artifacts, args.spec, trust_plugins=args.trust_plugins)
    spec, arrays, what = evaluation_data(source, args.data, args.data_root)
    result = evaluate(artifacts, spec, arrays, what, raw=args.raw_data, batch_size=args.batch_size,
                      progress=None if report.json else Progress())
    report.result(result.text(), result.to_dict())
    return EXIT_OK
