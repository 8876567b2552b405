"""`netspec train` throughput (samples/s) against a hand-written `model.fit`, side by side in one process.

Both train the same model (specs/digits.yaml, built by netspec) on the same tf.data pipeline
(netspec.train.datasets: cache -> shuffle -> batch -> prefetch) with the same optimizer, loss and
metrics and the spec's own callbacks (ReduceLROnPlateau). The hand-written side is plain
`model.fit(train_ds, validation_data=val_ds, callbacks=<the spec's>)`; the netspec side is `netspec.train.train` with everything it does each epoch
(history.csv, TensorBoard, checkpoint, state.json, best model). Rounds alternate the two; each
reports the samples/s of epochs 2..N (epoch 1 traces the graph on both sides), and the ratio is
that of the medians.

The digits are tiled 10x (17,970 samples) so that an epoch lasts seconds, as real epochs do; the
fixed per-epoch cost of netspec's bookkeeping is printed separately.

    python bench/train_throughput.py [--rounds 6] [--epochs 4] [--tile 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--tile", type=int, default=10)
    parser.add_argument("--only", choices=("fit", "netspec"), help="run one side only (to look for drift)")
    args = parser.parse_args()

    import numpy as np

    import netspec
    from netspec.cli import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from netspec.data import read_split
    from netspec.train import build_object, compile_model, datasets, train
    from netspec.trainconfig import train_config

    tmp = Path(tempfile.mkdtemp(prefix="netspec-bench-"))
    with np.load(ROOT / "data" / "digits.npz") as z:
        np.savez(tmp / "digits.npz", images=np.tile(z["images"], (args.tile, 1, 1, 1)),
                 labels=np.tile(z["labels"], args.tile))
    text = (ROOT / "specs" / "digits.yaml").read_text(encoding="utf-8")
    text = text.replace("path: ../data/digits.npz", f"path: {tmp / 'digits.npz'}")
    text = text.replace("epochs: 40", f"epochs: {args.epochs}")
    (tmp / "digits.yaml").write_text(text, encoding="utf-8")
    spec = netspec.load(tmp / "digits.yaml")
    config = train_config(spec)
    train_data, val_data = read_split(spec, config)
    n = len(train_data)

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

    def keras_fit(k: int) -> EpochTimer:
        keras.utils.set_random_seed(config.seed)
        model = spec.build()
        compile_model(model, config)
        train_ds, val_ds = datasets(spec, config, train_data, val_data)
        timer = EpochTimer()
        model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=0, shuffle=False,
                  callbacks=[*(build_object(cb) for cb in config.callbacks), timer])
        return timer

    def netspec_train(k: int) -> EpochTimer:
        timer = EpochTimer()
        train(spec, run_dir=tmp / f"run{k}", verbose=0, callbacks=[timer])
        return timer

    def rate(seconds: list[float]) -> float:
        return n * (len(seconds) - 1) / sum(seconds[1:])

    plain, ours, plain_cpu, ours_cpu = [], [], [], []
    print(f"digits x{args.tile}: {n:,} training samples, batch {config.batch_size}, {args.epochs} epochs/round, "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs")
    for k in range(args.rounds):
        order = (keras_fit, netspec_train) if k % 2 == 0 else (netspec_train, keras_fit)
        if args.only:
            side = keras_fit if args.only == "fit" else netspec_train
            timer = side(k)
            print(f"round {k + 1}: {args.only} {rate(timer.wall):6.0f} samples/s")
            continue
        timers = {f.__name__: f(k) for f in order}
        a, b = timers["keras_fit"], timers["netspec_train"]
        plain.append(rate(a.wall))
        ours.append(rate(b.wall))
        plain_cpu.append(rate(a.cpu))
        ours_cpu.append(rate(b.cpu))
        print(f"round {k + 1}: model.fit {plain[-1]:6.0f} samples/s   netspec train {ours[-1]:6.0f} samples/s   "
              f"ratio {ours[-1] / plain[-1]:.3f}   (per CPU-second: {ours_cpu[-1] / plain_cpu[-1]:.3f})")
    if args.only:
        return 0
    mp, mo = statistics.median(plain), statistics.median(ours)
    cp, co = statistics.median(plain_cpu), statistics.median(ours_cpu)

    # netspec's fixed per-epoch bookkeeping, timed alone on the trained model (best model saved each epoch
    # here, the worst case).
    from netspec.runs import RunDir, RunState
    from netspec.train import record_epoch

    model = spec.build()
    compile_model(model, config)
    model.optimizer.build(model.trainable_variables)
    run = RunDir(tmp / "bookkeeping")
    run.start(None, "")
    state, rows, costs = RunState(epochs=10 ** 6), [], []
    for e in range(1, 11):
        t0 = time.perf_counter()
        rows.append({"epoch": e, "loss": 1.0 / e, "val_loss": 1.0 / e})
        run.write_history(rows)
        record_epoch(run, state, model, rows[-1], "val_loss", False, [])
        costs.append(time.perf_counter() - t0)
    print(f"median: model.fit {mp:.0f} samples/s, netspec train {mo:.0f} samples/s; ratio {mo / mp:.3f} "
          f"(target >= 0.97: {'met' if mo / mp >= 0.97 else 'NOT MET'})")
    print(f"median per CPU-second (less sensitive to other load on the machine): model.fit {cp:.0f}, "
          f"netspec train {co:.0f}; ratio {co / cp:.3f}")
    print(f"netspec bookkeeping per epoch (history + best model + checkpoint + state): "
          f"{statistics.median(costs) * 1000:.0f} ms median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
