"""`netspec export` against plain Keras, side by side in one process, for MobileNetV2, ResNet50, EfficientNetB0.

For each model (built from its spec with 10 classes, BatchNormalization statistics set from 16
generated images so outputs are not constant: a 1000-way softmax of an untrained network is
uniform to ~1e-3, below any int8 grid, so int8 could not be judged on it; the 10-way head changes
the last layer only):
  1. export time: netspec.export.export (convert + gate + metadata + atomic write, no latency) against
     `model.export(path, format="onnx", input_signature=...)`, the plain Keras call; ratio, and
     the gate's own seconds shown separately;
  2. latency (median ms) at batch 1 and 8: onnxruntime on netspec's fp32 export, against Keras
     `model.predict` and a compiled `tf.function`;
  3. int8 (static QDQ, 128 generated calibration samples): onnxruntime latency against fp32 (the
     speed-up), file size, and top-1 agreement with Keras on 64 generated images, counted over the
     images where Keras's top-1 is clear (no labelled 224x224 data ships, and on an untrained
     network most generated images are near-ties);
  4. the accuracy change on labelled data: specs/digits.yaml trained (runs/digits/best.keras from
     `make train`, trained here if missing), exported to onnx-int8 and litert-int8, with Keras and
     the export scored on its 359 held-out samples.

A name that is not a spec of specs/ is a keras.applications model, imported as `netspec import
--keras-app NAME` imports it (EfficientNetB0: its Normalization stem rewritten at export).

Usage: python bench/export_bench.py [--time-only] [mobilenet_v2 resnet50 EfficientNetB0]
       (--time-only: step 1 only)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def load(name: str):
    """specs/<name>.yaml with 10 classes, else keras.applications.<name>(classes=10) imported to a spec."""
    import netspec
    from netspec.importing.importer import import_model, keras_app

    path = ROOT / "specs" / f"{name}.yaml"
    if path.is_file():
        return netspec.load(path, params={"classes": 10})
    return netspec.load(import_model(keras_app(name, classes=10)).text)


def main(names: list[str], time_only: bool = False) -> None:
    import numpy as np
    import tensorflow as tf

    import netspec
    from export_cases import lively
    from netspec.export import quantize
    from netspec.export import verify
    from netspec.export.signature import io_names, input_signature
    from netspec.export.pipeline import GateError, export, median_ms
    from netspec.export.targets import BUILTIN

    import keras

    for name in names:
        keras.utils.set_random_seed(0)  # the same untrained weights on every run
        spec = load(name)
        model = spec.build()
        infos = quantize.describe_inputs(model)
        lively(model, quantize.generate(infos, 16, seed=5))
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "w.weights.h5"
            model.save_weights(weights)
            names_ = io_names(model, spec.graph)
            # 1. export time, interleaved twice
            ours, theirs, gate, load_s = [], [], [], []
            for k in range(3):
                t = time.perf_counter()
                rep = export(spec, BUILTIN["onnx-cpu"], Path(tmp) / f"n{k}.onnx", weights=str(weights), latency=False)
                ours.append(time.perf_counter() - t)
                gate.append(rep.seconds["gate"])
                load_s.append(rep.seconds.get("load", 0.0))
                t = time.perf_counter()
                model.export(str(Path(tmp) / f"k{k}.onnx"), format="onnx", verbose=False,
                             input_signature=input_signature(model, names_, None))
                theirs.append(time.perf_counter() - t)
            # the fastest netspec run, its gate and load as measured in that run
            k = min(range(len(ours)), key=ours.__getitem__)
            o, th, g, ld = ours[k], min(theirs), gate[k], load_s[k]
            print(f"{name}: export  netspec {o:.1f} s (gate {g:.1f} s, model build and weights {ld:.1f} s) vs "
                  f"model.export {th:.1f} s: ratio {o / th:.2f}, without the gate {(o - g) / th:.2f}, "
                  f"without gate and build {(o - g - ld) / th:.2f}", flush=True)
            if time_only:
                continue

            # 2. latency
            session = verify.ort_session((Path(tmp) / "n0.onnx").read_bytes())
            fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
            rows = {}
            for n in (1, 8):
                x = quantize.generate(infos, n, seed=9)[infos[0].name]
                rows[n] = (median_ms(lambda: session.run(None, {infos[0].name: x}), 3.0),
                           median_ms(lambda: model.predict(x, verbose=0), 3.0, max_runs=30),
                           median_ms(lambda: fn(x), 3.0))
                ort_ms, pred_ms, fn_ms = rows[n]
                print(f"{name}: batch {n}: onnxruntime {ort_ms:.1f} ms, Keras predict {pred_ms:.1f} ms "
                      f"({pred_ms / ort_ms:.1f}x), tf.function {fn_ms:.1f} ms ({fn_ms / ort_ms:.1f}x)", flush=True)

            # 3. int8
            try:
                rep8 = export(spec, BUILTIN["onnx-int8"], Path(tmp) / "q.onnx", weights=str(weights), latency=False)
            except GateError as e:  # a 1000-way softmax of an untrained net is uniform to ~1e-3
                print(f"{name}: int8 gate failed: {str(e).splitlines()[0]}", flush=True)
                continue
            q = verify.ort_session((Path(tmp) / "q.onnx").read_bytes())
            fp32_size = (Path(tmp) / "n0.onnx").stat().st_size
            for n in (1, 8):
                x = quantize.generate(infos, n, seed=9)[infos[0].name]
                q_ms = median_ms(lambda: q.run(None, {infos[0].name: x}), 3.0)
                print(f"{name}: int8 batch {n}: {q_ms:.1f} ms vs fp32 {rows[n][0]:.1f} ms: "
                      f"speed-up {rows[n][0] / q_ms:.2f}x", flush=True)
            x = quantize.generate(infos, 64, seed=11)[infos[0].name]
            want = np.concatenate([np.asarray(model(x[i:i + 8], training=False)) for i in range(0, 64, 8)])
            got = np.concatenate([q.run(None, {infos[0].name: x[i:i + 8]})[0] for i in range(0, 64, 8)])
            top2 = np.sort(want, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 0.1 * float(want.max() - want.min())
            agree = float((want.argmax(1) == got.argmax(1))[clear].mean()) if clear.any() else float("nan")
            worst = max(p.error_vs_range for p in rep8.gate.parity)
            print(f"{name}: int8 size {rep8.size_bytes / 2**20:.1f} MiB vs fp32 {fp32_size / 2**20:.1f} MiB; "
                  f"top-1 agreement with Keras {agree:.1%} on the {int(clear.sum())} of 64 generated images with "
                  f"a clear top-1; gate: max error {worst:.3f} of the output range", flush=True)
    if not time_only:
        digits_accuracy()


def digits_accuracy() -> None:
    """int8's accuracy change on labelled held-out data: the trained digits model."""
    import netspec
    from netspec.data import load_arrays
    from netspec.export import export
    from netspec.export.targets import BUILTIN
    from netspec.train import train

    spec = netspec.load(ROOT / "specs" / "digits.yaml")
    best = ROOT / "runs" / "digits" / "best.keras"
    with tempfile.TemporaryDirectory() as tmp:
        if not best.is_file():
            best = train(spec, run_dir=Path(tmp) / "run", verbose=0).best_model
        for target in ("onnx-int8", "litert-int8"):
            t = BUILTIN[target]
            rep = export(spec, t, Path(tmp) / f"d{t.suffix}", weights=str(best), load_arrays=load_arrays,
                         latency=False)
            acc = rep.accuracy["probs"]
            print(f"digits: {target}: held-out accuracy ({acc['samples']} samples) Keras {acc['keras']:.2%}, "
                  f"export {acc['export']:.2%} ({acc['change']:+.2%}); {rep.size_bytes / 1024:.1f} KiB", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--time-only"]
    main(args or ["mobilenet_v2", "resnet50", "EfficientNetB0"], time_only="--time-only" in sys.argv[1:])
