"""The public API: ``load`` a spec, then ``check`` its shapes or ``build`` its Keras model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, cast

from .schema.catalog import Catalog
from .errors import ContractError, Location, NetspecError, PluginError, ResolveError, SchemaError, SpecSyntaxError
from .graph import Graph, Ref
from .source.loader import DEFAULT_LIMITS, Document, Limits, load_path, load_yaml
from .schema.recheck import check_nodes
from .resolve.resolver import resolve, resolve_section
from .resolve.validate import validate_document

if TYPE_CHECKING:
    import keras

    from .budget import Budget
    from .build.compiler import Compiled, Row
    from .contract import Contract


# The attribute of a model :meth:`Spec.build` made that holds :meth:`Spec.metadata` (what a .keras file
# netspec writes stores as netspec.json): ``netspec import`` of the model reads its blocks used once
# from it, after proving that spec builds the model (see netspec/importing/stamped.py).
BUILT_FROM = "_netspec_metadata"


@dataclass
class CheckResult:
    """The shape table of a spec: one row per input and node, and Keras's parameter totals."""

    name: str
    rows: list[Row]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    warnings: list[str]
    outputs: list[tuple[str, Ref]]  # (output name, ref) pairs

    def to_dict(self) -> dict[str, Any]:
        """The table as plain data for ``--format json``."""
        return {
            "name": self.name,
            "nodes": [
                {"name": r.name, "type": r.type, "output_shape": _json_shape(r.shape), "params": r.params,
                 "line": r.line, "scope": list(r.scope), "shared": r.shared}
                for r in self.rows
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "outputs": {name: str(ref) for name, ref in self.outputs},
            "warnings": self.warnings,
        }

    def table(self) -> str:
        """The table as text, like ``model.summary()`` but with the spec's lines."""
        head = ("node", "type", "output shape", "params", "line")
        body = [(r.name, r.type + (" (shared)" if r.shared else ""), _text_shape(r.shape), f"{r.params:,}", str(r.line))
                for r in self.rows]
        widths = [max(len(head[i]), *(len(row[i]) for row in body)) for i in range(5)]
        def fmt(row):
            return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        lines = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
        lines.append("outputs: " + ", ".join(name if name == str(ref) else f"{name} = {ref}" for name, ref in self.outputs))
        lines.append(f"total params: {self.total_params:,} (trainable: {self.trainable_params:,}, "
                     f"non-trainable: {self.non_trainable_params:,})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _text_shape(shape: list) -> str:
    if shape and isinstance(shape[0], list):
        return ", ".join(_text_shape(s) for s in shape)
    return "(" + ", ".join(["None"] + [str(d) for d in shape]) + ")"


def _json_shape(shape: list) -> list:
    if shape and isinstance(shape[0], list):
        return [[None, *s] for s in shape]
    return [None, *shape]


class Spec:
    """A loaded, validated and resolved spec. Made by :func:`load`."""

    data_root: Path | None = None  # a directory the user allows data paths in, beside the spec's own

    document: Document
    graph: Graph
    catalog: Catalog

    def __init__(self, document: Document, graph: Graph, catalog: Catalog) -> None:
        self.document = document
        self.graph = graph
        self.catalog = catalog

    @property
    def name(self) -> str:
        """The spec's ``name:``."""
        return self.graph.name

    @property
    def data(self) -> dict:
        """The spec as written (plain data)."""
        # cast: load() makes a Spec only of a document the schema accepted, whose top level is a mapping
        return cast(dict, self.document.data)

    @property
    def warnings(self) -> list[str]:
        """Notes from resolution (nodes that reach no output, ...)."""
        return self.graph.warnings

    @property
    def path(self) -> str | None:
        """The spec file, as given to :func:`load` (None for YAML text)."""
        return self.document.source.file

    def metadata(self) -> dict[str, str]:
        """What every artifact built from this spec carries: netspec's version, the resolved spec and its
        SHA-256, the spec's file (see :func:`netspec.contract.spec_stamp`) and the deployment contract
        (under :data:`netspec.contract.METADATA_KEY`)."""
        from .contract import METADATA_KEY, spec_stamp

        return {**spec_stamp(self.data, self.graph.params, self.path), METADATA_KEY: self.contract().to_json()}

    def section(self, key: str) -> Any:
        """A top-level section (``"train"``, ``"export"``) with params interpolated; None if absent.

        Raises:
            NetspecError: an interpolation in the section fails (located in the YAML).
        """
        return resolve_section(self.document, self.graph.params, key)

    def validate(self) -> None:
        """The checks ``netspec validate`` adds to :func:`load`, still without TensorFlow: the
        ``train:`` section (whitelisted names and their arguments, output names, monitors, data
        sources and their files) and every ``export:`` target.

        Raises:
            NetspecError: the first problem, at its YAML line and column.
        """
        if self.data.get("train") is not None:
            from .train.config import train_config

            train_config(self)
        if self.data.get("export") is not None:
            from .export.targets import spec_targets

            spec_targets(self)

    def build(self, budget: Budget | None = None) -> keras.Model:
        """Compile the spec into a functional ``keras.Model`` (imports Keras).

        Raises:
            NetspecError: a node cannot be built; the error names the node, its line and shapes.
        """
        model = self._compile(budget).model
        try:
            object.__setattr__(model, BUILT_FROM, self.metadata())  # past Keras's attribute tracking: plain data
        except NetspecError:  # no metadata to carry: the model imports as any model does
            pass
        return model

    def check(self, budget: Budget | None = None, run: bool = True) -> CheckResult:
        """Infer every node's shape and parameter count (builds the model), and prove it runs.

        Args:
            budget: parameter and activation caps (default: from the machine's memory).
            run: call the built model once on a generated batch of the declared shapes (one
                forward pass, bounded by the activation budget; see :mod:`netspec.build.firstbatch`).
                False skips it, for very large models.

        Raises:
            NetspecError: as :meth:`build`; with ``run``, also a model that fails on its first
                batch (located at the failing node).
        """
        compiled = self._compile(budget)
        self._check_labels(compiled.model)
        warnings = list(self.warnings)
        if run:
            from .build.compiler import DEFAULT_BUDGET
            from .build.firstbatch import prove_first_batch

            note = prove_first_batch(compiled, self.graph, self.document.source, budget or DEFAULT_BUDGET)
            if note is not None:
                warnings.append(note)
        model = compiled.model
        trainable = sum(int(_size(w)) for w in model.trainable_weights)
        non_trainable = sum(int(_size(w)) for w in model.non_trainable_weights)
        return CheckResult(self.name, compiled.rows, model.count_params(), trainable, non_trainable,
                           warnings, list(self.graph.outputs))

    def contract(self) -> Contract:
        """The deployment contract the spec declares: every input's shape, dtype and ``preprocess:``,
        every output's ``labels:`` (see :mod:`netspec.contract`)."""
        from .contract import Contract

        return Contract.of_graph(self.graph)

    def _check_labels(self, model: keras.Model) -> None:
        """Each output's labels count its last dimension's classes (located at the labels)."""
        tensors = model.outputs if not isinstance(model.outputs, dict) else list(model.outputs.values())
        for (name, _), tensor in zip(self.graph.outputs, tensors):
            decl = self.graph.labels.get(name)
            last = tuple(tensor.shape)[-1] if len(tensor.shape) > 1 else None
            if decl is not None and last is not None and len(decl.labels) != last:
                raise ContractError(f"output {name!r} has {last} classes (its shape's last dimension, "
                                    f"{_text_shape(list(tensor.shape)[1:])}) but {len(decl.labels)} labels",
                                    path=decl.path, location=decl.location)

    def _compile(self, budget: Budget | None = None) -> Compiled:
        """Args: budget: a :class:`netspec.build.compiler.Budget` (parameter and activation caps)."""
        from .build.compiler import DEFAULT_BUDGET, build

        return build(self.graph, self.catalog, self.document.source, budget or DEFAULT_BUDGET)


def _size(weight: Any) -> int:
    n = 1
    for d in weight.shape:
        n *= int(d)
    return n


def _read(path_or_text: str | os.PathLike, limits: Limits) -> Document:
    if isinstance(path_or_text, os.PathLike):
        return load_path(path_or_text, limits=limits)
    text = str(path_or_text)
    if "\n" not in text and (text.endswith((".yaml", ".yml")) or _is_file(text)):
        return load_path(text, limits=limits)
    return load_yaml(text, None, limits=limits)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, or a NUL byte: it is YAML text
        return False


def load(path_or_text: str | os.PathLike, params: Mapping[str, Any] | None = None, trust_plugins: bool = False,
         *, limits: Limits = DEFAULT_LIMITS, data_root: str | os.PathLike | None = None) -> Spec:
    """Load, validate and resolve a spec, without importing TensorFlow (unless it has plugins).

    Args:
        path_or_text: a path to a YAML file, or the YAML text itself.
        params: overrides for the spec's ``params`` (like ``--set``).
        trust_plugins: allow the spec's ``plugins:`` to run Python code.
        limits: loader caps (file size, depth, alias expansion).
        data_root: a directory the spec's data paths may also lead into (``--data-root``); by
            default data stays inside the spec file's directory tree (see :mod:`netspec.source.paths`).

    Returns:
        A :class:`Spec` with ``.check()`` and ``.build()``.

    Raises:
        NetspecError: any problem, with file:line:col and JSON path.
    """
    from .schema.plugins import load_spec_plugins

    stage, file = "read", os.fsdecode(path_or_text) if isinstance(path_or_text, os.PathLike) else None
    try:  # one guard for every stage: each bounds its own work, and this catches what still escapes
        doc = _read(path_or_text, limits)
        stage, file = "validate", doc.source.file
        catalog = Catalog()
        validate_document(doc, catalog)
        stage = "load the plugins of"
        load_spec_plugins(doc, trust_plugins)
        stage = "resolve"
        graph = resolve(doc, catalog, params)
        for key in ("train", "export"):  # their ${...} fail at validate time, not when training starts
            resolve_section(doc, graph.params, key)
        check_nodes(doc, graph)  # input_spec and output_shape ${...} results, against their schema
    except (RecursionError, MemoryError) as exc:
        raise _exhausted(exc, stage, file) from None
    spec = Spec(doc, graph, catalog)
    if data_root is not None:
        spec.data_root = Path(data_root)
    return spec


_STAGE_ERRORS = {"read": SpecSyntaxError, "validate": SchemaError, "load the plugins of": PluginError,
                 "resolve": ResolveError}


def _exhausted(exc: BaseException, stage: str, file: str | None) -> NetspecError:
    """A RecursionError or MemoryError that escaped a stage, as that stage's located error."""
    what = "Python's stack" if isinstance(exc, RecursionError) else "memory"
    return _STAGE_ERRORS[stage](f"the spec is too large or too deeply nested to {stage}: netspec ran out of {what}",
                                location=Location(file, 1, 1),
                                hint="this is a bug in netspec's limits; please report it with the spec")
