"""``input_spec:`` constraints: checked on the symbolic inputs before a node is built, then attached."""

from __future__ import annotations

from .errors import ShapeError
from .graph import Node


def make_input_spec(spec: dict):
    """A ``keras.InputSpec`` from a spec mapping (axes keys may be integer strings)."""
    import keras

    kwargs = dict(spec)
    if "axes" in kwargs:
        kwargs["axes"] = {int(k): v for k, v in kwargs["axes"].items()}
    if "shape" in kwargs:
        kwargs["shape"] = (None, *kwargs["shape"])
    return keras.InputSpec(**kwargs)


def check_input_spec(node: Node, builder) -> None:
    """Check ``node.input_spec`` against the node's inputs; attach it to the node's layer.

    Raises:
        ShapeError: naming the node, the constraint and the actual shape.
    """
    from keras.src.layers.input_spec import assert_input_compatibility

    raw = builder.concrete(node.input_spec)
    spec = make_input_spec(raw)
    tensors = [builder.tensor(r, node) for r in node.input_refs()]
    try:
        assert_input_compatibility(spec, tensors[0] if len(tensors) == 1 else tensors[0], node.name)
    except ValueError as e:
        text = " ".join(str(e).split())
        raise ShapeError(
            f"node {node.name!r}: input_spec {_brief(raw)} does not accept input shape {tuple(tensors[0].shape)}: {text}",
            path=node.path + ("input_spec",),
            location=builder.source.value(node.path + ("input_spec",)),
        ) from None
    layer = builder.layers.get(node.name)
    if layer is not None and getattr(layer, "input_spec", None) is None:
        layer.input_spec = spec


def _brief(raw: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in raw.items()) + "}"
