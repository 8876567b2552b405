"""Which runtime is fastest: batch-1 and batch-8 latency of one model on four runtimes, side by side in one run.

For each model (MobileNetV2 and ResNet50 from their specs, 1000 classes, random weights made lively:
BatchNormalization statistics from 8 generated images, so the gates compare outputs that vary):
  1. export it with netspec to onnx-cpu, openvino-cpu and litert (fp32; each passes its gate, so
     every runtime timed computes what Keras computes);
  2. time, on the same generated batch, the median wall time of one call of
     - Keras as a compiled ``tf.function`` (the baseline),
     - onnxruntime (CPU execution provider),
     - OpenVINO (CPU plugin, f32 inference precision, as netspec compiles it),
     - LiteRT (the ``ai-edge-litert`` interpreter, XNNPACK);
     each with the same number of threads (``--threads``, default every core: TensorFlow's intra-op
     pool, onnxruntime's ``intra_op_num_threads``, OpenVINO's ``INFERENCE_NUM_THREADS``, the
     interpreter's ``num_threads``), timed one after another at each batch size; on a shared,
     loaded machine ``--threads 1`` keeps runtimes that spin their threads from being punished most;
  3. print a table: milliseconds, and each runtime's speed-up over tf.function (tf.function ms / runtime ms).

Usage: python bench/runtime_latency.py [mobilenet_v2 resnet50] [--budget SECONDS] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = {"onnxruntime": ("onnx-cpu", ".onnx"), "OpenVINO": ("openvino-cpu", ".xml"), "LiteRT": ("litert", ".tflite")}
BATCHES = (1, 8)


def runners(spec, weights: str, tmp: Path, threads: int) -> dict:
    """Each runtime's runner on netspec's gated fp32 export of ``spec``, by runtime name."""
    from ai_edge_litert.interpreter import Interpreter

    from netspec.export import export, verify
    from netspec.export import openvino as ovx
    from netspec.export.convert import quiet_native_stderr
    from netspec.export.targets import BUILTIN

    out = {}
    for runtime, (target, suffix) in TARGETS.items():
        path = tmp / f"{spec.name}{suffix}"
        report = export(spec, BUILTIN[target], path, weights=weights, latency=False)
        print(f"  {target}: gate passed ({report.gate.summary()[0]}), {report.seconds['total']:.1f} s", flush=True)
        if runtime == "onnxruntime":
            out[runtime] = verify.ort_runner(verify.ort_session(path.read_bytes(), threads=threads))
        elif runtime == "OpenVINO":
            out[runtime] = ovx.open_model(path, threads=threads).run
        else:  # verify.litert_runner leaves threads to the interpreter (one); here each runtime gets the same
            with quiet_native_stderr():
                interpreter = Interpreter(model_content=path.read_bytes(), num_threads=threads)
            signature = interpreter.get_signature_runner("serving_default")
            out[runtime] = lambda x, s=signature: s(**x)
    return out


def measure(name: str, budget: float, threads: int) -> list[dict]:
    import keras

    import netspec
    from export_cases import lively
    from netspec.export import quantize
    from netspec.export.signature import io_names
    from netspec.export.pipeline import keras_function, median_ms

    keras.utils.set_random_seed(0)
    spec = netspec.load(ROOT / "specs" / f"{name}.yaml")
    model = spec.build()
    infos = quantize.describe_inputs(model)
    lively(model, quantize.generate(infos, 8, seed=5))
    print(f"{name}: {model.count_params():,} parameters", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "w.weights.h5"
        model.save_weights(weights)
        run = {"tf.function": keras_function(model, io_names(model, spec.graph)),
               **runners(spec, str(weights), Path(tmp), threads)}
        rows = []
        for batch in BATCHES:
            x = quantize.generate(infos, batch, seed=1)
            row = {"model": name, "batch": batch}
            for runtime, fn in run.items():
                row[runtime] = median_ms(lambda fn=fn: fn(x), budget, min_runs=5)
            rows.append(row)
            print("  batch", batch, ", ".join(f"{k} {row[k]:.2f} ms" for k in run), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: milliseconds per runtime, and the speed-up over tf.function in parentheses."""
    runtimes = ["tf.function", *TARGETS]
    lines = ["| model | batch | " + " | ".join(runtimes) + " |", "|---|---|" + "---|" * len(runtimes)]
    for r in rows:
        cells = [f"{r['tf.function']:.2f}"] + [f"{r[k]:.2f} ({r['tf.function'] / r[k]:.1f}x)" for k in TARGETS]
        lines.append(f"| {r['model']} | {r['batch']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mobilenet_v2", "resnet50"])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per runtime and batch size")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of every runtime")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)  # before TensorFlow runs anything
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rows = [r for name in args.models for r in measure(name, args.budget, args.threads)]
    print(f"\nmedian ms per call, {args.threads} thread(s) per runtime, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; (x) = speed-up over tf.function\n")
    print(table(rows))


if __name__ == "__main__":
    main()
