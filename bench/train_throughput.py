"""`netspec train` throughput (samples/s) against a hand-written `model.fit`, side by side in one run.

Both train the same model (specs/digits.yaml, built by netspec) on the same tf.data pipeline
(netspec.train.session.datasets: cache -> shuffle -> batch -> prefetch) with the same optimizer, loss and
metrics and the spec's own callbacks (ReduceLROnPlateau). The hand-written side is plain
`model.fit(train_ds, validation_data=val_ds, callbacks=<the spec's>)`; the netspec side is
`netspec.train.train` with everything it does each epoch (history.csv, TensorBoard scalars,
checkpoint, state.json, best model). Each training runs in a fresh process (so neither inherits the
other's graphs, caches or memory), the two alternate, and each reports the samples/s of epochs 2..N
(epoch 1 traces the graph on both sides). The headline is the median of the per-round ratios (the
two trainings of a round run back to back, so they see the same machine); the ratio of the medians
over all rounds and the per-CPU-second ratio are printed too.

The digits are tiled 10x (14,376 training samples) so that an epoch lasts seconds, as real epochs
do; the fixed per-epoch cost of netspec's bookkeeping is printed separately.

    python bench/train_throughput.py [--rounds 8] [--epochs 5] [--tile 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare(tmp: Path, tile: int, epochs: int) -> Path:
    """The digits spec on the tiled digits, for ``epochs`` epochs."""
    import numpy as np

    with np.load(ROOT / "data" / "digits.npz") as z:
        np.savez(tmp / "digits.npz", images=np.tile(z["images"], (tile, 1, 1, 1)), labels=np.tile(z["labels"], tile))
    text = (ROOT / "specs" / "digits.yaml").read_text(encoding="utf-8")
    text = text.replace("path: ../data/digits.npz", f"path: {tmp / 'digits.npz'}")
    text = text.replace("epochs: 40", f"epochs: {epochs}")
    path = tmp / "digits.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def worker(side: str, spec_path: str, run_dir: str) -> None:
    """One training in this process; prints its samples/s (epochs 2..N) and CPU samples/s as JSON."""
    import netspec
    from netspec.cli.options import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from netspec.data import read_split
    from netspec.train.session import build_object, compile_model, datasets
    from netspec.train import train
    from netspec.train.config import train_config

    spec = netspec.load(spec_path)
    config = train_config(spec)
    train_data, val_data = read_split(spec, config)

    class EpochTimer(keras.callbacks.Callback):
        """Wall and CPU seconds per epoch; last in the callback list, so netspec's bookkeeping counts."""

        def __init__(self):
            super().__init__()
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self.start[0])
            self.cpu.append(time.process_time() - self.start[1])

    timer = EpochTimer()
    if side == "fit":
        keras.utils.set_random_seed(config.seed)
        model = spec.build()
        compile_model(model, config)
        train_ds, val_ds = datasets(spec, config, train_data, val_data)
        model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, verbose=0, shuffle=False,
                  callbacks=[*(build_object(cb) for cb in config.callbacks), timer])
    else:
        train(spec, run_dir=run_dir, verbose=0, callbacks=[timer])
    n = len(train_data)
    print(json.dumps({"n": n, "wall": n * (len(timer.wall) - 1) / sum(timer.wall[1:]),
                      "cpu": n * (len(timer.cpu) - 1) / sum(timer.cpu[1:])}))


def bookkeeping(spec_path: str, tmp: Path) -> float:
    """netspec's fixed per-epoch bookkeeping (history, best model, checkpoint, state), timed alone."""
    import netspec
    from netspec.cli.options import quiet_tensorflow

    quiet_tensorflow()
    from netspec.train.runs import RunDir, RunState
    from netspec.train.session import compile_model, record_epoch
    from netspec.train.config import train_config

    spec = netspec.load(spec_path)
    model = spec.build()
    compile_model(model, train_config(spec))
    model.optimizer.build(model.trainable_variables)
    run = RunDir(tmp / "bookkeeping")
    run.start(None, "")
    state, rows, costs = RunState(epochs=10 ** 6), [], []
    for e in range(1, 11):
        t0 = time.perf_counter()
        rows.append({"epoch": e, "loss": 1.0 / e, "val_loss": 1.0 / e})  # improves each epoch: the worst case
        run.write_history(rows)
        record_epoch(run, state, model, rows[-1], "val_loss", False, [])
        costs.append(time.perf_counter() - t0)
    return statistics.median(costs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tile", type=int, default=10)
    parser.add_argument("--worker", nargs=3, metavar=("SIDE", "SPEC", "RUN_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="netspec-bench-"))
    spec_path = prepare(tmp, args.tile, args.epochs)

    def run(side: str, k: int) -> dict:
        proc = subprocess.run([sys.executable, __file__, "--worker", side, str(spec_path), str(tmp / f"run{k}")],
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    plain, ours, pairs, plain_cpu, ours_cpu = [], [], [], [], []
    print(f"digits x{args.tile}, batch 32, {args.epochs} epochs per training, {args.rounds} rounds, "
          f"each training in a fresh process; {os.cpu_count()} CPUs", flush=True)
    for k in range(args.rounds):
        order = ("fit", "netspec") if k % 2 == 0 else ("netspec", "fit")
        got = {side: run(side, k) for side in order}
        a, b = got["fit"], got["netspec"]
        plain.append(a["wall"])
        ours.append(b["wall"])
        plain_cpu.append(a["cpu"])
        ours_cpu.append(b["cpu"])
        pairs.append(b["wall"] / a["wall"])
        print(f"round {k + 1}: model.fit {a['wall']:6.0f} samples/s   netspec train {b['wall']:6.0f} samples/s   "
              f"ratio {pairs[-1]:.3f}   (per CPU-second: {b['cpu'] / a['cpu']:.3f})", flush=True)
    mp, mo = statistics.median(plain), statistics.median(ours)
    cp, co = statistics.median(plain_cpu), statistics.median(ours_cpu)
    paired = statistics.median(pairs)  # each round's two trainings ran back to back: the fairest comparison
    print(f"ratio netspec train / model.fit, median of the {len(pairs)} rounds: {paired:.3f} "
          f"(target >= 0.97: {'met' if paired >= 0.97 else 'NOT MET'})")
    print(f"medians over all rounds: model.fit {mp:.0f} samples/s, netspec train {mo:.0f} samples/s (ratio {mo / mp:.3f})")
    print(f"median per CPU-second (less sensitive to other load on the machine): model.fit {cp:.0f}, "
          f"netspec train {co:.0f}; ratio {co / cp:.3f}")
    print(f"netspec bookkeeping per epoch (history + best model + checkpoint + state): "
          f"{bookkeeping(str(spec_path), tmp) * 1000:.0f} ms median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
