"""The run directory of ``netspec train``: resolved spec, per-epoch checkpoints (atomic), run state,
the best model, ``history.csv`` and a PNG of the learning curves.

Layout of ``runs/<spec name>/``::

    spec.yaml            the spec file as given
    resolved.yaml        params (with --set overrides) and the train section as used
    state.json           epochs done, the checkpoint that holds them, best value, callback state
    checkpoints/epoch-NNNN.npz   model + optimizer variables after epoch NNNN (the last two kept)
    checkpoints/best.npz         the best epoch's model weights (by train.checkpoint.monitor)
    checkpoints/callback-K-epoch-NNNN.npz   callback K's best weights (EarlyStopping's
                         restore_best_weights copy), so a resumed run restores what it would have
    best.keras           the best model, written from best.npz when training stops
    history.csv          one row per epoch
    logs/                TensorBoard
    curves.png           learning curves, written when training stops

A checkpoint is written to a temporary name and renamed; ``state.json`` is replaced only after its
checkpoint is complete, so a run killed at any instant resumes from a consistent epoch. Checkpoints
are plain arrays in variable order (a few ms per epoch, where a Keras save takes ~50 ms): a resumed
run rebuilds the model and optimizer from the same spec (checked) and assigns them back.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

STATE = "state.json"
_CHECKPOINT = re.compile(r"checkpoints/(epoch-\d{4,9}|best|callback-\d{1,4}-epoch-\d{4,9})\.npz")
KEEP_CHECKPOINTS = 2
# Callback attributes that carry state across epochs (restored on --resume).
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``target`` (same name ending), then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp{os.getpid()}.{target.name}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))


@dataclass
class RunState:
    """What ``state.json`` holds."""

    epochs_done: int = 0
    epochs: int = 0
    checkpoint: str | None = None  # relative to the run directory
    best: float | None = None
    best_epoch: int | None = None
    callbacks: list | None = None
    finished: bool = False
    spec: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, allow_nan=True) + "\n"


class RunDir:
    """A run directory (see the module docstring)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def best_model(self) -> Path:
        return self.root / "best.keras"

    @property
    def history_file(self) -> Path:
        return self.root / "history.csv"

    @property
    def plot_file(self) -> Path:
        return self.root / "curves.png"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def exists(self) -> bool:
        return (self.root / STATE).is_file()

    def state(self) -> RunState:
        """The run's state.json, checked: numbers where numbers go, and file names inside checkpoints/.

        Raises:
            ValueError: the file is not JSON, or not a state this module writes.
        """
        text = (self.root / STATE).read_text(encoding="utf-8")
        if len(text) > 1 << 20:
            raise ValueError(f"{STATE} is over 1 MiB")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{STATE} is not a JSON object")
        state = RunState(**{k: v for k, v in data.items() if k in RunState.__dataclass_fields__})
        for name in ("epochs_done", "epochs"):
            if type(getattr(state, name)) is not int or not 0 <= getattr(state, name) < 1 << 31:
                raise ValueError(f"{STATE}: {name} is not an epoch count")
        names = [state.checkpoint] + [v.get("best_weights") if isinstance(v, dict) else "?"
                                      for v in state.callbacks or []]
        for checkpoint in names:
            if checkpoint is not None and not (isinstance(checkpoint, str) and _CHECKPOINT.fullmatch(checkpoint)):
                raise ValueError(f"{STATE} names a checkpoint outside checkpoints/")
        return state

    def start(self, spec_text: str | None, resolved: str, state: RunState | None = None) -> None:
        """A fresh run: clear what a previous run left here, then write the spec files and ``state``
        (no epoch done yet), so that a run directory always holds a state.json."""
        for name in (STATE, "best.keras", "history.csv", "curves.png", "spec.yaml", "resolved.yaml"):
            (self.root / name).unlink(missing_ok=True)
        for name in ("checkpoints", "logs"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        if spec_text is not None:
            write_text(self.root / "spec.yaml", spec_text)
        write_text(self.root / "resolved.yaml", resolved)
        if state is not None:
            self.save_state(state)

    @property
    def best_weights(self) -> Path:
        return self.root / "checkpoints" / "best.npz"

    def save_epoch(self, model, state: RunState) -> None:
        """Checkpoint model + optimizer after ``state.epochs_done`` epochs, then point state.json at it."""
        name = f"checkpoints/epoch-{state.epochs_done:04d}.npz"
        atomic_write(self.root / name, lambda p: save_checkpoint(model, p))
        state.checkpoint = name
        self.save_state(state)
        prune_callback_weights(self.root, state.callbacks)
        kept = sorted((self.root / "checkpoints").glob("epoch-*.npz"))[:-KEEP_CHECKPOINTS]
        for old in kept:
            old.unlink(missing_ok=True)

    def save_best_weights(self, model) -> None:
        atomic_write(self.best_weights, lambda p: save_checkpoint(model, p, optimizer=False))

    def save_state(self, state: RunState) -> None:
        write_text(self.root / STATE, state.to_json())

    def save_best(self, model, metadata: Mapping[str, str] | None = None) -> None:
        """best.keras from best.npz (the model's own weights are put back afterwards), with netspec's
        ``metadata`` (the spec's, :meth:`netspec.Spec.metadata`) stamped in it."""
        from ..build.saving import add_keras_metadata

        if not self.best_weights.is_file():
            return
        current = [v.numpy() for v in model.weights]
        load_checkpoint(model, self.best_weights)

        def write(p: Path) -> None:
            model.save(str(p))
            if metadata:
                add_keras_metadata(p, metadata)

        try:
            atomic_write(self.best_model, write)
        finally:
            for v, value in zip(model.weights, current):
                v.assign(value)

    def write_history(self, rows: list[dict]) -> None:
        keys = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in keys})
        write_text(self.history_file, buf.getvalue())

    def read_history(self) -> list[dict]:
        if not self.history_file.is_file():
            return []
        with open(self.history_file, newline="", encoding="utf-8") as f:
            return [{k: (int(v) if k == "epoch" else float(v) if v else None) for k, v in row.items()}
                    for row in csv.DictReader(f)]

    def plot(self, rows: list[dict], title: str) -> None:
        """The learning curves: one panel per quantity, training and validation together."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        quantities = sorted({k[4:] if k.startswith("val_") else k for r in rows for k in r}
                            - {"epoch", "learning_rate", "seconds"})
        if not rows or not quantities:
            return
        quantities.sort(key=lambda q: (not q.endswith("loss"), q))
        fig = Figure(figsize=(5 * min(len(quantities), 3), 3.6 * math.ceil(len(quantities) / 3)), dpi=100)
        epochs = [r["epoch"] for r in rows]
        for i, q in enumerate(quantities):
            ax = fig.add_subplot(math.ceil(len(quantities) / 3), min(len(quantities), 3), i + 1)
            for key, label in ((q, "train"), ("val_" + q, "validation")):
                values = [r.get(key) for r in rows]
                if any(v is not None for v in values):
                    # matplotlib draws a None as a gap; its ArrayLike stubs leave None out
                    ax.plot(epochs, values, marker="o", markersize=3, label=label)  # type: ignore[arg-type]
            ax.set_title(q)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        fig.tight_layout()
        atomic_write(self.plot_file, lambda p: fig.savefig(str(p), format="png"))


def save_checkpoint(model, path, *, optimizer: bool = True) -> None:
    """The model's variables (``w0``...) and, if asked, its optimizer's (``o0``..., iterations first)."""
    arrays = {f"w{i}": v.numpy() for i, v in enumerate(model.weights)}
    if optimizer and model.optimizer is not None:
        arrays.update({f"o{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    _write_npz(path, arrays)


def load_checkpoint(model, path) -> None:
    """Assign a checkpoint's arrays back; the optimizer must be built (``optimizer.build``)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        n_w = sum(1 for k in z.files if k.startswith("w"))
        n_o = sum(1 for k in z.files if k.startswith("o"))
        opt = model.optimizer.variables if n_o and model.optimizer is not None else []
        if n_w != len(model.weights) or (n_o and n_o != len(opt)):
            raise ValueError(f"{path} holds {n_w} model and {n_o} optimizer variables; the model has "
                             f"{len(model.weights)} and {len(opt)}")
        for i, v in enumerate(model.weights):
            v.assign(z[f"w{i}"])
        for i, v in enumerate(opt):
            v.assign(z[f"o{i}"])


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def callback_state(callbacks: list) -> list:
    """The cross-epoch state of the spec's callbacks, as plain data (for state.json)."""
    out = []
    for cb in callbacks:
        attrs = CALLBACK_STATE.get(type(cb).__name__, ())
        out.append({a: _plain(getattr(cb, a, None)) for a in attrs})
    return out


