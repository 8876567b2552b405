"""Distribution on tf.distribute: `mirrored` over two logical CPU devices, and `multi_worker` as two
worker processes on 127.0.0.1. Both train one model: their weights equal a single-process run's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import netspec
from netspec.train import train

from conftest import ROOT

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_train_distribute")

SPEC = textwrap.dedent("""\
    netspec: 1
    name: dist
    params: {dist: none}
    inputs: {image: [8, 8, 1]}
    nodes:
      - {name: scale, type: Rescaling, scale: 0.0625}
      - {name: flat, type: Flatten}
      - {name: hidden, type: Dense, units: 16, activation: relu}
      - {name: probs, type: Dense, units: 10, activation: softmax}
    train:
      data: {source: dataset, name: digits, validation_split: 0.2521, shuffle: false}
      batch_size: 64
      epochs: 2
      optimizer: {type: Adam, learning_rate: 0.01}
      loss: sparse_categorical_crossentropy
      metrics: [accuracy]
      seed: 5
      distribute: $dist
    """)
MIRRORED = textwrap.dedent("""\
    import sys, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import netspec
    from netspec.train import train
    r = train(netspec.load(sys.argv[1], params={"dist": "mirrored"}), run_dir=sys.argv[2], verbose=0)
    print("REPLICAS", r.replicas)
    """)


def weights(path) -> list:
    with np.load(path) as z:
        return [z[f"w{i}"] for i in range(sum(k.startswith("w") for k in z.files))]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb) == 4
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.fixture(scope="module")
def single(tmp_path_factory, keras):
    """The reference: the same spec trained in one process on one device (1344 samples: 21 full batches)."""
    root = tmp_path_factory.mktemp("dist")
    (root / "s.yaml").write_text(SPEC, encoding="utf-8")
    train(netspec.load(root / "s.yaml"), run_dir=root / "single", verbose=0)
    return root


def env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def test_mirrored_on_two_logical_devices(single):
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(single / "s.yaml"), str(single / "mirrored")],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REPLICAS 2" in proc.stdout
    assert_same_weights(single / "single/checkpoints/epoch-0002.npz",
                        single / "mirrored/checkpoints/epoch-0002.npz")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_two_processes(single):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for index in range(2):
        e = {**env(), "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-m", "netspec", "train", str(single / "s.yaml"), "--set",
                                       "dist=multi_worker", "--run-dir", str(single / "mw"), "--format", "json"],
                                      cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    chief = single / "mw/checkpoints/epoch-0002.npz"
    worker = single / "mw/workers/worker-1/checkpoints/epoch-0002.npz"
    assert_same_weights(chief, worker)  # the two workers hold one model ...
    # ... and it is the model one process trains on the same batches (2 workers x 32 = the global 64).
    assert_same_weights(chief, single / "single/checkpoints/epoch-0002.npz")
    result = json.loads(outs[0][0])
    assert result["epochs"] == 2
    history = (single / "mw/history.csv").read_text()
    assert history.count("\n") == 3


def test_multi_worker_needs_tf_config(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC, encoding="utf-8")
    e = {k: v for k, v in env().items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "netspec", "train", str(tmp_path / "s.yaml"), "--set",
                           "dist=multi_worker"], cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "needs the TF_CONFIG environment variable" in proc.stderr


@pytest.mark.parametrize("text", [
    "not json",
    '["worker"]',
    '{"cluster": {"worker": ["a:1"]}}',
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}',
    '{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": ["worker"], "index": 0}}',
], ids=["syntax", "list", "no_task", "unknown_type", "index_past_end", "negative_index", "workers_not_list",
        "type_not_a_name"])
def test_malformed_tf_config_is_a_train_error(monkeypatch, text):
    from netspec.train.distribute import cluster_spec

    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(netspec.NetspecError, match="TF_CONFIG is not a valid cluster description"):
        cluster_spec()


def test_tf_config_names_this_worker(monkeypatch):
    from netspec.train.distribute import cluster_spec

    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert cluster_spec() == (cluster, "worker", 1)
