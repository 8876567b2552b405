"""The model's ports: its ``inputs:`` (with ``example_shape``) and its ``outputs:``.

Functions of the :class:`~netspec.resolve.resolver.Resolver` (named ``self`` as the methods they were),
kept apart so the resolver stays about scopes and nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from ..contract import MAX_LABEL_CHARS, MAX_LABELS, Preprocess, number_problem
from ..errors import short
from ..graph import InputDecl, LabelDecl, Ref, Value
from ..schema.recheck import check_interpolated, def_schema
from ..source.paths import PathRefused, confine, open_regular, roots_for
from .scope import Ctx

if TYPE_CHECKING:
    from .resolver import Resolver

OutputForm = Literal["single", "list", "mapping"]  # Graph.output_form


def model_inputs(self: Resolver) -> tuple[list[InputDecl], dict[str, Value]]:
    """The model's inputs (declarations) and the values their names bind in the top scope."""
    decls: list[InputDecl] = []
    bindings: dict[str, Value] = {}
    for name, raw in self.data["inputs"].items():
        path = ("inputs", name)
        raw = {"shape": raw} if isinstance(raw, list) else raw
        spec = self.value(raw, path, self.spec_params, None)
        check_interpolated(spec, raw, path, self.src, def_schema("modelInput"))  # "${...}" must be an input
        spec = {"shape": spec} if isinstance(spec, list) else spec
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in shape):
            raise self.error(f"an input shape is a list of positive integers or null. Received: shape={short(shape)}",
                             path + (("shape",) if isinstance(self.data["inputs"][name], dict) else ()))
        example = spec.get("example_shape")
        if example is not None:
            example = example_shape(self, shape, example, path + ("example_shape",))
        pre = spec.get("preprocess")
        pre = None if pre is None else preprocess(self, name, shape, pre, path + ("preprocess",))
        decl = InputDecl(name, tuple(shape), spec.get("dtype") or "float32", spec.get("batch_size"),
                         bool(spec.get("sparse", False)), bool(spec.get("optional", False)), path, self.src.key(path),
                         example, pre)
        decls.append(decl)
        self.flat[name] = decl
        bindings[name] = Value(((None, Ref(name)),))
    return decls, bindings

def example_shape(self: Resolver, shape: list, example: Any, path: tuple) -> tuple:
    """An input's ``example_shape``: its shape with every null dimension filled by a positive size."""
    fits = isinstance(example, list) and len(example) == len(shape) and all(
        isinstance(e, int) and not isinstance(e, bool) and e >= 1 and (d is None or d == e)
        for d, e in zip(shape, example))
    if not fits:
        shown = ", ".join("null" if d is None else str(d) for d in shape)
        raise self.error(f"example_shape fills the null dimensions of the input's shape [{shown}] with sizes "
                         f"and keeps the others. Received: example_shape={short(example)}", path)
    return tuple(example)

def model_outputs(self: Resolver, ctx: Ctx, last: Value | None) -> tuple[list[tuple[str, Ref]], OutputForm]:
    """The model's outputs (name, ref) and their form: the `outputs:` section, or the last node's outputs."""
    outs = self.data.get("outputs")
    path = ("outputs",)
    if outs is None:
        # The schema gives `nodes` minItems 1 and resolve() takes a schema-valid document, so the
        # model's scope has a last node.
        refs = cast(Value, last).refs
        return [(str(r), r) for r in refs], "single" if len(refs) == 1 else "list"
    if isinstance(outs, dict):
        result = []
        for key, text in outs.items():
            text = _entry(self, key, text, path + (key,))
            value = self.lookup(self.value(text, path + (key,) + _FROM(outs[key]), self.spec_params, ctx), ctx,
                                path + (key,) + _FROM(outs[key]))
            if len(value.items) != 1:
                raise self.error(f"output {key!r} names {len(value.items)} tensors; name one (ref.K or ref.output)",
                                 path + (key,))
            ref = value.items[0][1]
            if key in self.flat and (key != ref.node or ref.index is not None):
                raise self.error(f"output name {key!r} is already the name of another node or input; "
                                 "output names become layer names", path + (key,), key=True)
            result.append((key, ref))
            if _PENDING in self.output_labels:
                self.output_labels[key] = self.output_labels.pop(_PENDING)
        return result, "mapping"
    seq = outs if isinstance(outs, list) else [outs]
    result = []
    for k, text in enumerate(seq):
        p = path + (k,) if isinstance(outs, list) else path
        entry, text = text, _entry(self, None, text, p)
        value = self.lookup(self.value(text, p + _FROM(entry), self.spec_params, ctx), ctx, p + _FROM(entry))
        if isinstance(entry, dict) and "labels" in entry:
            if len(value.refs) != 1:
                raise self.error(f"labels name the classes of one tensor; {short(text)} is {len(value.refs)} tensors "
                                 "(ref.K or ref.output names one)", p + ("from",))
            self.output_labels[str(value.refs[0])] = self.output_labels.pop(_PENDING)
        result += [(str(r), r) for r in value.refs]
    # A list of one output is a single output: Keras users expect a tensor from predict, not [tensor].
    return result, ("list" if len(result) > 1 else "single")


# -- the deployment contract: preprocess on an input, labels on an output ------------------------------

_PENDING = "\0labels"  # the labels of the output entry being resolved, until its name is known


def _FROM(entry: Any) -> tuple:
    """The path suffix of an entry's ref: ``("from",)`` for ``{from: ref, labels: ...}``, else none."""
    return ("from",) if isinstance(entry, dict) else ()


