"""The package's walls: stages import only downwards, nothing imports in a cycle, privates stay home.

Every ``import`` in every module counts, function-level ones included (a cycle hidden inside a
function is still a cycle). The layer order is the pipeline's: a module may import its own package
and any package of a lower layer; packages that share a layer do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "netspec"

# Lowest first. Keys are the first component under netspec/ (a subpackage or a top-level module).
# ``expr`` and ``data`` are the public shims of ``build.expression`` and ``train.data``; ``spec`` is the
# facade behind ``netspec.load``; ``__init__`` is the package ``netspec`` itself.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "version"),
    ("graph", "budget", "kerasapi", "contract"),
    ("source",),
    ("expressions",),
    ("schema",),
    ("resolve",),
    ("build",),
    ("expr", "train"),
    ("data", "export", "plot"),
    ("spec",),
    ("__init__",),
    ("importing", "deploy"),
    ("cli",),
    ("__main__",),
    ("devtools",),
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, str]:
    return {module_name(p): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def unit_of(module: str) -> str:
    """The layering unit of a module: ``netspec.schema.catalog`` -> ``schema``; ``netspec`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(module: str, modules: dict[str, str]) -> bool:
    return any(m.startswith(module + ".") for m in modules) or module == "netspec"


def type_only_lines(tree: ast.AST) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (annotations only: no run-time edge, so no cycle)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def imports(module: str, text: str, modules: dict[str, str]) -> list[tuple[str, list[str], int, bool]]:
    """(imported module, names imported from it, line, under TYPE_CHECKING) for every import of a netspec module in ``text``."""
    package = module if is_package(module, modules) else module.rpartition(".")[0]
    out = []
    tree = ast.parse(text)
    type_only = type_only_lines(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "netspec"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "netspec":
                continue
            names = [a.name for a in node.names]
            # ``from pkg import module`` imports the submodule itself.
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            rest = [n for n in names if f"{target}.{n}" not in modules]
            out += [(s, [], node.lineno) for s in subs]
            if rest or not subs:
                out.append((target, rest, node.lineno))
    return [(t, names, line, line in type_only) for t, names, line in out]


def violations(modules: dict[str, str]) -> list[str]:
    """Upward or sideways imports, cross-package private names, and import cycles, as messages."""
    found = []
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, text in modules.items():
        unit = unit_of(module)
        for target, names, line, type_only in imports(module, text, modules):
            if target not in modules:
                found.append(f"{module}:{line} imports {target}, which does not exist")
                continue
            if not type_only:
                edges[module].add(target)
            tunit = unit_of(target)
            if tunit != unit:
                if tunit not in LAYER_OF or unit not in LAYER_OF:
                    found.append(f"{module}:{line}: {unit} or {tunit} has no layer in LAYERS")
                elif LAYER_OF[tunit] >= LAYER_OF[unit]:
                    found.append(f"{module}:{line} imports {target}: {unit} (layer {LAYER_OF[unit]}) may not "
                                 f"import {tunit} (layer {LAYER_OF[tunit]})")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            same_home = tunit == unit and len(module.split(".")) > 2 and len(target.split(".")) > 2
            if private and not same_home:
                found.append(f"{module}:{line} imports private {', '.join(private)} from {target}")
        found += borrowed_attributes(module, text, modules)
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]
    return found


def borrowed_attributes(module: str, text: str, modules: dict[str, str]) -> list[str]:
    """``mod._name`` where ``mod`` is a netspec module of another subpackage, bound by an import."""
    tree = ast.parse(text)
    package = module if is_package(module, modules) else module.rpartition(".")[0]
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in modules and a.asname:
                    bound[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            for a in node.names:
                if f"{target}.{a.name}" in modules:
                    bound[a.asname or a.name] = f"{target}.{a.name}"
    home = unit_of(module)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            target = bound[node.value.id]
            if unit_of(target) != home or len(module.split(".")) < 3:
                found.append(f"{module}:{node.lineno} uses private {node.attr} of {target}")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            # A package's __init__ importing its own submodules is how packages publish names.
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component) + [sorted(component)[0]])

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in sources()}
    assert units <= set(LAYER_OF), f"add {sorted(units - set(LAYER_OF))} to LAYERS"


def test_imports_go_down_only_without_cycles_or_borrowed_privates():
    found = violations(sources())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module, added, expect", [
    ("netspec.errors", "from .cli import main\n", "errors (layer 0) may not import cli"),
    ("netspec.schema.catalog", "def f():\n    from ..build.compiler import build\n", "schema (layer 4) may not import build"),
    ("netspec.export.verify", "from ..plot.render import to_svg\n", "export (layer 8) may not import plot"),
    ("netspec.cli.app", "from ..resolve.resolver import _private\n", "imports private _private"),
    ("netspec.resolve.scope", "def f():\n    from .validate import validate_document\n", "import cycle"),
    ("netspec.export.rewrite", "from ..build import expression\nx = expression._BINARY\n", "uses private _BINARY"),
])
def test_the_check_catches_what_it_should(module, added, expect):
    modules = sources()
    if expect == "import cycle":
        modules["netspec.resolve.validate"] += "\nfrom .scope import REF\n"
    modules[module] = modules[module] + "\n" + added
    assert any(expect in v for v in violations(modules)), violations(modules)


def test_every_error_lives_in_errors_and_is_exported():
    """Every NetspecError subclass is defined in netspec/errors.py and exported by ``netspec``."""
    import netspec
    from netspec import errors

    bases: dict[str, tuple[str, set[str]]] = {}  # class name -> (module, names of its bases)
    for module, text in sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, (ast.Name, ast.Attribute))}
                bases[f"{module}.{node.name}"] = (node.name, names)

    def is_netspec_error(name: str, seen: frozenset = frozenset()) -> bool:
        if name == "NetspecError":
            return True
        parents = {p for key, (n, ps) in bases.items() if n == name for p in ps}
        return any(is_netspec_error(p, seen | {name}) for p in parents - seen)

    outside = sorted(key for key, (name, _) in bases.items()
                     if is_netspec_error(name) and not key.startswith("netspec.errors."))
    assert not outside, f"NetspecError subclasses outside netspec/errors.py: {outside}"
    for name, cls in vars(errors).items():
        if isinstance(cls, type) and issubclass(cls, errors.NetspecError):
            assert getattr(netspec, name, None) is cls and name in netspec.__all__, f"netspec does not export {name}"


def test_no_module_is_over_500_lines():
    """Small modules (house style): a module that grows past 500 lines is split along its seams."""
    long = {m: t.count("\n") for m, t in sources().items() if t.count("\n") > 500}
    assert not long, f"split these modules: {long}"
