"""How long a spec is next to the Keras code it replaces, over the corpus in tests/models/.

For every corpus module (tests/models/<name>.py, not starting with ``_``) it counts the code lines
of the Python model: the module's functions (``build()`` and its helpers) and module-level
constants, without docstrings, blank lines, comments, imports and the corpus metadata (``SOURCE``,
``SPEC``, ``PLUGINS``, ``UNKNOWN_DIM``); and the lines of the spec named by ``SPEC``: every
non-blank, non-comment line except the free-text ``description``. Reads files only (no Keras).

    python bench/corpus_lines.py
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "models"
METADATA = {"SOURCE", "SPEC", "PLUGINS", "UNKNOWN_DIM", "INT_HIGH"}


def _docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers taken by docstrings (module, function, class)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.update(range(first.lineno, first.end_lineno + 1))
    return out


def python_lines(path: Path) -> tuple[int, str]:
    """(code lines of the model's Python, the SPEC path it names)."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    skip = _docstring_lines(tree)
    counted: set[int] = set()
    spec = ""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            names = {t.id for t in node.targets}
            if "SPEC" in names:
                spec = ast.literal_eval(node.value)
            if names & METADATA:
                continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        counted.update(range(node.lineno, node.end_lineno + 1))
    code = [i for i in counted - skip
            if lines[i - 1].strip() and not lines[i - 1].strip().startswith("#")]
    return len(code), spec


def spec_lines(path: Path) -> int:
    """Non-blank, non-comment lines of a spec, without its ``description`` (text, not structure)."""
    count, in_description = 0, False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if in_description and (not line or line.startswith(" ")):
            continue  # a folded description's continuation lines
        in_description = False
        if not stripped or stripped.startswith("#"):
            continue
        if line.startswith("description:"):
            in_description = True
            continue
        count += 1
    return count


def main() -> None:
    rows = []
    for module in sorted(p for p in MODELS.glob("*.py") if not p.stem.startswith("_")):
        py, spec = python_lines(module)
        rows.append((module.stem, py, spec_lines(ROOT / spec), spec))
    width = max(len(r[0]) for r in rows)
    print(f"{'model':<{width}}  python  spec  ratio  spec file")
    for name, py, sp, spec in rows:
        print(f"{name:<{width}}  {py:>6}  {sp:>4}  {sp / py:>5.2f}  {spec}")
    total_py, total_spec = sum(r[1] for r in rows), sum(r[2] for r in rows)
    ratios = sorted(r[2] / r[1] for r in rows)
    print(f"\ncorpus: {len(rows)} models")
    print(f"lines: {total_py} of Python, {total_spec} of spec; spec/Python ratio {total_spec / total_py:.2f} "
          f"(per model: median {ratios[len(ratios) // 2]:.2f}, min {ratios[0]:.2f}, max {ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
