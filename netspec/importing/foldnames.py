"""Names for what folding makes: blocks, the nodes inside them, instances and merged repeats."""

from __future__ import annotations

import re
from collections import Counter

from .foldgraph import Block, Op, is_name
from ..resolve.scope import snake_case, unique_name  # noqa: F401 - unique_name re-exported for folding


def common_tokens(names: list[str]) -> list[str]:
    """The ``_``-separated tokens all ``names`` share at the start (``a_b_x``, ``a_b_y`` -> ``a, b``)."""
    split = [n.split("_") for n in names]
    out = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        out.append(parts[0])
    if out and all(len(s) == len(out) for s in split):
        out = out[:-1]  # a name that is all prefix (a run of one op) keeps its last token as suffix
    return out


def common_chars(words: list[str]) -> str:
    """The longest common prefix of ``words``, character by character."""
    out = []
    for chars in zip(*words):
        if len(set(chars)) != 1:
            break
        out.append(chars[0])
    return "".join(out)


_ABBREV = {"ReLU": "relu", "Conv2D": "conv", "Conv1D": "conv", "Conv3D": "conv", "DepthwiseConv2D": "dwconv",
           "SeparableConv2D": "sepconv", "BatchNormalization": "bn", "LayerNormalization": "ln",
           "Dense": "dense", "ZeroPadding2D": "pad", "MaxPooling2D": "pool", "AveragePooling2D": "pool",
           "GlobalAveragePooling2D": "gap", "Concatenate": "concat", "Multiply": "mul", "Dropout": "drop"}


def _abbrev(op: Op) -> str:
    if op.kind == "block":
        return op.type or "block"
    if op.kind == "expr":
        return "expr"
    if op.type == "Activation" and isinstance(op.args.get("activation"), str):
        return op.args["activation"]
    return _ABBREV.get(op.type or "", snake_case(op.type or "node"))


def _identifier(text: str | None) -> str | None:
    """A node name from a Keras name suffix: leading numbers move to the end (``1_conv`` -> ``conv1``)."""
    if not text:
        return None
    parts = [p for p in text.split("_") if p]
    lead = []
    while parts and parts[0].isdigit():
        lead.append(parts.pop(0))
    if not parts:
        return None
    name = "_".join(parts) + "".join(lead)
    return name if is_name(name) else None


class TakenNames(set):
    """Names in use, plus stems of repeats whose count is a param (any ``stem_<i>`` is in use)."""

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.stems: set[str] = set()

    def __contains__(self, name: object) -> bool:
        if set.__contains__(self, name):
            return True
        m = re.fullmatch(r"(.*)_\d+", name, re.ASCII | re.DOTALL) if isinstance(name, str) else None
        return bool(m and m.group(1) in self.stems)


def _free(name: str, count: int | None, taken: set[str]) -> bool:
    """Whether ``name`` (made ``count`` times, -1: a count set per instance) collides with nothing."""
    if not is_name(name) or name in taken:
        return False
    if count is not None:
        pattern = re.compile(rf"{re.escape(name)}_\d+", re.ASCII)
        if any(pattern.fullmatch(t) for t in taken) or any(pattern.fullmatch(s + "_0") for s in getattr(taken, "stems", ())):
            return False
    return True


def variants(name: str):
    """Other names for ``name`` when it is taken: ``relu2``, ``relu3``, ... (``conv1b``, ``conv1c``, ...
    after a digit).

    Never ``name`` plus a ``_`` token: the layers of a node ``relu_b`` would be named
    ``<instance>_relu_b_...``, inside the name group ``<instance>_relu`` of the node ``relu``, and the
    folding of a re-imported build reads name groups as blocks.
    """
    if name[-1:].isdigit():
        for letter in "bcdefghijklmnopqrstuvwxyz":
            yield name + letter
    else:
        for k in range(2, 27):
            yield f"{name}{k}"


def pick_name(candidates: list[str], count: int | None, taken: set[str]) -> str:
    """The first free candidate; else a variant of the last one (``relu2``, see :func:`variants`)."""
    for name in candidates:
        if name and _free(name, count, taken):
            return name
    last = next((c for c in reversed(candidates) if is_name(c)), "node")
    for variant in variants(last):
        if _free(variant, count, taken):
            return variant
    return unique_name(last + "_n", taken)


def inner_names(runs: list[list[Op]], prefixes: list[list[str]]) -> list[str]:
    """Node names inside the new block: the Keras name suffix the instances share, else the type."""
    names: list[str] = []
    taken = TakenNames()
    for t in range(len(runs[0])):
        suffixes = set()
        for run, prefix in zip(runs, prefixes):
            own = run[t].origin or run[t].name
            parts = own.split("_")
            suffixes.add("_".join(parts[len(prefix):]) if parts[:len(prefix)] == prefix else None)
        suffix = suffixes.pop() if len(suffixes) == 1 else None
        op = runs[0][t]
        count = None if op.repeat is None else -1
        name = pick_name([_identifier(suffix) or "", _abbrev(op)], count, taken)
        taken.add(name)
        if count is not None:
            taken.stems.add(name)
        names.append(name)
    return _split_first_token(names, taken)


