"""``input_spec:`` constraints: checked on the symbolic inputs before a node is built, then attached."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ShapeError
from ..kerasapi import assert_input_compatibility
from ..graph import DeferredArg, Node
from ..schema.recheck import check_interpolated, def_schema

if TYPE_CHECKING:
    from .compiler import Builder

_PREAMBLE = re.compile(r"^Input \d+ (with name '[^']*' )?of layer '[^']*' is incompatible with the layer: ")


def make_input_spec(spec: dict):
    """A ``keras.InputSpec`` from a spec mapping (axes keys may be integer strings)."""
    import keras

    kwargs = dict(spec)
    if "axes" in kwargs:
        kwargs["axes"] = {int(k): v for k, v in kwargs["axes"].items()}
    if "shape" in kwargs:
        kwargs["shape"] = (None, *kwargs["shape"])
    return keras.InputSpec(**kwargs)


def check_input_spec(node: Node, builder: Builder) -> None:
    """Check ``node.input_spec`` against the node's inputs; attach it to the node's layer.

    Raises:
        SchemaError: a shape-dependent ``${...}`` evaluated to something ``input_spec`` cannot hold.
        ShapeError: naming the node, the constraint and the actual shape.
    """
    raw = builder.concrete(node.input_spec)
    if isinstance(node.input_spec, DeferredArg):  # shape-dependent: re-checked now that it has a value
        check_interpolated(raw, node.input_spec.raw, node.path + ("input_spec",), builder.source,
                           def_schema("inputSpec"), note=node.instance_note)
    spec = make_input_spec(raw)
    tensors = [builder.tensor(r, node) for r in node.input_refs()]
    for k, tensor in enumerate(tensors):  # the constraint holds for each of the node's inputs
        try:
            assert_input_compatibility(spec, tensor, node.name)
        except ValueError as e:
            # Keras's own words, without its "Input 0 with name ... of layer ..." preamble.
            text = _PREAMBLE.sub("", " ".join(str(e).split()))
            which = f"input {k}, of shape" if len(tensors) > 1 else "input shape"
            raise ShapeError(
                f"node {node.name!r}: input_spec {_brief(raw)} does not accept {which} {tuple(tensor.shape)}: {text}",
                path=node.path + ("input_spec",),
                location=builder.source.value(node.path + ("input_spec",)),
            ) from None
    layer = builder.layers.get(node.name)
    if layer is None or getattr(layer, "input_spec", None) is not None:
        return  # a layer's own input_spec (user layers) stays; netspec checked the spec's above
    if isinstance(node.inputs, list):
        # Keras checks a list of inputs against a list of specs, one each.
        layer.input_spec = spec if len(tensors) == 1 else [spec] * len(tensors)
    elif len(tensors) == 1 and node.kind != "expr":
        layer.input_spec = spec


def _brief(raw: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in raw.items()) + "}"
