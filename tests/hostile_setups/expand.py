"""Setups for the expansion-cost cases (expand_*): big specs written at test time instead of committed.

Each function takes the case's temp dir and spec (plus header arguments) and returns the file to run.
"""

from __future__ import annotations

from pathlib import Path


def alias_string_bomb(tmp: Path, spec: Path, chars: str = "65536", uses: str = "240000") -> Path:
    """A ``chars``-character string aliased ``uses`` times (nested lists of ten): 64 KiB x 240,000 = 16 GB."""
    chars_n, uses_n = int(chars), int(uses)
    lines = ["netspec: 1", "name: hostile", "description: &s " + "x" * (chars_n - 1), "params:"]
    prev, level, made = "s", 0, 1
    while made * 10 <= uses_n:
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev, level, made = f"l{level}", level + 1, made * 10
    rest = uses_n // made
    lines.append("  top: [" + ", ".join([f"*{prev}"] * max(rest, 1)) + "]")
    lines += ["inputs:", "  x: [4]", "nodes:", "  - {type: ReLU}"]
    out = tmp / "alias_string_bomb.yaml"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def misspelled_nodes(tmp: Path, spec: Path, nodes: str = "50000", keys: str = "7") -> Path:
    """``nodes`` aliases of one node with ``keys`` misspelled arguments, in flow style (~200 KB):
    350,000 schema issues, each of which once computed a did-you-mean hint."""
    bad = ", ".join(f"unitz{k}: 1" for k in range(int(keys)))
    text = (f"netspec: 1\nname: hostile\nparams:\n  a: &a {{type: Dense, units: 2, {bad}}}\n"
            f"inputs:\n  x: [4]\nnodes: [" + ", ".join(["*a"] * int(nodes)) + "]\n")
    out = tmp / "misspelled_nodes.yaml"
    out.write_text(text, encoding="utf-8")
    return out


def deferred_var_chain(tmp: Path, spec: Path, length: str = "40") -> Path:
    """A block whose ``length`` vars each use the two before, from ``in_shape`` (exponential when re-evaluated)."""
    n = int(length)
    lines = ["netspec: 1", f"name: chain{n}", "blocks:", "  b:", "    vars:", "      v0: ${in_shape[0]}",
             "      v1: ${in_shape[0]}"]
    lines += [f"      v{k}: ${{(v{k - 1} + v{k - 2}) % 7 + 1}}" for k in range(2, n)]
    lines += ["    nodes:", f'      - {{type: Dense, units: "${{v{n - 1}}}"}}', "inputs:", "  x: [4]", "nodes:",
              "  - {block: b}"]
    out = tmp / f"chain{n}.yaml"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def many_shares(tmp: Path, spec: Path, pairs: str = "8000") -> Path:
    """``pairs`` layers, each shared once by name (the share lookup was linear per share: quadratic)."""
    lines = ["netspec: 1", "name: shares", "inputs:", "  x: [4]", "nodes:"]
    for k in range(int(pairs)):
        lines += [f"  - {{type: ReLU, in: x, name: t{k}}}", f"  - {{share: t{k}, in: x, name: s{k}}}"]
    lines += ["  - {type: Concatenate, in: [" + ", ".join(f"s{k}" for k in range(int(pairs))) + "]}"]
    out = tmp / "many_shares.yaml"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
