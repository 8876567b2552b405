"""The model's ports: its ``inputs:`` (with ``example_shape``) and its ``outputs:``.

Functions of the :class:`~netspec.resolve.resolver.Resolver` (named ``self`` as the methods they were),
kept apart so the resolver stays about scopes and nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from ..errors import short
from ..graph import InputDecl, Ref, Value
from ..schema.recheck import check_interpolated, def_schema
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
        check_interpolated(spec, raw, path, self.src, def_schema("input"))  # "${...}" must be an input
        spec = {"shape": spec} if isinstance(spec, list) else spec
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in shape):
            raise self.error(f"an input shape is a list of positive integers or null. Received: shape={short(shape)}",
                             path + (("shape",) if isinstance(self.data["inputs"][name], dict) else ()))
        example = spec.get("example_shape")
        if example is not None:
            example = example_shape(self, shape, example, path + ("example_shape",))
        decl = InputDecl(name, tuple(shape), spec.get("dtype") or "float32", spec.get("batch_size"),
                         bool(spec.get("sparse", False)), bool(spec.get("optional", False)), path, self.src.key(path),
                         example)
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
            value = self.lookup(self.value(text, path + (key,), self.spec_params, ctx), ctx, path + (key,))
            if len(value.items) != 1:
                raise self.error(f"output {key!r} names {len(value.items)} tensors; name one (ref.K or ref.output)",
                                 path + (key,))
            ref = value.items[0][1]
            if key in self.flat and (key != ref.node or ref.index is not None):
                raise self.error(f"output name {key!r} is already the name of another node or input; "
                                 "output names become layer names", path + (key,), key=True)
            result.append((key, ref))
        return result, "mapping"
    seq = outs if isinstance(outs, list) else [outs]
    result = []
    for k, text in enumerate(seq):
        p = path + (k,) if isinstance(outs, list) else path
        value = self.lookup(self.value(text, p, self.spec_params, ctx), ctx, p)
        result += [(str(r), r) for r in value.refs]
    # A list of one output is a single output: Keras users expect a tensor from predict, not [tensor].
    return result, ("list" if len(result) > 1 else "single")
