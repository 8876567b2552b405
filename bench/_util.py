"""Shared helpers for the benchmarks: whole-process timing, medians, synthetic specs."""

from __future__ import annotations

import os
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
