"""A training process killed with SIGKILL mid-epoch resumes from its last checkpoint: same final epoch
count, no lost or repeated epoch, optimizer state (its step counter and moments) carried over."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from conftest import ROOT

EPOCHS, BATCH = 5, 2
SPEC = textwrap.dedent(f"""\
    netspec: 1
    name: killme
    inputs: {{image: [8, 8, 1]}}
    nodes:
      - {{name: flat, type: Flatten}}
      - {{name: hidden, type: Dense, units: 16, activation: relu}}
      - {{name: probs, type: Dense, units: 10, activation: softmax}}
    train:
      data: {{source: dataset, name: digits, validation_split: 0.25}}
      batch_size: {BATCH}
      epochs: {EPOCHS}
      optimizer: {{type: Adam, learning_rate: 0.001}}
      loss: sparse_categorical_crossentropy
      metrics: [accuracy]
      seed: 7
    """)
STEPS = -(-1348 // BATCH)


def netspec_train(tmp_path, *extra, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "netspec", "train", str(tmp_path / "s.yaml"), "--run-dir",
                             str(tmp_path / "run"), "--format", "json", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def epochs_done(run) -> int:
    try:
        return json.loads((run / "state.json").read_text())["epochs_done"]
    except (FileNotFoundError, ValueError):
        return 0


def optimizer_state(path):
    """(Adam's step counter, its moment arrays) from a checkpoint: o0 iterations, o1 learning rate."""
    with np.load(path) as z:
        keys = sorted((k for k in z.files if k.startswith("o")), key=lambda k: int(k[1:]))
        return int(z["o0"]), [z[k] for k in keys[2:]]


def test_sigkill_mid_epoch_then_resume(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC, encoding="utf-8")
    run = tmp_path / "run"
    proc = netspec_train(tmp_path)
    deadline = time.time() + 300
    while epochs_done(run) < 2:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "training too slow"
        time.sleep(0.05)
    time.sleep(0.5)  # an epoch takes seconds (674 steps): this is inside epoch 3
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 2 and not state["finished"], "the kill did not land mid-epoch 3"
    steps, moments = optimizer_state(run / state["checkpoint"])
    assert steps == 2 * STEPS and all(np.abs(m).sum() > 0 for m in moments)

    proc = netspec_train(tmp_path, "--resume")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["epochs"] == EPOCHS
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))  # none lost, none repeated
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == EPOCHS and state["finished"]
    steps, _ = optimizer_state(run / state["checkpoint"])
    assert steps == EPOCHS * STEPS  # the optimizer continued from epoch 2's state, it did not restart
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert len(leftovers) <= 1  # at most the half-written file of the killed epoch, never read
