"""``distribute: multi_worker``: data-parallel training over several processes or machines with
``tf.distribute.MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG`` environment variable.

Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585: it hands ``PerReplica`` values
to ops that expect tensors), so each step is Keras's own ``model.train_step`` run by
``strategy.run``: the same loss, the same gradient all-reduce and optimizer update as ``fit``. The
spec's callbacks, the progress bar and the run directory are driven the way ``fit`` drives them.
Validation runs on every worker over the whole validation set with the same weights, so every
worker sees the same ``val_*`` values and callbacks (early stopping) decide alike.
"""

from __future__ import annotations

import json
import os

from .config import SpecView, TrainConfig
from .runs import RunDir, RunState, load_checkpoint
from .session import (TrainResult, build_object, compile_model, datasets, dtype_policy, finish, make_recorder,
                      start_run, tensorboard_callback)
from ..errors import TrainError
from ..kerasapi import assign_weights


def cluster_spec() -> tuple[dict, str, int]:
    """(cluster, task type, task index) from ``TF_CONFIG``, checked.

    Raises:
        TrainError: TF_CONFIG is missing or malformed.
    """
    text = os.environ.get("TF_CONFIG")
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    if not text:
        raise TrainError(f"distribute: multi_worker needs the TF_CONFIG environment variable on every worker, "
                         f"e.g. {example}")
    try:
        cfg = json.loads(text)
        cluster, task = cfg["cluster"], cfg["task"]
        kind, index = task["type"], int(task["index"])
        workers = cluster[kind]
    except (ValueError, KeyError, TypeError):
        workers = None
    if not isinstance(workers, list) or not 0 <= index < len(workers):
        raise TrainError(f"TF_CONFIG is not a valid cluster description; expected e.g. {example}")
    return cluster, kind, index


_STRATEGY = None


def start_strategy():
    """Create the process's MultiWorkerMirroredStrategy (once); it must precede every TensorFlow op.

    ``netspec train`` calls this before TensorFlow runs anything. From Python, call it before
    using TensorFlow, then :func:`netspec.train.train`.

    Raises:
        TrainError: TF_CONFIG is missing or malformed, or TensorFlow has already started.
    """
    global _STRATEGY
    if _STRATEGY is not None:
        return _STRATEGY
    cluster_spec()
    import tensorflow as tf

    try:
        with _quiet_stderr():
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        raise TrainError("distribute: multi_worker must set up TensorFlow's collective ops before TensorFlow runs "
                         "anything; in Python, call netspec.train.distribute.start_strategy() first "
                         f"({e})") from None
    return _STRATEGY


class _quiet_stderr:
    """gRPC and the collective runtime log their start-up through file descriptor 2; keep it out
    unless ``NETSPEC_TF_LOGS=1`` (replayed if the block fails)."""

    def __enter__(self):
        import tempfile
        import sys

        self.active = os.environ.get("NETSPEC_TF_LOGS") != "1"
        if self.active:
            sys.stderr.flush()
            self.saved = os.dup(2)
            self.sink = tempfile.TemporaryFile()
            os.dup2(self.sink.fileno(), 2)
        return self

    def __exit__(self, kind, value, tb):
        import sys

        if self.active:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            if kind is not None:
                self.sink.seek(0)
                sys.stderr.write(self.sink.read().decode(errors="replace"))
            self.sink.close()
        return False


def is_chief(kind: str, index: int) -> bool:
    """Whether this task writes the run directory itself (the chief, or worker 0 of a chief-less cluster)."""
    return kind == "chief" or (kind == "worker" and index == 0)


