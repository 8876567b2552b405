"""Fold a flat imported graph into blocks: repeated runs of layers with the same structure become
block instances (differing values become block params), and chains of identical nodes become ``repeat``.

The graph is a list of ops per scope (the model's top level, then each block body), in Keras call
order. A candidate block is a contiguous run of ops with one external input whose only op used outside
the run is its last one. Runs match when their ops have the same kinds, types, argument keys and
internal wiring; values may differ. The greedy loop folds the pattern with the most instances (then
one that spans a split and its merge, then the one that saves the most lines), merges chains into
``repeat``, and starts again, so blocks nest (a stage of bottlenecks of conv-bn pairs).

The order reads only the graph, never the layer names: the model netspec builds from an imported
spec has the same graph under netspec's names, and must fold into the same blocks (the round trip).
Names are made from the layer names in a way that a build gives back (see foldnames.py).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Callable

from .foldgraph import Block, Op, Scope, base, map_refs, op_refs, spec_name, value_key
from .foldnames import (TakenNames, block_name, common_chars, common_tokens, inner_names, instance_name, pick_name,
                        unique_name, variants)

MAX_RUN = 64           # ops in one candidate run
MIN_SAVING = 2         # lines a fold must save
BLOCK_OVERHEAD = 3     # lines a block definition costs besides its nodes (name, params, nodes:)

# Arguments that may be left at their default in some instances of a block and set in others
# (a stride-2 first block among stride-1 ones); other argument keys must match exactly.
SOFT_KEYS = frozenset({"strides", "padding", "dilation_rate", "use_bias", "activation", "groups",
                       "depth_multiplier", "rate", "noise_shape", "max_value"})


class Folder:
    """The greedy folding loop. ``default_of(type, key)`` gives ``(True, value)`` for a known default."""

    def __init__(self, ops: list[Op], outputs: list[str], inputs: list[str],
                 default_of: Callable[[str | None, str], tuple[bool, Any]],
                 blocks: dict[str, Block] | None = None) -> None:
        self.default_of = default_of
        self.top = Scope(ops, list(outputs))
        self.scopes = [self.top]
        self.blocks: dict[str, Block] = dict(blocks or {})  # made before folding (shared runs): kept as they are
        self.model_inputs = set(inputs)
        protected = {base(r) for r in outputs}
        protected |= {op.share_of for op in ops if op.share_of}
        protected |= {base(r) for op in ops for r in op_refs(op) if "." in r}
        for op in ops:
            if op.name in protected or op.kind == "share":
                op.foldable = False

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> tuple[list[Op], dict[str, Block]]:
        for _ in range(200):
            for scope in self.scopes:
                self.merge_repeats(scope)
            best = self.best_pattern()
            if best is None:
                break
            self.apply(*best)
        for scope in self.scopes:
            if scope.block is not None:
                scope.block.nodes = scope.ops
        for scope in reversed(self.scopes):  # block bodies first: their layer names make their users'
            self._distinct_scope(scope)
        for b in self.blocks.values():
            b.instances = sum(1 for s in self.scopes for op in s.ops if op.kind == "block" and op.type == b.name)
        return self.top.ops, self.blocks

    # -- signatures ------------------------------------------------------------------------------

    def token(self, op: Op) -> tuple | None:
        if not op.foldable:
            return None
        if op.kind == "layer":
            hard = frozenset(k for k in op.args if not (k in SOFT_KEYS and self.default_of(op.type, k)[0]))
            return ("L", op.type, hard, op.repeat is not None, _keywords(op))
        if op.kind == "expr":
            return ("E", op.expr, _keywords(op))
        if op.kind == "block":
            return ("B", op.type, op.repeat is not None)
        return None

    # -- candidates --------------------------------------------------------------------------------

    def best_pattern(self) -> tuple[list[tuple[int, int, int]]] | None:
        """The fold that saves most lines, best aligned, as the arguments of :meth:`apply`; None if none pays."""
        found: dict[int, list[tuple[int, int, int]]] = {}
        shapes: dict[int, tuple] = {}
        for sid, scope in enumerate(self.scopes):
            scope.index()
            tokens = [self.token(op) for op in scope.ops]
            n = len(scope.ops)
            for i in range(n):
                if tokens[i] is None:
                    continue
                externals: dict[str, int] = {}
                key: Any = ()
                max_use = -1
                for j in range(i, min(n, i + MAX_RUN)):
                    if tokens[j] is None:
                        break
                    op = scope.ops[j]
                    wiring = []
                    keyed = [r for k in sorted(op.inputs) for r in _listed(op.inputs[k])] \
                        if isinstance(op.inputs, dict) else op_refs(op)
                    for r in keyed:
                        p = scope.pos.get(base(r))
                        if p is not None and p >= i:
                            wiring.append(("i", j - p))
                        else:
                            wiring.append(("e", externals.setdefault(r, len(externals))))
                    if len(externals) > 1:
                        break
                    key = hash((key, tokens[j], tuple(wiring)))
                    if j > i and max_use <= j and scope.last_use[j] > j:
                        found.setdefault(key, []).append((sid, i, j))
                        shapes.setdefault(key, tuple(tokens[i:j + 1]))
                    max_use = max(max_use, scope.last_use[j])
        best, best_score = None, None
        for key, occs in found.items():
            chosen = _non_overlapping(occs)
            if len(chosen) < 2:
                continue
            length = chosen[0][2] - chosen[0][1] + 1
            saving = len(chosen) * length - (length + self._instance_lines(chosen) + BLOCK_OVERHEAD)
            if saving < MIN_SAVING:
                continue
            score = (len(chosen), self.spanning(chosen), saving)
            if best_score is None or score > best_score:
                best, best_score = chosen, score
        return (best,) if best else None

    def _instance_lines(self, chosen) -> int:
        """Lines the instances will take: runs that feed the next one directly become one ``repeat``."""
        lines = 0
        previous = None
        for sid, i, j in chosen:
            scope = self.scopes[sid]
            chained = (previous is not None and previous[0] == sid and previous[2] + 1 == i
                       and any(base(r) == scope.ops[previous[2]].name for r in op_refs(scope.ops[i])))
            lines += 0 if chained else 1
            previous = (sid, i, j)
        return lines

    def spanning(self, chosen) -> int:
        """1 when three quarters of the runs read their input twice or more (a residual block from the
        split to the merge, not shifted by a layer), else 0: where the graph itself says a block starts."""
        hits = 0
        for sid, i, j in chosen:
            scope = self.scopes[sid]
            inside = {op.name for op in scope.ops[i:j + 1]}
            reads = [r for op in scope.ops[i:j + 1] for r in op_refs(op) if base(r) not in inside]
            hits += len(reads) >= 2
        return int(4 * hits >= 3 * len(chosen))

    # -- repeat ----------------------------------------------------------------------------------

    def merge_repeats(self, scope: Scope) -> None:
        scope.index()
        out: list[Op] = []
        i = 0
        ops = scope.ops
        while i < len(ops):
            j = i
            while (j + 1 < len(ops) and self._chains(scope, ops[j], ops[j + 1], j)):
                j += 1
            if j > i:
                run = ops[i:j + 1]
                name = self._stem([op.name for op in run], scope, exclude={op.name for op in run})
                merged = Op(name, run[0].kind, run[0].type, dict(run[0].args), run[0].inputs,
                            expr=run[0].expr, repeat=len(run), origin=None,
                            members=[n for op in run for n in op.names()])
                out.append(merged)
                scope.ops = out + ops[j + 1:]
                scope.rename(run[-1].name, name, start=len(out))
                ops = scope.ops
                i = len(out)
                scope.index()
                continue
            out.append(ops[i])
            i += 1
        scope.ops = out

    def _chains(self, scope: Scope, a: Op, b: Op, ia: int) -> bool:
        return (a.foldable and b.foldable and a.repeat is None and b.repeat is None
                and a.kind == b.kind and a.kind in ("layer", "block", "expr") and a.type == b.type
                and a.expr == b.expr and value_key(a.args) == value_key(b.args)
                and not isinstance(b.inputs, dict) and b.inputs == [a.name] and scope.last_use[ia] == ia + 1
                and not (isinstance(a.inputs, dict)))

    def _stem(self, names: list[str], scope: Scope, exclude: set[str]) -> str:
        """A name for a chain merged into ``repeat``: what the names share (``conv2_block2``,
        ``conv2_block3`` -> ``conv2_block``), else the first name; never one that the instances'
        generated names (``<name>_<i>``) would collide with."""
        # The names netspec gives a repeat's instances (<stem>_0, <stem>_1, ...): a model built from an
        # imported spec imports back to the same stem.
        own = names[0][:-2] if names[0].endswith("_0") else ""
        if own and names == [f"{own}_{i}" for i in range(len(names))]:
            taken = self._taken(scope, exclude)
            if pick_name([own], -1 if scope.block is not None else len(names), taken) == own:
                return own
        tokens = common_tokens(names)
        rest = [n.split("_")[len(tokens)] for n in names if len(n.split("_")) > len(tokens)]
        common = common_chars(rest).rstrip("0123456789_") if len(rest) == len(names) else ""
        # conv2_block2, conv2_block3 -> conv2_block; block_4, block_5 -> block_4 (a bare number
        # is the name's identity, not a counter the repeat replaces)
        stem = "_".join(tokens + [common]) if common else ""
        if not stem and len(tokens) >= 2 and not tokens[-1].isdigit() and all(r.isdigit() for r in rest):
            stem = "_".join(tokens)  # stage_0_block_0, stage_0_block_1 -> stage_0_block
        taken = self._taken(scope, exclude)
        return pick_name([stem, names[0]], -1 if scope.block is not None else len(names), taken)

    def _taken(self, scope: Scope, exclude: set[str]) -> set[str]:
        """The names a new node of ``scope`` must avoid: its nodes', their repeat instances', inputs."""
        taken = TakenNames(set(self.model_inputs) | {"x"})
        for op in scope.ops:
            if op.name in exclude:
                continue
            taken.add(op.name)
            if isinstance(op.repeat, int):
                taken |= {f"{op.name}_{i}" for i in range(op.repeat)}
            elif op.repeat is not None:  # a count set per instance: any <name>_<i> may be made
                taken.stems.add(op.name)
        return taken

    # -- folding one pattern -----------------------------------------------------------------------

    def _distinct_layers(self, names: list[str], template: list[Op]) -> list[str]:
        """Inner names whose layers get distinct names: a node ``conv_bn_conv`` beside a block instance
        ``conv_bn`` holding a node ``conv`` would both make ``<instance>_conv_bn_conv``."""
        out: list[str] = []
        made: set[str] = set()
        for name, op in zip(names, template):
            candidate, others = name, variants(name)
            while self._layer_names(candidate, op) & made or candidate in out:
                candidate = next(others)
            made |= self._layer_names(candidate, op)
            out.append(candidate)
        return out

    def _distinct_scope(self, scope: Scope) -> None:
        """Rename a node whose layers would take a name another node's layers have (a node
        ``conv_dw_7`` repeated, beside an instance whose layers start ``conv_dw_7_0``)."""
        made: set[str] = set()
        keep = {base(r) for r in scope.outputs}
        for op in scope.ops:
            names = self._layer_names(op.name, op)
            if names & made and op.name not in keep:
                taken = {o.name for o in scope.ops} | self.model_inputs | {"x"}
                for new in variants(op.name):
                    if new not in taken and not self._layer_names(new, op) & made:
                        scope.rename(op.name, new)
                        op.name = new
                        names = self._layer_names(new, op)
                        break
            made |= names

    def _layer_names(self, name: str, op: Op) -> set[str]:
        """The layer names (relative to its scope) a node called ``name`` makes; a repeat whose count
        is a param counts as up to 16 instances."""
        count = op.repeat if isinstance(op.repeat, int) else (16 if op.repeat is not None else None)
        heads = [name] if count is None else [f"{name}_{i}" for i in range(count)]
        if op.kind != "block":
            return set(heads)
        inner: set[str] = set()
        for node in self.blocks[op.block_used()].nodes:
            inner |= self._layer_names(node.name, node)
        return {f"{h}_{n}" for h in heads for n in inner}

    def apply(self, chosen: list[tuple[int, int, int]]) -> None:
        occs = [(self.scopes[sid], i, j) for sid, i, j in chosen]
        first_scope, fi, fj = occs[0]
        template = first_scope.ops[fi:fj + 1]
        length = len(template)
        runs = [scope.ops[i:j + 1] for scope, i, j in occs]
        prefixes = [common_tokens([n for op in run for n in op.names()]) for run in runs]

        inner = self._distinct_layers(inner_names(runs, prefixes), template)
        name = block_name(runs, prefixes, self.blocks)
        vectors: dict[str, tuple[list, str, str]] = {}  # json of values -> (values, key, inner name)
        body: list[Op] = []
        for t in range(length):
            ops_t = [run[t] for run in runs]
            args: dict[str, Any] = {}
            keys = list(dict.fromkeys(k for op in ops_t for k in op.args))
            for k in keys:
                values = []
                for op in ops_t:
                    if k in op.args:
                        values.append(op.args[k])
                    elif op.kind == "block":  # left at the block's default in this instance
                        values.append(self.blocks[op.block_used()].params[k])
                    else:
                        values.append(self.default_of(op.type, k)[1])
                args[k] = _collect(values, k, inner[t], vectors)
            repeat = None
            if ops_t[0].repeat is not None:
                repeat = _collect([op.repeat for op in ops_t], "count", inner[t], vectors)
            tmpl = template[t]
            body.append(Op(inner[t], tmpl.kind, tmpl.type, args, tmpl.inputs, expr=tmpl.expr, repeat=repeat,
                           origin=None, members=[]))
        params, refer = _params(vectors)
        for op in body:
            op.args = {k: refer(v) for k, v in op.args.items()}
            op.repeat = refer(op.repeat)
        # Wiring: refs to ops of the run become inner names, the one external input becomes x.
        run_names = {op.name: inner[t] for t, op in enumerate(template)}

        def wire(r: str) -> str:
            b, dot, part = r.partition(".")
            if b in run_names:
                return run_names[b] + dot + part
            return "x"

        for op in body:
            op.inputs = map_refs(op.inputs, wire)
        defaults = {}
        for p, values in params.items():
            value, count = Counter(value_key(v) for v in values).most_common(1)[0]
            default = json.loads(value)
            defaults[p] = default if count >= 2 and count * 2 > len(values) and "$" not in value else "required"
        block = Block(name, defaults, body)
        self.blocks[name] = block
        self.scopes.append(Scope(body, [], block))

        # Instance names in call order (block, block_1, ...: what a re-import of the build reads back).
        made: dict[int, set[str]] = {}
        insts = []
        for (scope, i, j), prefix in zip(occs, prefixes):
            taken = self._taken(scope, {op.name for op in scope.ops[i:j + 1]})
            taken.update(made.setdefault(id(scope), set()))  # in place: a TakenNames keeps its stems
            insts.append(instance_name(prefix, name, taken))
            made[id(scope)].add(insts[-1])
        # Replace the occurrences, last first so that positions stay valid within a scope.
        for o in sorted(range(len(occs)), key=lambda o: (id(occs[o][0]), -occs[o][1])):
            scope, i, j = occs[o]
            run = scope.ops[i:j + 1]
            ext = next((r for op in run for r in op_refs(op) if base(r) not in {o.name for o in run}), None)
            inst = insts[o]
            own = {p: vals[o] for p, vals in params.items() if defaults[p] == "required" or value_key(defaults[p]) != value_key(vals[o])}
            new = Op(inst, "block", name, own, [ext] if ext else [], members=[n for op in run for n in op.names()])
            scope.ops[i:j + 1] = [new]
            scope.rename(run[-1].name, inst, start=i + 1)


def _keywords(op: Op) -> tuple:
    """The call keywords of an op (and how many refs each takes): ops that match must bind the same."""
    if not isinstance(op.inputs, dict):
        return ()
    return tuple(sorted((k, len(v) if isinstance(v, list) else -1) for k, v in op.inputs.items()))


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


class _Vector(str):
    """A block param placeholder: the JSON of its values across the instances."""


def _collect(values: list, key: str, inner: str, vectors: dict) -> Any:
    """A literal when every instance has the same value, else a placeholder for a param."""
    # A value that names a param of the scope the runs sit in ("$filters" inside a block body) must
    # stay a param: inside the new block, $filters would name the new block's own param.
    if all(value_key(v) == value_key(values[0]) for v in values) and "$" not in value_key(values[0]):
        return values[0]
    vector = value_key(values)
    vectors.setdefault(vector, (values, key, inner))
    return _Vector(vector)


def _params(vectors: dict) -> tuple[dict[str, list], Callable[[Any], Any]]:
    """Name the params; a param that is a constant multiple of another is written ``${k * other}``."""
    def ints(values):
        return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)

    params: dict[str, list] = {}
    text: dict[str, str] = {}
    roots: list[str] = []
    order = sorted(vectors, key=lambda vec: (not ints(vectors[vec][0]), sum(vectors[vec][0]) if ints(vectors[vec][0]) else 0))
    for vec in order:
        values, key, inner = vectors[vec]
        if key != "count" and ints(values):
            for root in roots:
                base_vals = vectors[root][0]
                ratios = {v // b if v % b == 0 else 0 for v, b in zip(values, base_vals)}
                if len(ratios) == 1 and next(iter(ratios)) > 1:
                    text[vec] = "${%d * %s}" % (next(iter(ratios)), text[root][1:])
                    break
        if vec in text:
            continue
        name = key if key not in params else f"{inner}_{key}"
        name = unique_name(spec_name(name, "p"), set(params) | {"x", "i", "in_shape"})
        params[name] = values
        text[vec] = "$" + name
        if key != "count" and ints(values):
            roots.append(vec)
    # Params in the order their first use appears.
    first_use = {text[vec][1:]: n for n, vec in enumerate(vectors) if text[vec].startswith("$") and not text[vec].startswith("${")}
    params = dict(sorted(params.items(), key=lambda kv: first_use.get(kv[0], 0)))

    def refer(value):
        return text[value] if isinstance(value, _Vector) else value

    return params, refer


def _non_overlapping(occs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    chosen: list[tuple[int, int, int]] = []
    last: dict[int, int] = {}
    for sid, i, j in sorted(occs):
        if i > last.get(sid, -1):
            chosen.append((sid, i, j))
            last[sid] = j
    return chosen


def fold(ops: list[Op], outputs: list[str], inputs: list[str],
         default_of: Callable[[str | None, str], tuple[bool, Any]] | None = None,
         blocks: dict[str, Block] | None = None) -> tuple[list[Op], dict[str, Block]]:
    """Fold repeated runs of ``ops`` into blocks.

    Args:
        ops: the flat graph in call order.
        outputs: refs of the model outputs (their ops keep their names and stay at the top level).
        inputs: the model input names.
        default_of: ``(type, key) -> (known, default value)`` for layer arguments.
        blocks: blocks made before folding (their instances are not folded again).

    Returns:
        The top-level ops and the blocks, in the order they were made.
    """
    return Folder(ops, outputs, inputs, default_of or (lambda t, k: (False, None)), blocks).run()
