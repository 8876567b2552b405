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


def synthetic_spec(n: int) -> str:
    """A valid spec of ``n`` layers: a chain of Dense/ReLU/Dropout nodes with params and refs."""
    lines = [
        "netspec: 1",
        f"name: synthetic_{n}",
        "params: {units: 8, rate: 0.1}",
        "inputs: {x: [16]}",
        "nodes:",
    ]
    kinds = [
        "{{name: d{k}, type: Dense, units: $units}}",
        "{{name: r{k}, type: ReLU}}",
        "{{name: p{k}, type: Dropout, rate: \"${{rate * 2}}\"}}",
        "{{name: a{k}, type: Add, in: [d{d}, p{p}]}}",
    ]
    for k in range(n):
        j = k % 4
        lines.append("  - " + kinds[j].format(k=k, d=k - 3, p=k - 1))
    return "\n".join(lines) + "\n"
