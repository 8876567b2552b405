"""Shared helpers for the benchmarks: whole-process timing, memory watching, medians, synthetic specs."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return e


def time_process(argv: list[str]) -> float:
    """Wall time of one whole process; fails loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env(), capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return dt


def session_rss(sid: int) -> int:
    """Resident bytes of every process in session ``sid`` (a child started with ``start_new_session=True``
    and whatever it starts: the zoo's worker runs ``netspec import`` as its own child)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid:  # field 6 of stat: the session id
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss in pages
        except (OSError, ValueError, IndexError):
            continue
    return total


def watch(proc: subprocess.Popen, cap_bytes: float, timeout: float | None = None,
          interval: float = 0.5) -> tuple[int, str | None]:
    """Wait for ``proc`` (started with ``start_new_session=True``), killing its session when its resident
    size passes ``cap_bytes`` or it runs past ``timeout`` seconds; returns (peak resident bytes, why it
    was stopped or None)."""
    t = time.perf_counter()
    peak, stop = 0, None
    while proc.poll() is None:
        rss = session_rss(proc.pid)
        peak = max(peak, rss)
        if rss > cap_bytes:
            stop = f"over the memory cap of {cap_bytes / 2**30:g} GiB"
        elif timeout is not None and time.perf_counter() - t > timeout:
            stop = f"over the timeout of {timeout:g} s"
        if stop:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own session: it and its children only
            proc.wait()
            break
        time.sleep(interval)
    return peak, stop


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def synthetic_spec(n: int, branch: int = 100) -> str:
    """A valid spec of ``n`` layers (plus one): branches of ``branch`` Dense/ReLU/Dropout/Add nodes
    that all start at the input and meet in a Concatenate, using params, ``${...}`` and refs.
    Branching keeps the graph shallow, as real networks are; depth is capped separately."""
    lines = [
        "netspec: 1",
        f"name: synthetic_{n}",
        "params: {units: 8, rate: 0.1}",
        "inputs: {x: [16]}",
        "nodes:",
    ]
    kinds = [
        "{{name: d{k}, type: Dense, units: $units{src}}}",
        "{{name: r{k}, type: ReLU}}",
        "{{name: p{k}, type: Dropout, rate: \"${{rate * 2}}\"}}",
        "{{name: a{k}, type: Add, in: [d{d}, p{p}]}}",
    ]
    ends = []
    for k in range(n):
        src = ", in: x" if k % branch == 0 else ""
        lines.append("  - " + kinds[k % 4].format(k=k, d=k - 3, p=k - 1, src=src))
        if k % branch == branch - 1:
            ends.append(f"a{k}")
    lines.append(f"  - {{name: out, type: Concatenate, in: [{', '.join(ends)}]}}")
    return "\n".join(lines) + "\n"


def in_chunks(fn, x, size: int = 2):
    """``fn`` over ``x`` (an array, a list of arrays or a dict of them) two samples at a time, its array results
    concatenated: eager Keras keeps a whole batch's activations alive, and 16 images through ConvNeXtXLarge
    put the worker over a 20 GiB cap before netspec ran."""
    import numpy as np

    def part(k: int):
        if isinstance(x, dict):
            return {name: v[k:k + size] for name, v in x.items()}
        if isinstance(x, list):
            return [v[k:k + size] for v in x]
        return x[k:k + size]

    n = len(next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, list) else x)
    return np.concatenate([fn(part(k)) for k in range(0, n, size)], axis=0)


def feed_for(session, x: dict) -> dict:
    """``x`` as an onnxruntime session takes it: by name, or by position when its names are its own (Keras's
    export names inputs its own way)."""
    names = [i.name for i in session.get_inputs()]
    return dict(zip(names, x.values())) if set(names) != set(x) else {n: x[n] for n in names}