def _entry(self: Resolver, key: str | None, entry: Any, path: tuple) -> Any:
    """The ref of an ``outputs:`` entry; a ``{from, labels}`` entry's labels are read and kept pending."""
    if not isinstance(entry, dict):
        return entry
    if "labels" in entry:
        labels = read_labels(self, self.value(entry["labels"], path + ("labels",), self.spec_params, None),
                             path + ("labels",))
        self.output_labels[_PENDING] = LabelDecl(labels, path + ("labels",), self.src.value(path + ("labels",)))
    return entry["from"]


def read_labels(self: Resolver, value: Any, path: tuple) -> tuple[str, ...]:
    """An output's labels: a list of strings, or a file in the spec's tree holding one label per line."""
    if isinstance(value, list):
        labels = value
    elif isinstance(value, str):
        labels = _labels_file(self, value, path)
    else:
        raise self.error(f"labels are a list of strings or a file name. Received: {short(value)}", path)
    if not labels:
        raise self.error("labels name at least one class", path)
    if len(labels) > MAX_LABELS:
        raise self.error(f"{len(labels):,} labels are over the cap of {MAX_LABELS:,}", path)
    for k, label in enumerate(labels):
        if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS or not label.isprintable():
            at = path + (k,) if isinstance(value, list) else path
            where = f"label {k + 1}" + ("" if isinstance(value, list) else f" (line {k + 1} of {short(value)})")
            raise self.error(f"{where} must be a non-empty printable string of at most {MAX_LABEL_CHARS} characters. "
                             f"Received: {short(label)}", at)
    dupes = sorted({x for x in labels if labels.count(x) > 1}) if len(labels) <= 10_000 else \
        ([] if len(set(labels)) == len(labels) else ["(several)"])
    if dupes:
        raise self.error(f"labels must be distinct; {short(dupes[0])} appears more than once", path)
    return tuple(labels)


MAX_LABELS_FILE = 4 << 20


def _labels_file(self: Resolver, text: str, path: tuple) -> list[str]:
    """The lines of a labels file, confined to the spec's own tree (no --data-root, no shipped data)."""
    try:
        resolved = confine(text, roots_for(self.src.file, None, None))
        with open_regular(resolved) as f:
            raw = f.read(MAX_LABELS_FILE + 1)
    except PathRefused as e:
        text_ = str(e).replace("data path", "labels file").replace("data file", "labels file")
        text_ = text_.split(", or inside a directory named")[0].split("; give a path relative")[0]
        raise self.error(text_, path) from None
    if len(raw) > MAX_LABELS_FILE:
        raise self.error(f"labels file {short(text)} is over {MAX_LABELS_FILE:,} bytes", path)
    try:
        lines = raw.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise self.error(f"labels file {short(text)} is not UTF-8 text", path) from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def preprocess(self: Resolver, name: str, shape: list, raw: dict, path: tuple) -> Preprocess:
    """An input's ``preprocess:`` (schema-checked) as a :class:`~netspec.contract.Preprocess`, checked
    against the input's shape: mean/std per channel, a color that fits the channel count."""
    if "scale" in raw and "rescale" in raw:
        raise self.error("give scale or rescale (another name for it), not both", path + ("rescale",), key=True)
    channels = shape[-1] if shape else None
    for key in ("mean", "std"):
        values = raw.get(key)
        if values is None:
            continue
        if channels is None or len(values) != channels:
            have = "an unknown number of" if channels is None else f"{channels}"
            raise self.error(f"{key} gives one value per channel; input {name!r} has {have} channels (the last "
                             f"dimension of its shape {_shape_text(shape)}). Received: {len(values)} values",
                             path + (key,))
        if key == "std" and any(v == 0 for v in values):
            raise self.error("std divides; it must not be 0", path + (key,))
        for k, v in enumerate(values):
            problem = number_problem(key, float(v))
            if problem is not None:
                raise self.error(f"{problem}. Received: {v!r}", path + (key, k))
    for key in ("scale", "rescale", "offset"):
        problem = number_problem("scale" if key == "rescale" else key, float(raw[key])) if key in raw else None
        if problem is not None:
            raise self.error(f"{problem}. Received: {raw[key]!r}", path + (key,))
    color = raw.get("color")
    if color is not None or raw.get("resize"):
        if len(shape) != 3:
            what = "color" if color is not None else "resize"
            raise self.error(f"{what} applies to an image input, shaped [height, width, channels]; input {name!r} "
                             f"has shape {_shape_text(shape)}", path + (what,))
        want = {"grayscale": 1, "rgb": 3, "bgr": 3}.get(color or "")
        if want is not None and channels is not None and channels != want:
            raise self.error(f"color {color} has {want} channel{'s' if want > 1 else ''}; input {name!r} has {channels}",
                             path + ("color",), hint=f"an input with {channels} channels takes {_color_for(channels)}")
    if raw.get("resize") and any(d is None for d in shape[:2]):
        raise self.error(f"resize needs the input's height and width; input {name!r} has shape {_shape_text(shape)}",
                         path + ("resize",))
    return Preprocess(
        dtype=raw.get("dtype", "float32"), color=color, resize=bool(raw.get("resize", False)),
        interpolation=raw.get("interpolation", "bilinear"), scale=float(raw.get("scale", raw.get("rescale", 1.0))),
        offset=float(raw.get("offset", 0.0)),
        mean=None if raw.get("mean") is None else tuple(float(v) for v in raw["mean"]),
        std=None if raw.get("std") is None else tuple(float(v) for v in raw["std"]))


def _color_for(channels: int) -> str:
    return "grayscale" if channels == 1 else "rgb or bgr" if channels == 3 else "no color conversion (leave color out)"


def _shape_text(shape: list) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"
