"""``netspec train``: build the spec's model, check its data, and fit it with a resumable run directory.

Training is Keras's own ``model.fit`` on a ``tf.data`` pipeline (and, for ``distribute: mirrored``,
under ``tf.distribute.MirroredStrategy``); ``distribute: multi_worker`` runs the custom loop in
``netspec.train.distribute``. Both paths share :mod:`netspec.train.session`; neither imports the
other's helpers (this module only hands a multi-worker run over). Objects are built only from the
whitelists in ``netspec.train.names``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

from .config import SpecView, TrainConfig, train_config
from .runs import RunDir, RunState, load_checkpoint
from .session import (TrainResult, build_object, compile_model, datasets, dtype_policy, finish, make_recorder, say,
                      start_run, tensorboard_callback)
from ..errors import TrainError

if TYPE_CHECKING:
    from .data import Arrays, Files

    Data = Arrays | Files

__all__ = ["TrainResult", "strategy_for", "train"]


def strategy_for(config: TrainConfig):
    """The tf.distribute strategy (a no-op default for ``none``)."""
    import tensorflow as tf

    if config.distribute == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


# -- the run ---------------------------------------------------------------------------------------------


def train(spec: SpecView, *, epochs: int | None = None, resume: bool = False,
          run_dir: str | os.PathLike | None = None, verbose: int | Literal["auto"] = "auto",
          check_only: bool = False, callbacks: list | None = None,
          data: tuple[Data, Data | None] | None = None) -> TrainResult | None:
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
    for dc, split in ((config.data, train_data), (config.validation or config.data, val_data)):
        if split is not None:
            check_labels(spec, config, dc, split, shapes)
            if isinstance(split, Files):
                check_images(spec, dc, split)
    if check_only:
        return None
    done = state.epochs_done if state is not None else 0
    # Everything that can refuse the run happens before the run directory is touched.
    train_ds, val_ds = datasets(spec, config, train_data, val_data, initial_epoch=done)
    extra, callbacks = callbacks, [build_object(cb) for cb in config.callbacks]
    if state is not None:
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
        assert state.checkpoint is not None  # _resume_state refuses a run without a checkpoint
        load_checkpoint(model, run.root / state.checkpoint)
    else:
        state = start_run(spec, config, run, total)
    say(verbose, f"{spec.name}: {len(train_data):,} training samples"
         + (f", {len(val_data):,} validation" if val_data is not None else "")
         + (f"; resuming after epoch {done}" if done else "") + f"; run directory {run.root}")
    recorder = make_recorder(run, state, run.read_history()[:done], callbacks, config)
    if done < total and not state.finished:
        with out_of_memory(run, state):
            model.fit(train_ds, validation_data=val_ds, epochs=total, initial_epoch=done, verbose=verbose,
                      shuffle=False, steps_per_epoch=config.steps_per_epoch,
                      callbacks=[*callbacks, tensorboard_callback(run), recorder, *(extra or [])])
    result = finish(spec, run, state, recorder.rows, config, done, verbose, strategy.num_replicas_in_sync, model)
    result.epoch_seconds = recorder.seconds
    return result


@contextlib.contextmanager
def out_of_memory(run: RunDir, state: RunState) -> Iterator[None]:
    """An allocation failure during training as a :class:`TrainError`; state.json still names the last
    complete epoch (it is replaced only after its checkpoint), so ``--resume`` continues from there."""
    import tensorflow as tf

    try:
        yield
    except (MemoryError, tf.errors.ResourceExhaustedError) as e:
        kept = f"the run keeps epoch {state.epochs_done} ({run.root / 'state.json'}); " if state.epochs_done else ""
        raise TrainError(f"training ran out of memory in epoch {state.epochs_done + 1} ({type(e).__name__}); {kept}"
                         "lower train.batch_size, or the model's size") from None


def _run_dir(spec: SpecView, run_dir: str | os.PathLike | None) -> RunDir:
    root = Path(run_dir) if run_dir is not None else Path("runs") / spec.name
    if root.exists() and not root.is_dir():
        raise TrainError(f"--run-dir {root} is a file, not a directory")
    if root.is_dir() and any(root.iterdir()) and not (root / "state.json").is_file() \
            and not (root / "resolved.yaml").is_file():
        raise TrainError(f"--run-dir {root} is not empty and holds no netspec run; choose another directory")
    return RunDir(root)


def _resume_state(spec: SpecView, run: RunDir, epochs: int | None) -> RunState:
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
