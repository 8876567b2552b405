"""`netspec plot` time vs graph size, per graph shape: where the time goes (load, check, layout, SVG).

Shapes come from tests/hostile_setups/scale.py (chain, fan_in, fan_out, skips, wide, nested, deep,
dense). Each stage
is timed once in this process (TensorFlow is imported before the first measurement, so its import is
not counted). A layout that runs past --limit seconds is cut off with SIGALRM and the shape's larger
sizes are skipped; a near-linear layout keeps layout time per node flat as N grows.

    python bench/plot_scaling.py                      # every shape at 100, 300, 1000, 1500, 3000
    python bench/plot_scaling.py --shapes fan_in --sizes 1500 --limit 120
    python bench/plot_scaling.py --layout-only --sizes 1000 4900   # layout of the resolved graph, no Keras
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "hostile_setups"))

from scale import spec_text  # noqa: E402

import netspec  # noqa: E402
from netspec.errors import NetspecError  # noqa: E402
from netspec.plot.layout import Box, layout  # noqa: E402
from netspec.plot.render import check_size, picture, to_svg  # noqa: E402

SHAPES = ("chain", "fan_in", "fan_out", "skips", "wide", "nested", "deep", "dense")
SIZES = (100, 300, 1000, 1500, 3000)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def timed(fn, limit: float | None = None):
    """(result, seconds); result is _Timeout when the call ran past ``limit`` seconds."""
    if limit:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    t0 = time.perf_counter()
    try:
        out = fn()
    except _Timeout:
        out = _Timeout
    except NetspecError as e:
        out = e
    finally:
        if limit:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=SHAPES, choices=SHAPES)
    ap.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    ap.add_argument("--limit", type=float, default=60.0, help="cut a layout off after this many seconds")
    ap.add_argument("--layout-only", action="store_true",
                    help="lay out the resolved graph with cards of one size: no check(), no Keras")
    args = ap.parse_args()
    if args.layout_only:
        return layout_only(args)
    import keras  # noqa: F401  (TensorFlow's import is not plot's cost)

    print(f"{'shape':>8} {'N':>6} {'nodes':>6} {'load':>7} {'check':>7} {'layout':>8} {'svg':>6} {'total':>8}"
          "  layout us/node")
    for shape in args.shapes:
        for n in args.sizes:
            spec, t_load = timed(lambda: netspec.load(spec_text(shape, n)))
            if isinstance(spec, NetspecError):
                print(f"{shape:>8} {n:>6}  refused at load: {str(spec)[:80]}")
                continue
            result, t_check = timed(spec.check)
            if isinstance(result, NetspecError):
                print(f"{shape:>8} {n:>6}  refused at check: {str(result)[:80]}")
                continue
            pic, t_layout = timed(lambda: picture(spec, result), args.limit)
            nodes = len(result.rows)
            if pic is _Timeout:
                print(f"{shape:>8} {n:>6} {nodes:>6} {t_load:7.2f} {t_check:7.2f} {'>' + format(args.limit, '.0f'):>8}"
                      "  (cut off; larger sizes skipped)")
                break
            if isinstance(pic, NetspecError):
                print(f"{shape:>8} {n:>6} {nodes:>6} {t_load:7.2f} {t_check:7.2f}  refused: {str(pic)[:90]}")
                continue
            svg, t_svg = timed(lambda: to_svg(pic))
            total = t_load + t_check + t_layout + t_svg
            print(f"{shape:>8} {n:>6} {nodes:>6} {t_load:7.2f} {t_check:7.2f} {t_layout:8.2f} {t_svg:6.2f} "
                  f"{total:8.2f}  {t_layout / nodes * 1e6:9.0f}", flush=True)


def layout_only(args) -> None:
    print(f"{'shape':>8} {'N':>6} {'nodes':>6} {'edges':>7} {'load':>7} {'layout':>8} {'lanes':>6}  layout us/node")
    for shape in args.shapes:
        for n in args.sizes:
            spec, t_load = timed(lambda: netspec.load(spec_text(shape, n)))
            if isinstance(spec, NetspecError):
                print(f"{shape:>8} {n:>6}  refused at load: {str(spec)[:80]}")
                continue
            refused, _ = timed(lambda: check_size(spec))
            if refused is not None:
                print(f"{shape:>8} {n:>6}  refused by plot: {str(refused).split(': ', 2)[-1][:70]}")
                continue
            graph = spec.graph
            boxes = [Box(i.name, 150, 54) for i in graph.inputs]
            boxes += [Box(node.name, 150, 54, tuple(node.scope)) for node in graph.nodes]
            edges = [(r, node.name) for node in graph.nodes for r in dict.fromkeys(x.node for x in node.input_refs())]
            laid, t_layout = timed(lambda: layout(boxes, edges), args.limit)
            if laid is _Timeout:
                print(f"{shape:>8} {n:>6} {len(boxes):>6} {len(edges):>7} {t_load:7.2f} {'>' + format(args.limit, '.0f'):>8}"
                      "  (cut off; larger sizes skipped)")
                break
            lanes = getattr(laid, "lanes", "-")
            print(f"{shape:>8} {n:>6} {len(boxes):>6} {len(edges):>7} {t_load:7.2f} {t_layout:8.2f} {lanes:>6}  "
                  f"{t_layout / len(boxes) * 1e6:9.0f}", flush=True)


if __name__ == "__main__":
    main()
