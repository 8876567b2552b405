"""Resident memory of ``netspec export`` stage by stage, as multiples of the model's weights (issue 13).

For each ``keras.applications`` model named (imported as ``netspec import --keras-app`` imports it;
ConvNeXt with its LayerScale registered as a user layer, as bench/zoo.py's plugin does) and each
target, a child process builds the spec's model with seeded random weights and runs
``netspec.export.export(spec, target, out, latency=False)`` with every stage wrapped: on entering
and leaving a stage the child reads the peak resident size since the last event (``VmHWM``) and
resets it (``/proc/self/clear_refs``), so each stage's peak is exact, not sampled. The parent
watches the child's resident size and kills it above ``--cap-gb``.

Columns: the resident size before and after each stage and its peak, above the resident size when
the export started, in multiples of the weights' bytes (nested stages indented). The SHA-256 of
the written file, its netspec metadata (gate figures vary run to run) left out, shows whether a change kept the export.

EXPORT_MEMORY_TRIM=1 runs glibc's malloc_trim at every stage boundary: the resident size then shows what is live rather
than what malloc kept of freed memory (it lowered the sizes between stages, not the peaks).

Usage: python bench/export_memory.py [--models EfficientNetB2,ConvNeXtTiny] [--targets onnx-cpu,litert]
                                     [--cap-gb 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import watch  # noqa: E402  (the child's resident size, watched under a cap)

PAGE = os.sysconf("SC_PAGE_SIZE")
TRIM = None
if os.environ.get("EXPORT_MEMORY_TRIM") == "1":
    import ctypes

    TRIM = ctypes.CDLL("libc.so.6")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def hwm_and_reset() -> int:
    """The peak resident bytes since the last call; resets the peak to the current size."""
    with open("/proc/self/status") as f:
        peak = int(next(line for line in f if line.startswith("VmHWM")).split()[1]) * 1024
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak


class Stages:
    """Wraps functions as named stages; records resident size before/after and the exact peak of each."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.stack: list[dict] = []
        self.base = 0

    def _event(self) -> int:
        peak = hwm_and_reset()
        if TRIM:  # what is live, not what malloc kept: freed memory handed back to the system first
            TRIM.malloc_trim(0)
        for row in self.stack:
            row["peak"] = max(row["peak"], peak)
        return rss()

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)
        stages = self

        def wrapped(*args, **kwargs):
            now = stages._event()
            row = {"stage": label, "depth": len(stages.stack), "before": now, "peak": now, "after": now}
            stages.rows.append(row)
            stages.stack.append(row)
            try:
                return fn(*args, **kwargs)
            finally:
                row["after"] = stages._event()
                stages.stack.pop()

        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
        setattr(owner, attr, wrapped)


def instrument(stages: Stages) -> None:
    """Every stage of the ONNX and LiteRT paths, wrapped where the pipeline looks it up at call time."""
    import dataclasses

    import tensorflow as tf
    import tf2onnx
    from keras.export import ExportArchive
    from tensorflow.lite.python import lite
    from tensorflow.python.framework import convert_to_constants
    import onnxruntime.quantization as ort_quantization
    from onnxruntime.quantization import shape_inference
    from tf2onnx import graph as onnx_graph
    from tf2onnx import optimizer, tf_loader, tfonnx

    from netspec.export import convert, formats, localize, pipeline, quantize, tfgraph, verify

    w = stages.wrap
    w(pipeline, "load_model", "build model + weights")
    w(pipeline, "check_runs", "gate plan (check_runs)")
    w(pipeline, "classifier_outputs", "classifier outputs")
    w(pipeline, "float64_reference", "float64 twin")
    w(verify, "run_gate", "gate runs (Keras vs runtime)")
    w(verify, "check_onnx", "onnx.checker full_check")
    w(verify, "ort_session", "onnxruntime session")
    w(verify, "litert_runner", "LiteRT interpreter")
    w(tf2onnx.convert, "from_function", "tf2onnx from_function")
    if hasattr(convert, "concrete_function"):
        w(convert, "concrete_function", "trace concrete function")
    w(tfgraph, "frozen_graph_def", "freeze + grappler")
    w(convert_to_constants, "convert_variables_to_constants_v2", "freeze (variables to constants)")
    w(tfgraph, "frozen_graph", "freeze (variables to constants)")
    w(tf_loader, "tf_optimize", "grappler")
    w(tf2onnx.convert, "process_tf_graph", "process_tf_graph")
    w(tf2onnx.tfonnx, "process_tf_graph", "process_tf_graph")
    if hasattr(convert, "onnx_model"):
        w(convert, "onnx_model", "tf2onnx, step for step")
    w(optimizer, "optimize_graph", "tf2onnx optimizer")
    w(onnx_graph.Graph, "make_model", "make_model (ONNX proto)")
    w(ExportArchive, "write_out", "SavedModel write_out")
    w(lite.TFLiteSavedModelConverterV2, "convert", "TFLite converter")
    w(quantize, "quantize_onnx", "int8: quantize_onnx")
    w(quantize, "calibration_arrays", "int8: calibration samples")
    w(quantize, "calibrate", "int8: calibrate (ranges, chunked)")
    w(shape_inference, "quant_pre_process", "int8: quant_pre_process")
    w(ort_quantization, "quantize_static", "int8: quantize_static")
    w(localize, "activation_errors", "locate: activation errors")
    del tf, tfonnx
    for name, fmt in list(formats.FORMATS.items()):
        fields = {}
        for step in ("convert", "finish", "load", "stamp"):
            holder = type("Holder", (), {step: staticmethod(getattr(fmt, step))}) if getattr(fmt, step) else None
            if holder is None:
                continue
            w(holder, step, f"format {step}")
            fields[step] = getattr(holder, step)
        formats.FORMATS[name] = dataclasses.replace(fmt, **fields)


