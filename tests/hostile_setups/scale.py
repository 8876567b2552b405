"""Hostile setups for `scale_` cases: specs of N nodes in shapes that stress `netspec plot`'s layout.

``graph(tmp, spec, shape, n)`` writes ``<shape>_<n>.yaml`` into ``tmp`` and returns its path, so the
case runs on the generated spec (a 1,500-node spec is too long to keep as a file). ``spec_text`` is the
generator itself; bench/plot_scaling.py uses it too.

Shapes (every node is a parameter-free layer on a [4] input, so `check` stays cheap):
  chain     x -> r0 -> r1 -> ... (depth n)
  fan_in    a chain whose every node also feeds one final Add (edges skipping up to n ranks)
  fan_out   r0 feeds every later node of the chain (edges skipping up to n ranks, from one node)
  skips     node k adds nodes k-1, k-2, k-4, k-8, ... (log n skip connections per node)
  wide      n parallel branches from the input, concatenated (one rank n nodes wide)
  nested    blocks nested 6 deep (residual pairs), repeated to n nodes: clusters in clusters
  deep      blocks nested 30 deep (a node and the next level in each), repeated to n nodes
  dense     node k adds every node before it (n^2/2 edges; n = 400 is 80,000 edges)
  names     a chain of 200-character names, then expressions holding `<`, `>` and both quotes
"""

from __future__ import annotations

from pathlib import Path


def _chain(n: int, extra=lambda k: []) -> list[str]:
    lines = []
    for k in range(n):
        ins = ([f"r{k - 1}"] if k else ["x"]) + extra(k)
        if len(ins) == 1:
            lines.append(f"  - {{name: r{k}, type: ReLU, in: {ins[0]}}}")
        else:
            lines.append(f"  - {{name: r{k}, type: Add, in: [{', '.join(ins)}]}}")
    return lines


def _skips(k: int) -> list[str]:
    out, step = [], 2
    while k - step >= 0:
        out.append(f"r{k - step}")
        step *= 2
    return out


def _nested(n: int) -> tuple[list[str], list[str]]:
    depth = 6
    blocks = ["blocks:", "  b0:", "    nodes:",
              "      - {name: relu, type: ReLU}",
              "      - {name: add, type: Add, in: [x, relu]}"]
    for d in range(1, depth):
        blocks += [f"  b{d}:", "    nodes:",
                   f"      - {{name: first, block: b{d - 1}}}",
                   f"      - {{name: second, block: b{d - 1}}}"]
    per = 2 ** depth  # nodes per top-level instance
    nodes = [f"  - {{name: n{k}, block: b{depth - 1}}}" for k in range(max(1, n // per))]
    return blocks, nodes


def _deep(n: int) -> tuple[list[str], list[str]]:
    depth = 30  # netspec nests blocks up to 32 deep
    blocks = ["blocks:", "  d0:", "    nodes:", "      - {name: relu, type: ReLU}"]
    for d in range(1, depth):
        blocks += [f"  d{d}:", "    nodes:", "      - {name: relu, type: ReLU}",
                   f"      - {{name: inner, block: d{d - 1}}}", "      - {name: add, type: Add, in: [x, inner]}"]
    per = 2 * depth - 1
    nodes = [f"  - {{name: n{k}, block: d{depth - 1}}}" for k in range(max(1, n // per))]
    return blocks, nodes


def spec_text(shape: str, n: int, name: str | None = None) -> str:
    """A spec of about ``n`` nodes in the given shape (see the module docstring)."""
    n = int(n)
    head = ["netspec: 1", f"name: {name or f'{shape}_{n}'}", "inputs: {x: [4]}"]
    blocks: list[str] = []
    if shape == "chain":
        nodes = _chain(n)
    elif shape == "fan_in":
        nodes = _chain(n) + [f"  - {{name: out, type: Add, in: [{', '.join(f'r{k}' for k in range(n))}]}}"]
    elif shape == "fan_out":
        nodes = _chain(n, lambda k: ["r0"] if k > 1 else [])
    elif shape == "skips":
        nodes = _chain(n, _skips)
    elif shape == "wide":
        nodes = [f"  - {{name: r{k}, type: ReLU, in: x}}" for k in range(n)]
        nodes.append(f"  - {{name: out, type: Concatenate, in: [{', '.join(f'r{k}' for k in range(n))}]}}")
    elif shape == "nested":
        blocks, nodes = _nested(n)
    elif shape == "deep":
        blocks, nodes = _deep(n)
    elif shape == "dense":
        nodes = _chain(n, lambda k: [f"r{j}" for j in range(k - 1)])
    elif shape == "names":
        # Names are [A-Za-z_][A-Za-z0-9_]* (validate checks), so markup can reach the picture only
        # through expression text: comparisons and string literals with both quotes.
        long = "n" * 200
        nodes = [f"  - {{name: {long}_{k}, type: ReLU}}" for k in range(n)]
        nodes.append("""  - {name: cmp, expr: "ops.where(x < 0.5, x, x * 2) + ops.cast(x >= 0, 'float32')"}""")
        nodes.append("""  - {name: quote, expr: 'ops.cast(x > 0, "float32") * x'}""")
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return "\n".join(head + blocks + ["nodes:"] + nodes) + "\n"


def graph(tmp: Path, spec: Path, shape: str, n: str) -> Path:
    """Write the ``shape`` spec of ``n`` nodes into ``tmp``; the case runs on it instead of ``spec``."""
    out = Path(tmp) / f"{shape}_{n}.yaml"
    out.write_text(spec_text(shape, int(n)), encoding="utf-8")
    return out