def train_multi_worker(spec: SpecView, config: TrainConfig, run: RunDir, train_data, val_data, total: int,
                       state: RunState | None, verbose: int | str, check_only: bool) -> TrainResult | None:
    """Train with MultiWorkerMirroredStrategy; every worker runs this with its own TF_CONFIG.

    The chief (worker 0) writes ``run``; worker k writes ``run/workers/worker-k`` (the same files),
    so that workers sharing a directory never write the same file.

    Args:
        train_data, val_data: as :func:`netspec.train.data.read_split` returns them.
        total: the epoch count the run ends at.
        state: the state of the run to resume, or None for a fresh run.

    Returns:
        A :class:`~netspec.train.session.TrainResult`, or None with ``check_only``.

    Raises:
        TrainError: the global batch does not divide over the replicas, or makes no full batch.
    """
    import keras
    import tensorflow as tf

    from .data import check_labels

    cluster, kind, index = cluster_spec()
    chief = is_chief(kind, index)
    strategy = start_strategy()
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise TrainError(f"batch_size {config.batch_size} is the global batch; it must divide evenly over the "
                         f"{replicas} replicas of this cluster", path=("train", "batch_size"),
                         location=spec.document.source.value(("train", "batch_size")))
    seed = 0 if config.seed is None else config.seed  # every worker must shuffle alike
    keras.utils.set_random_seed(seed)
    with dtype_policy(config.mixed_precision):
        with strategy.scope():
            model = spec.build()
            compile_model(model, config)
            model.optimizer.build(model.trainable_variables)
        evaluator = None
        if val_data is not None:  # a plain copy: validation needs no collectives
            evaluator = spec.build()
            compile_model(evaluator, config)
    shapes = {name: tuple(t.shape[1:]) for name, t in zip(config.outputs, model.outputs)}
    check_labels(spec, config, config.data, train_data, shapes)
    if val_data is not None:
        check_labels(spec, config, config.validation or config.data, val_data, shapes)
    if check_only:
        return None
    own = run if chief else RunDir(run.root / "workers" / f"worker-{index}")
    callbacks = [build_object(cb) for cb in config.callbacks]
    steps = config.steps_per_epoch or len(train_data) // config.batch_size
    if steps == 0:  # refused before the run directory is touched
        raise TrainError(f"{len(train_data)} training samples make no full batch of {config.batch_size}")
    done = 0
    if state is not None:
        assert state.checkpoint is not None  # a resumed state: the fit path refused one without a checkpoint
        load_checkpoint(model, run.root / state.checkpoint)
        done = state.epochs_done
        if not chief:
            own.root.mkdir(parents=True, exist_ok=True)
    else:
        state = start_run(spec, config, own, total)
    recorder = make_recorder(own, state, own.read_history()[:done], callbacks, config)
    all_callbacks = [*callbacks, *([tensorboard_callback(own)] if chief else []), recorder]
    cbs = keras.callbacks.CallbackList(all_callbacks, add_history=False, add_progbar=bool(verbose) and chief,
                                       model=model, verbose=1 if verbose == "auto" else verbose, epochs=total,
                                       steps=steps)

    @tf.function
    def train_step(batch):
        logs = strategy.run(model.train_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in logs.items()}

    if chief and verbose:
        workers = sum(len(v) for v in cluster.values())
        print(f"netspec train: {spec.name}: {len(train_data):,} training samples on {workers} workers "
              f"({replicas} replicas); run directory {run.root}", flush=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(done, total):
        # One pipeline per epoch, seeded by the epoch: every worker draws the same order (so the
        # DATA shards are disjoint), and a resumed run draws the orders an unbroken one would.
        config_e = _with_seed(config, seed + epoch)
        train_ds, val_ds = datasets(spec, config_e, train_data, val_data, drop_remainder=True)
        if config.steps_per_epoch:
            train_ds = train_ds.repeat().take(steps)
        dist = strategy.experimental_distribute_dataset(train_ds.with_options(options))
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        logs = {}
        for step, batch in enumerate(dist):
            cbs.on_train_batch_begin(step)
            logs = train_step(batch)
            cbs.on_train_batch_end(step, logs)
        logs = {k: float(v) for k, v in logs.items()}
        if evaluator is not None:
            assign_weights(evaluator, model.get_weights())
            val = evaluator.evaluate(val_ds, verbose=0, return_dict=True)
            logs.update({f"val_{k}": float(v) for k, v in val.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs if done < total else {})
    return finish(spec, own, state, recorder.rows, config, done, verbose if chief else 0, replicas, model)


def _with_seed(config: TrainConfig, seed: int) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, seed=seed)
