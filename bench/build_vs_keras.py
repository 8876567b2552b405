"""`netspec build specs/resnet50.yaml` against the plain-Keras way, both as whole processes.

The plain-Keras side builds keras.applications.ResNet50(weights=None) and saves it to .keras,
which is what `netspec build` does from the spec. Runs are interleaved; target ratio <= 1.15.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _util import BIN, median, time_process

RUNS = 5
KERAS = """
import keras, sys
model = keras.applications.{app}(weights=None)
model.save(sys.argv[1])
"""


def main() -> None:
    spec = sys.argv[1] if len(sys.argv) > 1 else "specs/resnet50.yaml"
    app = sys.argv[2] if len(sys.argv) > 2 else "ResNet50"
    with tempfile.TemporaryDirectory() as tmp:
        ours = [str(BIN / "netspec"), "build", spec, "-o", str(Path(tmp) / "a.keras")]
        theirs = [sys.executable, "-c", KERAS.format(app=app), str(Path(tmp) / "b.keras")]
        time_process(ours), time_process(theirs)  # warm caches
        a, b = [], []
        for _ in range(RUNS):
            a.append(time_process(ours))
            b.append(time_process(theirs))
    ma, mb = median(a), median(b)
    print(f"netspec build {spec}:            median {ma:.2f} s over {RUNS} runs")
    print(f"keras.applications.{app} + save: median {mb:.2f} s")
    print(f"ratio {ma / mb:.3f} (target <= 1.15: {'met' if ma / mb <= 1.15 else 'NOT MET'})")


if __name__ == "__main__":
    main()
