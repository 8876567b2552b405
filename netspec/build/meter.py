"""The build's running budget: parameters, activation bytes and initializer work, node by node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import kerasapi
from ..budget import Budget, format_bytes, init_work, intermediate, itemsize, tensor_bytes
from ..errors import NetspecError
from ..graph import Node

if TYPE_CHECKING:
    from .compiler import Builder


def _call_shapes(call_in) -> list[tuple[str, tuple]]:
    """A layer's call arguments as (keyword or position, shape without batch), for the cost tables."""
    if isinstance(call_in, dict):
        return [(str(k), tuple(t.shape)[1:]) for k, t in call_in.items() if hasattr(t, "shape")]
    seq = call_in if isinstance(call_in, (list, tuple)) else [call_in]
    return [(str(i), tuple(t.shape)[1:]) for i, t in enumerate(seq) if hasattr(t, "shape")]


class Meter:
    """Running totals of parameters and activation bytes, checked around each node before anything is allocated.

    Activations are node outputs plus the hidden intermediates of :data:`netspec.budget.INTERMEDIATES`
    (training keeps both for the backward pass), for ``budget.batch`` samples, with unknown
    dimensions at the sizes the gate feeds.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget, self.params, self.bytes = budget, 0, 0
        self.seen: set[int] = set()  # ids of the weights counted (a shared layer's count once)

    def _per(self) -> str:
        return "per sample" if self.budget.batch == 1 else f"for a batch of {self.budget.batch}"

    def _over(self, node: Node, b: Builder, what: str, total: int) -> NetspecError:
        return b.fail(node, f"{what} reach {total / 2**20:,.0f} MiB {self._per()} here, over the activation "
                            f"budget of {self.budget.activation_note()}", cls=NetspecError)

    def before_call(self, node: Node, layer, call_in, b: Builder) -> None:
        """Price the layer's hidden intermediates from its symbolic inputs, before it is called."""
        cost = intermediate(layer, _call_shapes(call_in))
        if cost is None:
            return
        what, n = cost
        size = n * itemsize(getattr(layer, "compute_dtype", "float32")) * self.budget.batch
        if self.bytes + size > self.budget.max_activation_bytes:
            raise self._over(node, b, f"{type(layer).__name__}'s {what} ({format_bytes(size)}) and the node outputs "
                                      "before it", self.bytes + size)
        self.bytes += size

    def add(self, node: Node, layer, out, b: Builder) -> None:
        for w in layer.weights:
            if id(w) in self.seen:
                continue
            self.seen.add(id(w))
            shape = [int(d) for d in w.shape]
            self.params += _count(shape)
            if self.params > self.budget.max_params:
                raise b.fail(node, f"the model reaches {self.params:,} parameters here, over the budget of "
                                   f"{self.budget.params_note()}", cls=NetspecError)
            initializer = kerasapi.pending_initializer(w)
            work = init_work(initializer, shape)
            if work is not None and work[1] > self.budget.max_init_work:
                init = type(initializer).__name__
                raise b.fail(node, f"the {init} initializer of weight {w.name!r} {_shape_text(shape)} needs {work[0]} "
                                   f"(~{work[1]:.1e} multiply-adds, over the bound of {self.budget.max_init_work:.1e}, "
                                   "a 4096 x 4096 kernel, which takes seconds); use another initializer "
                                   "(glorot_uniform) or a smaller layer", cls=NetspecError)
        tensors = out if isinstance(out, (list, tuple)) else [out]
        self.bytes += sum(tensor_bytes(t) for t in tensors) * self.budget.batch
        if self.bytes > self.budget.max_activation_bytes:
            raise self._over(node, b, "node outputs", self.bytes)


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