def _split_first_token(names: list[str], taken: TakenNames) -> list[str]:
    """``names`` with the last one's first token numbered (``conv_bn`` -> ``conv3_bn``) when they all
    start with one token.

    An instance ``x`` of a block whose nodes are ``conv_bn_relu``, ``conv_bn_relu2``, ``conv_bn``
    builds layers that all start ``x_conv_bn_``: read back, the instance would seem to be
    ``x_conv_bn``. A first token that differs keeps the instance's own name the longest prefix.
    """
    firsts = {n.split("_")[0] for n in names}
    if len(names) < 2 or len(firsts) != 1:
        return names
    head, _, rest = names[-1].partition("_")
    for k in range(2, 100):
        candidate = f"{head}{k}" + (f"_{rest}" if rest else "")
        if _free(candidate, None, taken):
            return names[:-1] + [candidate]
    return names


# Words block_name adds to a taken block name (a variant that has a residual add, a padding, a concat).
_FEATURES = (("Add", "residual"), ("ZeroPadding2D", "padded"), ("Concatenate", "concat"))


def stem_words(prefix: list[str]) -> list[str]:
    """What a run's name prefix may say the block is, shortest first: ``conv2_block1`` -> ``block``;
    ``conv2`` -> ``conv``; ``block_3`` -> ``block``; ``stage_1_main_se`` -> ``se``, ``main_se``.

    Counters are dropped first (trailing number or letter tokens, the word a variant of a taken block
    name gets, and the digits that end the last token: the variants netspec makes of a taken name),
    so an instance that netspec built from an imported spec names the block it was made from. The
    words after the last numbered level of a hierarchy (``conv2_block``: ``block``) are the block's;
    any tail of them may be, since an instance nested in netspec's build carries its parents' node
    names (``main_se`` for ``se``).
    """
    tokens = list(prefix)
    features = {word for _, word in _FEATURES}
    while tokens and (tokens[-1].isdigit() or re.fullmatch(r"[b-z]", tokens[-1])
                      or (len(tokens) > 1 and re.sub(r"\d+$", "", tokens[-1]) in features)):
        tokens.pop()
    if not tokens:
        return []
    tokens[-1] = re.sub(r"\d+[a-z]?$", "", tokens[-1])
    if not tokens[-1]:
        return []
    numbered = [k for k, t in enumerate(tokens[:-1]) if any(c.isdigit() for c in t)]
    words = tokens[numbered[-1] + 1:] if numbered else tokens
    return ["_".join(words[k:]) for k in range(len(words) - 1, -1, -1)]


def block_name(runs: list[list[Op]], prefixes: list[list[str]], blocks: dict[str, Block]) -> str:
    """The name its instances share (``conv2_block1``, ``conv3_block2`` -> ``block``), else what it
    holds (``conv_bn_relu``).

    A run without a shared prefix gets an instance named after the block (``block``, ``block_1``, see
    :func:`instance_name`), so the layers netspec builds for it (``block_1_conv``) name the same block
    when the build is imported again.
    """
    # The word most runs' prefixes hold (the shortest of those that tie): the prefixes of a build of the
    # spec hold it too, after the names of the nodes that hold the instance (se, block_se, main_block_se).
    stems: Counter = Counter()
    for prefix in prefixes:
        stems.update(set(stem_words(prefix)))
    stem, count = max(stems.items(), key=lambda kv: (kv[1], -kv[0].count("_"), kv[0]), default=("", 0))
    # What it holds, nested blocks opened: [conv, bn, relu] and [conv, bn_relu] are both conv_bn_relu
    # (folding may find the inner block first or last; the name must not say which).
    layers = _flat_layers(runs[0], blocks)
    plain = layers is not None and len(layers) <= 3
    if plain or not stem or count * 2 < len(runs):
        parts = list(dict.fromkeys(_abbrev(op) for op in layers or []))
        stem = "_".join(parts) if plain else (stem or "block")
    stem = _identifier(stem) or "block"
    if stem in blocks:  # a variant of a block already made: say how it differs
        types = {op.type for op in runs[0]}
        for feature, word in _FEATURES:
            if feature in types and not any(o.type == feature for o in blocks[stem].nodes):
                stem = f"{stem}_{word}"
                break
    return unique_name(stem, set(blocks) | {"x"})


def _flat_layers(ops: list[Op], blocks: dict[str, Block]) -> list[Op] | None:
    """The layers of ``ops`` with block instances opened; None past 3 layers or with a repeat."""
    out: list[Op] = []
    for op in ops:
        if op.repeat is not None:
            return None
        if op.kind == "block":
            inner = _flat_layers(blocks[op.block_used()].nodes, blocks) if op.block_used() in blocks else None
            if inner is None:
                return None
            out += inner
        else:
            out.append(op)
        if len(out) > 3:
            return None
    return out


def instance_name(prefix: list[str], block: str, taken: set[str]) -> str:
    """A block instance's name: the prefix its layers share (``conv2_block1``), else the block's
    name, numbered (``block``, ``block_1``, ...), never a taken name."""
    joined = "_".join(prefix)
    if joined and _free(joined, None, taken):
        return joined
    out, k = block, 1
    while not _free(out, None, taken):
        out, k = f"{block}_{k}", k + 1
    return out
