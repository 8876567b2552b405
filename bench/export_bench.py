"""`netspec export` against plain Keras, side by side in one process, for MobileNetV2 and ResNet50.

For each model (built from its spec with 10 classes, BatchNormalization statistics set from 16
generated images so outputs are not constant: a 1000-way softmax of an untrained network is
uniform to ~1e-3, below any int8 grid, so int8 could not be judged on it; the 10-way head changes
the last layer only):
  1. export time: netspec.export (convert + gate + metadata + atomic write, no latency) against
     `model.export(path, format="onnx", input_signature=...)`, the plain Keras call; ratio, and
     the gate's own seconds shown separately;
  2. latency (median ms) at batch 1 and 8: onnxruntime on netspec's fp32 export, against Keras
     `model.predict` and a compiled `tf.function`;
  3. int8 (static QDQ, 128 generated calibration samples): onnxruntime latency against fp32 (the
     speed-up), file size, and top-1 agreement with Keras on 64 generated images (no labelled
     data ships, so the accuracy change is measured as agreement with the fp32 Keras model).

Usage: python bench/export_bench.py [mobilenet_v2 resnet50]
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


def main(names: list[str]) -> None:
    import numpy as np
    import tensorflow as tf

    import netspec
    from export_cases import lively
    from netspec import quantize, verify
    from netspec.convert import io_names, input_signature
    from netspec.export import GateError, export, median_ms
    from netspec.targets import BUILTIN

    for name in names:
        spec = netspec.load(ROOT / "specs" / f"{name}.yaml", params={"classes": 10})
        model = spec.build()
        infos = quantize.describe_inputs(model)
        lively(model, quantize.generate(infos, 16, seed=5))
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "w.weights.h5"
            model.save_weights(weights)
            names_ = io_names(model, spec.graph)
            # 1. export time, interleaved twice
            ours, theirs, gate = [], [], []
            for k in range(2):
                t = time.perf_counter()
                rep = export(spec, BUILTIN["onnx-cpu"], Path(tmp) / f"n{k}.onnx", weights=str(weights), latency=False)
                ours.append(time.perf_counter() - t)
                gate.append(rep.seconds["gate"])
                t = time.perf_counter()
                model.export(str(Path(tmp) / f"k{k}.onnx"), format="onnx", verbose=False,
                             input_signature=input_signature(model, names_, None))
                theirs.append(time.perf_counter() - t)
            o, th, g = min(ours), min(theirs), min(gate)
            print(f"{name}: export  netspec {o:.1f} s (gate {g:.1f} s) vs model.export {th:.1f} s: "
                  f"ratio {o / th:.2f} (without the gate {(o - g) / th:.2f})", flush=True)

            # 2. latency
            session = verify.ort_session((Path(tmp) / "n0.onnx").read_bytes())
            fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
            rows = {}
            for n in (1, 8):
                x = quantize.generate(infos, n, seed=9)["image"]
                rows[n] = (median_ms(lambda: session.run(None, {"image": x}), 3.0),
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
                x = quantize.generate(infos, n, seed=9)["image"]
                q_ms = median_ms(lambda: q.run(None, {"image": x}), 3.0)
                print(f"{name}: int8 batch {n}: {q_ms:.1f} ms vs fp32 {rows[n][0]:.1f} ms: "
                      f"speed-up {rows[n][0] / q_ms:.2f}x", flush=True)
            x = quantize.generate(infos, 64, seed=11)["image"]
            want = np.concatenate([np.asarray(model(x[i:i + 8], training=False)) for i in range(0, 64, 8)])
            got = np.concatenate([q.run(None, {"image": x[i:i + 8]})[0] for i in range(0, 64, 8)])
            agree = float((want.argmax(1) == got.argmax(1)).mean())
            worst = max(p.error_vs_range for p in rep8.gate.parity)
            print(f"{name}: int8 size {rep8.size_bytes / 2**20:.1f} MiB vs fp32 {fp32_size / 2**20:.1f} MiB; "
                  f"top-1 agreement with Keras {agree:.1%} on 64 generated images; gate: max error "
                  f"{worst:.3f} of the output range", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["mobilenet_v2", "resnet50"])
