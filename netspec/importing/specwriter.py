"""Write a spec as readable YAML: block style at the top, one flow mapping per node (as specs/ are written).

Generated text is data: every string that reaches the YAML (names, values, keys, the description,
the schema modeline) goes through :func:`scalar`, :func:`quoted` or :func:`text_entry`, which either
write a plain scalar that can only be read back as the same string, or let PyYAML's own emitter
quote it. Nothing is concatenated into the YAML unquoted, so a model name or a file name holding
``\nplugins: [evil.py]`` stays one string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import yaml

from .foldgraph import Block, Op, is_name

WIDTH = 110
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*|\$[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Plain scalars that some YAML reader (1.1 or 1.2) takes for something other than a string.
_AMBIGUOUS = {"null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES",
              "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N"}
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # undecodable bytes of a file name (os.fsdecode)
_NO_WRAP = 1 << 30


@dataclass
class SpecText:
    text: str
    flat_names: dict[str, str] = field(default_factory=dict)   # Keras name -> spec flat name
    instances: dict[str, int] = field(default_factory=dict)    # block -> instances in the model


def _valid(text: str) -> str:
    # A lone surrogate is not Unicode: no YAML file can hold it, so it is shown as U+FFFD.
    return _SURROGATE.sub("\ufffd", text)


def quoted(text: str) -> str:
    """``text`` as one YAML double-quoted scalar, written by PyYAML's emitter.

    The emitter escapes every line break (``\\n``, ``\\r``, NEL, U+2028, U+2029), every
    non-printable character and the quote itself, so the result is one line that every YAML reader
    reads back as ``text``.
    """
    out = yaml.dump(_valid(text), Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True,
                    width=_NO_WRAP).rstrip("\n")
    if "\n" in out or not out.startswith('"'):  # the emitter's contract; never user input
        raise RuntimeError(f"the YAML emitter wrote a multi-line quoted scalar: {out[:80]!r}")
    return out


def _plain(text: str) -> bool:
    return _PLAIN.fullmatch(text) is not None and text not in _AMBIGUOUS


def scalar(value: Any) -> str:
    """One value in YAML flow style that netspec's YAML 1.2 loader reads back as the same value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"  # 1.0e-06, 3.0: a float to every YAML reader (1.1 needs the dot)
        return mantissa + e + exponent
    if isinstance(value, str):
        return value if _plain(value) else quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} in a spec")


def _key(k: str) -> str:
    return k if is_name(k) and k not in _AMBIGUOUS else quoted(str(k))


def text_entry(key: str, text: str) -> list[str]:
    """``key: text`` as top-level block lines (folded at :data:`WIDTH`), written by PyYAML's emitter.

    PyYAML picks the style (plain when that reads back the same, else quoted) and the line breaks.
    """
    out = yaml.dump({key: _valid(text)}, Dumper=yaml.SafeDumper, allow_unicode=True, width=WIDTH,
                    default_flow_style=False, sort_keys=False)
    return out.rstrip("\n").split("\n")


