"""One small trained digits model and its artifacts, made once per test session (test_predict, test_evaluate).

specs/digits.yaml is trained for 3 epochs on its training part (seconds), saved as ``.keras`` with the
spec stamped in it, and exported (verified) to onnx-cpu, onnx-int8, litert and openvino-cpu in a session temp dir,
and to onnx-cpu with ``include_preprocess`` (``raw``: it takes the uint8 pixels).
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "digits.yaml"
SAMPLES = ROOT / "data" / "digits-samples"


@dataclass(frozen=True)
class Artifacts:
    dir: Path
    keras: Path
    onnx: Path
    int8: Path
    tflite: Path
    openvino: Path
    raw: Path  # onnx-cpu with include_preprocess


@functools.lru_cache(maxsize=1)
def artifacts() -> Artifacts:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import netspec
    from netspec.build.saving import save_model
    from netspec.export import export
    from netspec.export.targets import get_target, with_overrides
    from netspec.train.data import load_arrays

    out = Path(tempfile.mkdtemp(prefix="netspec_deploy_"))
    spec = netspec.load(SPEC)
    keras.utils.set_random_seed(42)
    model = spec.build()
    train = load_arrays(spec, "train")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.fit(train.x["image"], train.y["probs"], batch_size=32, epochs=3, verbose=0)
    paths = Artifacts(out, out / "digits.keras", out / "digits.onnx", out / "digits-int8.onnx", out / "digits.tflite",
                      out / "digits.xml", out / "digits-raw.onnx")
    save_model(model, paths.keras, spec.metadata())
    for target, path in (("onnx-cpu", paths.onnx), ("onnx-int8", paths.int8), ("litert", paths.tflite),
                         ("openvino-cpu", paths.openvino)):
        export(spec, get_target(target, spec), path, weights=str(paths.keras), load_arrays=load_arrays, latency=False)
    export(spec, with_overrides(get_target("onnx-cpu", spec), include_preprocess=True), paths.raw,
           weights=str(paths.keras), load_arrays=load_arrays, latency=False)
    return paths