def child(model_name: str, target_name: str, out: str) -> None:
    import keras

    import netspec
    from netspec.export import export
    from netspec.export.targets import BUILTIN
    from netspec.importing.importer import import_model, keras_app

    if model_name.startswith("ConvNeXt"):  # bench/zoo.py's plugin, in process
        from keras.src.applications.convnext import LayerScale

        netspec.register_layer(LayerScale)
    keras.utils.set_random_seed(0)
    spec = netspec.load(import_model(keras_app(model_name)).text)
    stages = Stages()
    instrument(stages)
    weights: list[int] = []
    from netspec.export import pipeline

    load = pipeline.load_model

    def load_and_count(*args, **kwargs):
        keras.utils.set_random_seed(0)  # the same weights on every run, so files compare byte for byte
        model, s = load(*args, **kwargs)
        weights.append(sum(int(v.numpy().nbytes) for v in model.weights))
        return model, s

    pipeline.load_model = load_and_count
    hwm_and_reset()
    stages.base = rss()
    t = time.perf_counter()
    error = None
    try:
        export(spec, BUILTIN[target_name], out, latency=False)
    except netspec.NetspecError as e:
        error = str(e)[:300]
    seconds = time.perf_counter() - t
    digest = graph_digest(Path(out)) if Path(out).exists() else None
    print(json.dumps({"model": model_name, "target": target_name, "weights": weights[0] if weights else None,
                      "base": stages.base, "rows": stages.rows, "seconds": seconds, "sha256": digest,
                      "error": error}))


def graph_digest(path: Path) -> str:
    """SHA-256 of the exported graph and weights: of the file without its netspec metadata (which holds the gate's
    figures, whose last digits vary from run to run with thread scheduling)."""
    if path.suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path))
        del proto.metadata_props[:]
        return hashlib.sha256(proto.SerializeToString()).hexdigest()
    from netspec.export.litertmeta import stamp

    return hashlib.sha256(stamp(path.read_bytes(), {})).hexdigest()


def run_child(model: str, target: str, work: Path, cap: int) -> dict:
    """The child under watch: killed when its resident size passes ``cap`` bytes."""
    out = work / f"{model}-{target}{'.onnx' if target.startswith('onnx') else '.tflite'}"
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:  # pipes could fill
        proc = subprocess.Popen([sys.executable, __file__, "--child", model, target, str(out)], stdout=stdout,
                                stderr=stderr, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                start_new_session=True)
        peak, stop = watch(proc, cap, interval=0.05)
        if stop:
            return {"model": model, "target": target, "error": f"killed: {stop}"}
        stdout.seek(0)
        stderr.seek(0)
        stdout, stderr = stdout.read(), stderr.read()
    if proc.returncode != 0:
        return {"model": model, "target": target, "error": stderr.strip().splitlines()[-1:]}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["process_peak"] = peak
    return result


def table(r: dict) -> str:
    if "rows" not in r:
        return f"### {r['model']} -> {r['target']}: {r['error']}\n"
    w, base = r["weights"], r["base"]
    lines = [f"### {r['model']} -> {r['target']}: weights {w / 2**20:.0f} MiB, start {base / 2**20:.0f} MiB "
             f"resident, {r['seconds']:.0f} s{', ' + r['error'] if r['error'] else ''}",
             f"sha256 {r['sha256']}", "",
             "| stage | before | after | peak |", "|---|---:|---:|---:|"]
    for row in r["rows"]:
        name = "&nbsp;&nbsp;" * row["depth"] + row["stage"]
        lines.append(f"| {name} | {(row['before'] - base) / w:.1f}x | {(row['after'] - base) / w:.1f}x | "
                     f"{(row['peak'] - base) / w:.1f}x |")
    top = max(row["peak"] for row in r["rows"])
    lines.append(f"| **export peak** | | | **{(top - base) / w:.1f}x** ({(top - base) / 2**30:.2f} GiB) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="EfficientNetB2,ConvNeXtTiny")
    ap.add_argument("--targets", default="onnx-cpu,litert")
    ap.add_argument("--cap-gb", type=float, default=7.0)
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--keep", help="write the exported files into this directory (default: a temporary one)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for target in args.targets.split(","):
                r = run_child(model, target, Path(args.keep or tmp), int(args.cap_gb * 2**30))
                results.append(r)
                print(table(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