def save_callback_weights(root: Path, callbacks: list, saved: list) -> None:
    """Write each callback's ``best_weights`` copy (EarlyStopping) once per best epoch; name it in ``saved``.

    The file is named by its epoch and written before state.json names it, so a run killed at any
    instant resumes with the copy that belongs to its state.
    """
    for k, (cb, values) in enumerate(zip(callbacks, saved)):
        weights = getattr(cb, "best_weights", None) if getattr(cb, "restore_best_weights", False) else None
        if weights is None:
            continue
        name = f"checkpoints/callback-{k}-epoch-{int(cb.best_epoch) + 1:04d}.npz"
        if not (root / name).is_file():
            atomic_write(root / name, lambda p: _write_npz(p, {f"w{i}": a for i, a in enumerate(weights)}))
        values["best_weights"] = name


def prune_callback_weights(root: Path, saved: list | None) -> None:
    """Remove callback weight copies that state.json no longer names."""
    named = {values.get("best_weights") for values in saved or []}
    for path in (root / "checkpoints").glob("callback-*-epoch-*.npz"):
        if f"checkpoints/{path.name}" not in named:
            path.unlink(missing_ok=True)


def restore_callback_state(root: Path, callbacks: list, saved: list | None) -> None:
    """Put saved state back after Keras's ``on_train_begin`` reset it (``best_weights`` from its file)."""
    import numpy as np

    for cb, values in zip(callbacks, saved or []):
        for attr, value in values.items():
            if attr == "best_weights":
                with np.load(root / value, allow_pickle=False) as z:
                    cb.best_weights = [z[f"w{i}"] for i in range(len(z.files))]
            elif value is not None:
                setattr(cb, attr, value)


def _write_npz(path: Path, arrays: dict) -> None:
    """Arrays named ``w0``..., ``o0``... (the layout of every .npz in a run directory)."""
    import numpy as np

    with open(path, "wb") as f:
        # the keys are w0..., o0..., never savez's own allow_pickle, which numpy's stub cannot rule out
        np.savez(f, **{k: np.asarray(a) for k, a in arrays.items()})  # type: ignore[arg-type]


def _plain(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if isinstance(v, int) else f
