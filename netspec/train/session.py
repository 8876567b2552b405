"""What the fit path (:mod:`netspec.train.fit`) and the multi-worker path (:mod:`netspec.train.distribute`)
share: the compiled model, the ``tf.data`` pipelines, the callbacks that record each epoch into the run
directory (history, best weights, checkpoint, TensorBoard scalars), and the end of a run.

Keras and TensorFlow are imported inside the functions: importing this module costs neither.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import names as N
from .config import Obj, TrainConfig
from .runs import RunDir, RunState, callback_state, restore_callback_state, save_callback_weights
from ..errors import TrainError


@dataclass
class TrainResult:
    """What a training run did."""

    run_dir: Path
    best_model: Path
    epochs_done: int
    epochs: int
    monitor: str
    best: float | None
    best_epoch: int | None
    history: list  # one dict per epoch
    resumed_from: int  # epochs done before this call (0 for a fresh run)
    replicas: int = 1  # devices (mirrored) or workers x devices (multi_worker) that trained in sync
    epoch_seconds: list | None = None  # wall time of each epoch of this call, checkpointing included


# -- the model ---------------------------------------------------------------------------------------


def build_object(obj: Obj, **overrides: object):
    """A Keras object from a checked :class:`Obj` (a string identifier is returned as is for ``compile``)."""
    import keras

    modules = {"optimizer": (keras.optimizers, N.OPTIMIZERS), "lrSchedule": (keras.optimizers.schedules, N.LR_SCHEDULES),
               "loss": (keras.losses, N.LOSSES), "metric": (keras.metrics, N.METRICS),
               "callback": (keras.callbacks, N.CALLBACKS)}
    module, allowed = modules[obj.kind]
    name = obj.name
    if obj.kind == "optimizer" and not obj.is_class:
        name = N.OPTIMIZER_STRINGS[name]
    elif obj.kind == "loss" and not obj.is_class and overrides:
        name = N.LOSS_STRINGS[name]
    elif not obj.is_class:
        return name
    if name not in allowed:  # checked by train_config; never build anything else
        raise TrainError(f"{name} is not whitelisted")
    args = dict(obj.args)
    if isinstance(args.get("learning_rate"), dict):
        sched = args["learning_rate"]
        args["learning_rate"] = build_object(Obj("lrSchedule", sched["type"],
                                                 {k: v for k, v in sched.items() if k != "type"}, obj.path, True))
    args.update(overrides)
    return getattr(module, name)(**args)


def compile_model(model, config: TrainConfig) -> None:
    """``model.compile`` with the spec's optimizer, losses, loss weights and metrics."""
    multi = len(config.outputs) > 1
    losses = {k: build_object(v) for k, v in config.losses.items()}
    metrics = {k: [build_object(m) for m in v] for k, v in config.metrics.items()}
    model.compile(
        optimizer=build_object(config.optimizer),
        loss=losses if multi else losses[config.outputs[0]],
        loss_weights=config.loss_weights if multi else None,
        metrics=metrics if multi else metrics[config.outputs[0]],
    )


@contextlib.contextmanager
def dtype_policy(name: str | None) -> Iterator[None]:
    """Keras's global dtype policy set to ``name`` for the block (mixed precision), then restored."""
    import keras

    if name is None:
        yield
        return
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


# -- data and run-directory text ----------------------------------------------------------------------


def datasets(spec, config: TrainConfig, train_data, val_data, *, initial_epoch: int = 0,
             drop_remainder: bool = False) -> tuple:
    """The training and validation ``tf.data`` pipelines (the validation one None without validation data).

    Args:
        train_data, val_data: :class:`~netspec.train.data.Arrays` or :class:`~netspec.train.data.Files`
            (``val_data`` may be None).
        initial_epoch: epochs done before (a resumed run shuffles with a seed of its own).
        drop_remainder: drop the last partial batch (the multi-worker path's even shards).
    """
    from .data import make_dataset

    inputs = tuple(d.name for d in spec.graph.inputs)
    dtypes = {d.name: d.dtype for d in spec.graph.inputs if d.dtype != "string"}
    seed = None if config.seed is None else config.seed + initial_epoch  # a resumed run gets new orders
    shuffle = config.data.shuffle if config.data.shuffle is not None else True
    train_ds = make_dataset(train_data, input_dtypes=dtypes, inputs=inputs, outputs=config.outputs,
                            batch_size=config.batch_size, shuffle=shuffle, cache=config.data.cache, seed=seed,
                            drop_remainder=drop_remainder)
    val_ds = None
    if val_data is not None:
        vdc = config.validation or config.data
        val_ds = make_dataset(val_data, input_dtypes=dtypes, inputs=inputs, outputs=config.outputs,
                              batch_size=config.batch_size, shuffle=bool(config.validation and vdc.shuffle),
                              cache=vdc.cache, seed=seed)
    return train_ds, val_ds


def start_run(spec, config: TrainConfig, run: RunDir, epochs: int) -> RunState:
    """A fresh run: the spec as written, the resolved params and train section, and a new state.json.

    Returns:
        The run's :class:`~netspec.train.runs.RunState` (no epoch done yet).
    """
    state = RunState(epochs=epochs, spec=spec.path)
    run.start(_spec_text(spec), _resolved_text(spec, config, epochs), state)
    return state


