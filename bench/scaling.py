"""validate + resolve of synthetic specs of 100, 1,000 and 10,000 layers: time should grow linearly.

Prints the median time of load + schema validation + resolution per size and the time per layer;
a linear stage keeps the per-layer time flat as the size grows 100x.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import median, synthetic_spec  # noqa: E402

import netspec  # noqa: E402

SIZES = (100, 1_000, 10_000)


def run(text: str) -> float:
    t0 = time.perf_counter()
    spec = netspec.load(text)
    dt = time.perf_counter() - t0
    if len(spec.graph.nodes) == 0:
        raise SystemExit("empty graph")
    return dt


def main() -> None:
    rows = []
    for n in SIZES:
        text = synthetic_spec(n)
        run(text)  # warm-up
        reps = 7 if n <= 1000 else 3
        t = median([run(text) for _ in range(reps)])
        rows.append((n, t))
        print(f"{n:>6} layers ({len(text) / 1024:6.0f} KiB): {t * 1000:8.1f} ms  "
              f"{t / n * 1e6:7.1f} us/layer")
    (n_mid, t_mid), (n_big, t_big) = rows[-2], rows[-1]
    print(f"marginal cost {n_mid} -> {n_big} layers: {(t_big - t_mid) / (n_big - n_mid) * 1e6:.1f} us/layer; "
          f"per-layer ratio {t_big / n_big / (t_mid / n_mid):.2f} (1.00 is linear)")
    (n0, t0), (n1, t1) = rows[0], rows[-1]
    print(f"growth {n0} -> {n1} layers: time x{t1 / t0:.1f} for size x{n1 // n0} "
          f"(per-layer ratio {t1 / n1 / (t0 / n0):.2f}; 1.00 is perfectly linear)")


if __name__ == "__main__":
    main()
