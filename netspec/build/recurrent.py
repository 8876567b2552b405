"""RNN ``initial_state``: the tensors a node binds, counted against its cell's states before the call.

Keras traces ``LSTM(...)(x, initial_state=[out, h, c])`` symbolically without complaint and fails only
when the model is first called ("Too few leaves for PyTreeSpec"); counting here makes it an error at
``check``/``build`` that names the spec line of the ``initial_state`` binding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NetspecError

if TYPE_CHECKING:
    from ..graph import Node
    from .compiler import Builder

# Names of the states of the common cells, for the message (others are counted, not named).
_STATE_NAMES = {"LSTM": "h, c", "ConvLSTM1D": "h, c", "ConvLSTM2D": "h, c", "ConvLSTM3D": "h, c",
                "GRU": "h", "SimpleRNN": "h"}


def state_count(layer: Any) -> int | None:
    """How many state tensors ``layer``'s ``initial_state`` takes, or None for a layer that is no RNN.

    An RNN's cell declares ``state_size`` (one size per state, nested for stacked cells);
    ``Bidirectional`` takes the states of its forward layer and then its backward layer.
    """
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        fwd, bwd = state_count(layer.forward_layer), state_count(layer.backward_layer)
        return None if fwd is None or bwd is None else fwd + bwd
    if not isinstance(layer, keras.layers.RNN):
        return None
    size = getattr(layer.cell, "state_size", None)
    if size is None:
        return None
    return len(keras.tree.flatten(size)) if isinstance(size, (list, tuple)) else 1


def check_initial_state(node: Node, layer: Any, call_in: dict, builder: Builder) -> None:
    """Refuse an ``initial_state`` binding whose tensor count is not the layer's state count.

    Raises:
        NetspecError: located at ``in.initial_state``, naming both counts and how to name the states.
    """
    import keras

    if "initial_state" not in call_in:
        return
    want = state_count(layer)
    if want is None:
        return
    bound = call_in["initial_state"]
    got = len(keras.tree.flatten(bound)) if isinstance(bound, (list, tuple)) else 1
    if got == want:
        return
    kind = type(layer).__name__
    inner = type(layer.forward_layer).__name__ if isinstance(layer, keras.layers.Bidirectional) else kind
    names = _STATE_NAMES.get(inner)
    what = f"{want} state tensor{'s' * (want != 1)}"
    if names:
        what += f" ({names}" + (", forward then backward)" if inner != kind else ")")
    refs = node.inputs["initial_state"] if isinstance(node.inputs, dict) else None
    told = ", ".join(str(r) for r in refs) if isinstance(refs, list) else str(refs)
    hint = None
    if refs is not None and not isinstance(refs, list) and refs.index is None and got == want + 1:
        # a bare ref to an RNN with return_state: its outputs are [output, *states]
        hint = ("an RNN with return_state: true returns [output, *states]; bind its states: "
                f"initial_state: [{', '.join(f'{refs.node}.{k}' for k in range(1, want + 1))}]")
    path = node.path + ("in", "initial_state")
    where = f" ({node.instance_note})" if node.instance_note else ""
    raise NetspecError(f"node {node.name!r}{where}: {kind} takes {what} as initial_state; "
                       f"received {got} ({told})", path=path, location=builder.source.value(path), hint=hint)