def comment(text: str) -> str | None:
    """``# text``, or None when ``text`` holds anything a YAML reader takes for a line break."""
    if any(ord(c) < 32 or ord(c) in (0x7F, 0x85, 0x2028, 0x2029) or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        return None
    return f"# {text}"


def flow(items: list[tuple[str, Any]], indent: str) -> str:
    """``- {k: v, ...}``, wrapped at WIDTH between entries."""
    parts = [f"{_key(k)}: {scalar(v)}" for k, v in items]
    lines, current = [], indent + "- {"
    cont = indent + "   "
    for n, part in enumerate(parts):
        piece = part + (", " if n < len(parts) - 1 else "}")
        if len(current) + len(piece.rstrip()) > WIDTH and current.strip() not in ("- {", ""):
            lines.append(current.rstrip())
            current = cont
        current += piece
    lines.append(current)
    return "\n".join(lines)


def node_items(op: Op, previous: str | None) -> list[tuple[str, Any]]:
    """A node's keys in reading order: name, kind, arguments, in, repeat."""
    items: list[tuple[str, Any]] = [("name", op.name)]
    if op.kind == "layer":
        items.append(("type", op.type))
    elif op.kind == "block":
        items.append(("block", op.type))
    elif op.kind == "expr":
        items.append(("expr", op.expr))
    else:
        items.append(("share", op.share_of))
    items += list(op.args.items())
    refs = op.inputs
    if isinstance(refs, dict):
        items.append(("in", dict(refs)))
    elif not (previous is not None and refs == [previous]):
        items.append(("in", refs[0] if len(refs) == 1 else list(refs)))
    if op.repeat is not None:
        items.append(("repeat", op.repeat))
    return items


def _nodes(ops: list[Op], indent: str, first_in: str | None) -> list[str]:
    out = []
    previous = first_in
    for op in ops:
        out.append(flow(node_items(op, previous), indent))
        previous = op.name
    return out


def write_spec(name: str, description: str, inputs: list, blocks: dict[str, Block], ops: list[Op],
               outputs: list[str] | dict[str, str], schema_ref: str | None = None,
               plugins: Sequence[str] = (), params: dict[str, Any] | None = None) -> SpecText:
    """The spec text of an imported model.

    Args:
        name: the spec's name.
        description: one paragraph.
        inputs: :class:`netspec.importing.importer.InputInfo` items.
        blocks: block definitions (in the order they may be used).
        ops: the top-level nodes.
        outputs: the output refs, or a mapping output name -> ref.
        schema_ref: the schema path for the ``yaml-language-server`` modeline, or None.
        plugins: entries for ``plugins:`` (user layer modules or files).
        params: the spec's ``params:`` (the values netspec's stored expressions use).

    Returns:
        The text, the flat node name of every Keras layer, and the block instance counts.
    """
    lines = []
    modeline = comment(f"yaml-language-server: $schema={schema_ref}") if schema_ref else None
    if modeline:
        lines.append(modeline)
    lines += ["netspec: 1", f"name: {scalar(name)}", *text_entry("description", description)]
    if plugins:
        lines.append(f"plugins: {scalar(list(plugins))}")
    if params:
        lines.append("params:")
        lines += [f"  {_key(k)}: {scalar(v)}" for k, v in params.items()]
    lines.append("inputs:")
    for info in inputs:
        decl: dict[str, Any] = {"shape": info.shape}
        if info.dtype != "float32":
            decl["dtype"] = info.dtype
        if info.batch_size is not None:
            decl["batch_size"] = info.batch_size
        if info.sparse:
            decl["sparse"] = True
        if info.optional:
            decl["optional"] = True
        if getattr(info, "example_shape", None):
            decl["example_shape"] = info.example_shape
        lines.append(f"  {_key(info.name)}: {scalar(decl)}")
    used = _used_blocks(ops, blocks)
    if used:
        lines.append("blocks:")
        for bname in used:
            block = blocks[bname]
            lines.append(f"  {_key(bname)}:")
            if block.params:
                lines.append(f"    params: {scalar(block.params)}")
            if block.inputs != ["x"]:
                lines.append(f"    inputs: {scalar(block.inputs)}")
            lines.append("    nodes:")
            # as at the top level, only a single input is read without `in:` (several need it named)
            lines += _nodes(block.nodes, "      ", block.inputs[0] if len(block.inputs) == 1 else None)
            if block.outputs is not None:
                lines.append(f"    outputs: {scalar(block.outputs)}")
    lines.append("nodes:")
    only_input = inputs[0].name if len(inputs) == 1 else None
    lines += _nodes(ops, "  ", only_input)
    lines.append(f"outputs: {scalar(dict(outputs) if isinstance(outputs, dict) else list(outputs))}")
    text = "\n".join(lines) + "\n"
    flat, counts = _flat_names(ops, blocks)
    return SpecText(text, flat, counts)


def _used_blocks(ops: list[Op], blocks: dict[str, Block]) -> list[str]:
    """Blocks reachable from the top level, each after the blocks its body uses."""
    order: list[str] = []

    def visit(name: str, stack: tuple = ()) -> None:
        if name in order or name in stack:
            return
        for op in blocks[name].nodes:
            if op.kind == "block":
                visit(op.block_used(), stack + (name,))
        order.append(name)

    for op in ops:
        if op.kind == "block":
            visit(op.block_used())
    return order


def _evaluate(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        m = re.fullmatch(r"\$\{(\d+) \* (\w+)\}", value)
        if m:
            return int(m.group(1)) * env[m.group(2)]
        return env[value[1:]]
    return value


def _flat_names(ops: list[Op], blocks: dict[str, Block]) -> tuple[dict[str, str], dict[str, int]]:
    """Expand the nodes as the resolver names them, and pair each with the Keras layer it stands for."""
    mapping: dict[str, str] = {}
    counts: dict[str, int] = {}

    def expand(op: Op, prefix: str, env: dict[str, Any]) -> list[str]:
        count = _evaluate(op.repeat, env)
        names = [op.name] if count is None else [f"{op.name}_{i}" for i in range(count)]
        if op.kind != "block":
            return [prefix + n for n in names]
        used = op.block_used()
        block = blocks[used]
        counts[used] = counts.get(used, 0) + len(names)
        params = {p: _evaluate(op.args.get(p, default), env) for p, default in block.params.items()}
        out = []
        for n in names:
            for inner in block.nodes:
                out += expand(inner, prefix + n + "_", params)
        return out

    for op in ops:
        flat = expand(op, "", {})
        members = op.names()
        if len(members) == len(flat):
            mapping.update(zip(members, flat))
    return mapping, counts
