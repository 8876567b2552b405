"""``netspec train``: build the spec's model, check its data, and fit it with a resumable run directory.

Training is Keras's own ``model.fit`` on a ``tf.data`` pipeline (and, for ``distribute: mirrored``,
under ``tf.distribute.MirroredStrategy``); ``distribute: multi_worker`` runs the custom loop in
``netspec.train.distribute``. Objects are built only from the whitelists in ``netspec.train.names``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import names as N
from .runs import load_checkpoint
from .config import Obj, TrainConfig, TrainError, train_config


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


# -- building whitelisted objects ------------------------------------------------------------------


def build_object(obj: Obj, **overrides):
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
def dtype_policy(name: str | None):
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


def strategy_for(config: TrainConfig):
    """The tf.distribute strategy (a no-op default for ``none``)."""
    import tensorflow as tf

    if config.distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


# -- the run ---------------------------------------------------------------------------------------------


def _resolved_text(spec, config: TrainConfig, epochs: int) -> str:
    import yaml

    return yaml.safe_dump({"name": spec.name, "params": spec.graph.params, "epochs": epochs,
                           "train": spec.section("train")}, sort_keys=False)


def _say(verbose, text: str) -> None:
    if verbose:
        print(f"netspec train: {text}", flush=True)


def train(spec, *, epochs: int | None = None, resume: bool = False, run_dir: str | os.PathLike | None = None,
          verbose: int | str = "auto", check_only: bool = False, callbacks: list | None = None,
          data: tuple | None = None) -> TrainResult | None:
    """Train the spec's model as its ``train:`` section says, in a run directory.

    Args:
        spec: a loaded :class:`netspec.Spec`.
        epochs: overrides ``train.epochs`` (the total, counting epochs of a resumed run).
        resume: continue the run in ``run_dir`` from its last checkpoint (model and optimizer
            state, callback state, best value); the run ends at the same epoch count.
        run_dir: default ``runs/<spec name>``.
        verbose: Keras's ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        check_only: check the section and the data against the model, then stop (no training).
        callbacks: extra Keras callbacks from Python code (run after netspec's own; a spec never
            names these).
        data: (training, validation) as :func:`netspec.train.data.read_split` returns them, when the
            caller has read them already (the CLI does, so a data error costs no TensorFlow start).

    Returns:
        A :class:`TrainResult`, or None with ``check_only``.

    Raises:
        TrainError, DataError: the section, the data or the run directory cannot be used; raised
            before any epoch starts.
    """
    from .data import check_images, check_labels, read_split, Files

    config = train_config(spec)
    run = _run_dir(spec, run_dir)
    state = None
    if resume:
        state = _resume_state(spec, run, epochs)
        epochs = state.epochs
    total = epochs or config.epochs
    train_data, val_data = data if data is not None else read_split(spec, config)
    if config.distribute == "multi_worker":
        from .distribute import train_multi_worker

        return train_multi_worker(spec, config, run, train_data, val_data, total, state, verbose, check_only)

    import keras

    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    strategy = strategy_for(config)
    with dtype_policy(config.mixed_precision), strategy.scope():
        model = spec.build()
        compile_model(model, config)
    shapes = {name: tuple(t.shape[1:]) for name, t in zip(config.outputs, model.outputs)}
    for dc, data in ((config.data, train_data), (config.validation or config.data, val_data)):
        if data is not None:
            check_labels(spec, config, dc, data, shapes)
            if isinstance(data, Files):
                check_images(spec, dc, data)
    if check_only:
        return None
    done = state.epochs_done if state is not None else 0
    # Everything that can refuse the run happens before the run directory is touched.
    train_ds, val_ds = datasets(spec, config, train_data, val_data, initial_epoch=done)
    extra, callbacks = callbacks, [build_object(cb) for cb in config.callbacks]
    if state is not None:
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
        load_checkpoint(model, run.root / state.checkpoint)
    else:
        from .runs import RunState

        state = RunState(epochs=total, spec=spec.path)
        run.start(_spec_text(spec), _resolved_text(spec, config, total), state)
    _say(verbose, f"{spec.name}: {len(train_data):,} training samples"
         + (f", {len(val_data):,} validation" if val_data is not None else "")
         + (f"; resuming after epoch {done}" if done else "") + f"; run directory {run.root}")
    recorder = make_recorder(run, state, run.read_history()[:done], callbacks, config)
    if done < total and not state.finished:
        with out_of_memory(run, state):
            model.fit(train_ds, validation_data=val_ds, epochs=total, initial_epoch=done, verbose=verbose,
                      shuffle=False, steps_per_epoch=config.steps_per_epoch,
                      callbacks=[*callbacks, _tensorboard(run), recorder, *(extra or [])])
    result = finish(spec, run, state, recorder.rows, config, done, verbose, strategy.num_replicas_in_sync, model)
    result.epoch_seconds = recorder.seconds
    return result


@contextlib.contextmanager
def out_of_memory(run, state):
    """An allocation failure during training as a :class:`TrainError`; state.json still names the last
    complete epoch (it is replaced only after its checkpoint), so ``--resume`` continues from there."""
    import tensorflow as tf

    try:
        yield
    except (MemoryError, tf.errors.ResourceExhaustedError) as e:
        kept = f"the run keeps epoch {state.epochs_done} ({run.root / 'state.json'}); " if state.epochs_done else ""
        raise TrainError(f"training ran out of memory in epoch {state.epochs_done + 1} ({type(e).__name__}); {kept}"
                         "lower train.batch_size, or the model's size") from None


def datasets(spec, config: TrainConfig, train_data, val_data, *, initial_epoch: int = 0, drop_remainder=False):
    """The training and validation ``tf.data`` pipelines."""
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


def _tensorboard(run):
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


def make_recorder(run, state, rows: list, callbacks: list, config: TrainConfig):
    """The callback that records each epoch: history.csv, best model, checkpoint, state.json."""
    import keras

    from .runs import restore_callback_state

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


def record_epoch(run, state, model, row: dict, monitor: str, higher: bool, callbacks: list) -> None:
    """The best weights (when ``monitor`` improved), then the checkpoint and state.json for this epoch."""
    from .runs import callback_state, save_callback_weights

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


def finish(spec, run, state, rows: list, config: TrainConfig, done: int, verbose, replicas: int = 1,
           model=None) -> TrainResult:
    state.finished = True
    run.save_state(state)
    if model is not None:
        run.save_best(model)
    run.plot(rows, f"{spec.name}: learning curves")
    best = f"best {config.monitor} {state.best:.4f} at epoch {state.best_epoch}" if state.best is not None else "no best"
    _say(verbose, f"{state.epochs_done} epochs; {best}; best model {run.best_model}; history {run.history_file}; "
         f"curves {run.plot_file}")
    return TrainResult(run.root, run.best_model, state.epochs_done, state.epochs, config.monitor, state.best,
                       state.best_epoch, rows, done, replicas)


def _spec_text(spec) -> str | None:
    if spec.path and Path(spec.path).is_file():
        return Path(spec.path).read_text(encoding="utf-8")
    return None


def _run_dir(spec, run_dir):
    from .runs import RunDir

    root = Path(run_dir) if run_dir is not None else Path("runs") / spec.name
    if root.exists() and not root.is_dir():
        raise TrainError(f"--run-dir {root} is a file, not a directory")
    if root.is_dir() and any(root.iterdir()) and not (root / "state.json").is_file() \
            and not (root / "resolved.yaml").is_file():
        raise TrainError(f"--run-dir {root} is not empty and holds no netspec run; choose another directory")
    return RunDir(root)


def _resume_state(spec, run, epochs: int | None):
    if not run.exists():
        raise TrainError(f"nothing to resume: {run.root} holds no run (no state.json); train without --resume")
    try:
        state = run.state()
    except (OSError, ValueError, TypeError) as e:
        raise TrainError(f"cannot resume: {run.root / 'state.json'} is damaged ({str(e)[:80]})") from None
    saved = (run.root / "resolved.yaml").read_text(encoding="utf-8") if (run.root / "resolved.yaml").is_file() else ""
    import yaml

    before = yaml.safe_load(saved) or {}
    now = {"name": spec.name, "params": spec.graph.params, "train": spec.section("train")}
    if {k: before.get(k) for k in now} != now:
        raise TrainError(f"the spec's params or train section differ from the run in {run.root} "
                         f"(its {run.root / 'resolved.yaml'}); resume with the same spec and --set values")
    if epochs is not None:
        if epochs < state.epochs_done:
            raise TrainError(f"--epochs {epochs} is fewer than the {state.epochs_done} epochs the run has done")
        if epochs != state.epochs:
            state.finished = False
        state.epochs = epochs
    if state.checkpoint is None or not (run.root / state.checkpoint).is_file():
        raise TrainError(f"the run in {run.root} has no checkpoint to resume from ({state.checkpoint})")
    if state.finished and state.epochs_done >= state.epochs:
        print(f"netspec train: the run in {run.root} is already finished ({state.epochs_done} epochs)",
              file=sys.stderr)
    return state