def _resolved_text(spec, config: TrainConfig, epochs: int) -> str:
    import yaml

    return yaml.safe_dump({"name": spec.name, "params": spec.graph.params, "epochs": epochs,
                           "train": spec.section("train")}, sort_keys=False)


def say(verbose: int | str, text: str) -> None:
    """A ``netspec train:`` progress line on stdout, unless ``verbose`` is 0."""
    if verbose:
        print(f"netspec train: {text}", flush=True)


def _spec_text(spec) -> str | None:
    """The spec file as written (None for a spec given as text)."""
    if spec.path and Path(spec.path).is_file():
        return Path(spec.path).read_text(encoding="utf-8")
    return None


# -- callbacks and the end of a run ------------------------------------------------------------------


def tensorboard_callback(run: RunDir):
    """Epoch scalars for TensorBoard, laid out as ``keras.callbacks.TensorBoard`` lays them out
    (``logs/train`` and ``logs/validation``, ``epoch_<name>``).

    Keras's own callback hooks every batch and cost ~15% of training throughput here (measured with
    bench/train_throughput.py); netspec writes the same epoch scalars once per epoch instead.
    """
    import keras
    import tensorflow as tf

    class EpochScalars(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.writers: dict = {}

        def _writer(self, part: str):
            if part not in self.writers:
                self.writers[part] = tf.summary.create_file_writer(str(run.logs / part))
            return self.writers[part]

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                with self._writer(part).as_default():
                    tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)
            if "learning_rate" not in (logs or {}):
                rate = _learning_rate(self.model)
                if rate is not None:
                    with self._writer("train").as_default():
                        tf.summary.scalar("epoch_learning_rate", rate, step=epoch)
            for writer in self.writers.values():
                writer.flush()

        def on_train_end(self, logs=None):
            for writer in self.writers.values():
                writer.close()
            self.writers.clear()

    return EpochScalars()


def make_recorder(run: RunDir, state: RunState, rows: list, callbacks: list, config: TrainConfig):
    """The callback that records each epoch: history.csv, best model, checkpoint, state.json.

    Args:
        rows: the history so far (a resumed run's epochs); each epoch appends its row.
        callbacks: the spec's callbacks, whose state is saved each epoch and restored at the start.

    Returns:
        A Keras callback with ``.rows`` (the history) and ``.seconds`` (the wall time of each epoch).
    """
    import keras

    higher = config.monitor_mode == "max"

    class Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows = rows
            self.seconds: list[float] = []
            self.start = 0.0

        def on_train_begin(self, logs=None):
            restore_callback_state(run.root, callbacks, state.callbacks)  # after their own on_train_begin reset

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row.setdefault("learning_rate", _learning_rate(self.model))
            row["seconds"] = round(time.perf_counter() - self.start, 4)  # training + validation
            self.rows.append(row)
            run.write_history(self.rows)
            record_epoch(run, state, self.model, row, config.monitor, higher, callbacks)
            self.seconds.append(time.perf_counter() - self.start)

    return Recorder()


def record_epoch(run: RunDir, state: RunState, model, row: dict, monitor: str, higher: bool,
                 callbacks: list) -> None:
    """The best weights (when ``monitor`` improved), then the checkpoint and state.json for this epoch."""
    value = row.get(monitor)
    if value is not None and (state.best is None or (value > state.best if higher else value < state.best)):
        state.best, state.best_epoch = value, row["epoch"]
        run.save_best_weights(model)
    state.epochs_done = row["epoch"]
    state.callbacks = callback_state(callbacks) if callbacks else None
    if state.callbacks:
        save_callback_weights(run.root, callbacks, state.callbacks)
    state.finished = bool(getattr(model, "stop_training", False)) or state.epochs_done >= state.epochs
    run.save_epoch(model, state)


def _learning_rate(model) -> float | None:
    import keras

    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


def finish(spec, run: RunDir, state: RunState, rows: list, config: TrainConfig, done: int, verbose: int | str,
           replicas: int = 1, model=None) -> TrainResult:
    """End a run: state.json marked finished, best.keras from the best weights, the learning curves.

    Args:
        rows: the history, one dict per epoch.
        done: epochs done before this call (``TrainResult.resumed_from``).
        verbose: 0 prints nothing; otherwise a summary line.
        replicas: the devices or workers that trained in sync.
        model: the trained model (its weights are kept; best.keras gets the best epoch's).
    """
    state.finished = True
    run.save_state(state)
    if model is not None:
        run.save_best(model, spec.metadata() if hasattr(spec, "metadata") else None)
    run.plot(rows, f"{spec.name}: learning curves")
    best = f"best {config.monitor} {state.best:.4f} at epoch {state.best_epoch}" if state.best is not None else "no best"
    say(verbose, f"{state.epochs_done} epochs; {best}; best model {run.best_model}; history {run.history_file}; "
         f"curves {run.plot_file}")
    return TrainResult(run.root, run.best_model, state.epochs_done, state.epochs, config.monitor, state.best,
                       state.best_epoch, rows, done, replicas)
