"""``check``'s proof that the model runs: one call of the built model on a generated batch.

Keras builds a functional model symbolically, and some mistakes pass that trace and fail only on
the first real call (an ``initial_state`` of the wrong structure, a user layer whose ``call``
raises on values, a dtype Keras casts only eagerly). ``check`` therefore calls the model once, on a
batch of ``Budget.batch`` samples of the declared shapes: float inputs drawn from a fixed seed,
integer and boolean inputs zeros (a valid index for every ``Embedding``); unknown (null)
dimensions at :data:`netspec.budget.UNKNOWN_DIM`, or at the input's ``example_shape``.

The cost is one forward pass: the activation budget the build checked (node outputs and hidden
intermediates, at these same sizes) bounds it, and the generated inputs are priced against the
same budget before they are made. A failure is located at the node that raises (the model's
layers are called again one by one on the batch to find it) or, if no single node does, at the
model's ``nodes:``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..budget import Budget, allocation_guard, elements, feed_dims, generated_bytes
from ..errors import NetspecError
from ..graph import Graph, Node, Ref

if TYPE_CHECKING:
    from ..source.loader import SourceMap
    from .compiler import Compiled

SEED = 0


def prove_first_batch(compiled: Compiled, graph: Graph, source: SourceMap, budget: Budget) -> str | None:
    """Call ``compiled.model`` once on a generated batch.

    Returns:
        None when the batch ran; otherwise why it was not run (a note for the check's warnings).

    Raises:
        NetspecError: the model fails on the batch (located at the failing node when one fails), or
            the batch would exceed the activation budget.
    """
    from ..errors import keras_message

    if any(d.sparse for d in graph.inputs):
        return "the first batch was not run: sparse inputs are not generated"
    if any(_kind(d.dtype) is None for d in graph.inputs):
        return "the first batch was not run: string inputs are not generated"
    shapes = {d.name: _dims(d.shape, d.example_shape) for d in graph.inputs}
    batch = {d.name: d.batch_size or budget.batch for d in graph.inputs}
    problem = _symbolic_problem(compiled.model, graph, shapes, batch)
    if problem is not None:
        return (f"the first batch was not run: the model does not take its unknown dimensions at "
                f"{_describe(shapes)} ({problem}); give the inputs an example_shape")
    _check_budget(compiled, graph, shapes, batch, budget, source)
    data = _generate(graph, shapes, batch)

    def fail(message: str) -> NetspecError:
        return NetspecError(f"the first batch: {message}", location=source.value(("nodes",)))

    with allocation_guard(fail, "running the first batch"):
        try:
            compiled.model(data[0] if len(data) == 1 else data, training=False)
        except NetspecError:
            raise
        except Exception as e:
            if _is_memory(e):
                raise
            located = _locate(compiled, graph, source, {d.name: x for d, x in zip(graph.inputs, data)})
            raise located or NetspecError(
                f"the model builds but fails on its first batch ({_describe(shapes)}): {keras_message(e)}",
                path=("nodes",), location=source.value(("nodes",)),
                hint="netspec check --no-run skips this call") from None
    return None


def _is_memory(e: BaseException) -> bool:
    from ..budget import is_allocation_failure

    return is_allocation_failure(e)


def _dims(shape: tuple, example: tuple | None) -> tuple[int, ...]:
    return tuple(int(x) for x in example) if example is not None else feed_dims(shape)


def _describe(shapes: dict[str, tuple]) -> str:
    return ", ".join(f"{name} {tuple(s)}" for name, s in shapes.items())


def _symbolic_problem(model: Any, graph: Graph, shapes: dict, batch: dict) -> str | None:
    """Why Keras's shape inference refuses the model at the fed sizes, or None (only with null dims)."""
    import keras

    from ..errors import keras_message

    if not any(None in d.shape for d in graph.inputs):
        return None
    tensors = [keras.KerasTensor((batch[d.name], *shapes[d.name]), dtype=d.dtype) for d in graph.inputs]
    try:
        model.compute_output_spec(tensors[0] if len(tensors) == 1 else tensors)
    except Exception as e:
        return keras_message(e)
    return None


def _check_budget(compiled: Compiled, graph: Graph, shapes: dict, batch: dict, budget: Budget,
                  source: SourceMap) -> None:
    """Refuse a batch whose inputs and activations exceed the activation budget, before making it."""
    scale = 1.0
    for d in graph.inputs:  # the build priced unknown dims at feed_dims; an example_shape may be larger
        scale = max(scale, elements(shapes[d.name]) / max(1, elements(feed_dims(d.shape))))
        scale = max(scale, batch[d.name] / budget.batch)
    inputs = sum(generated_bytes(shapes[d.name], d.dtype) * batch[d.name] for d in graph.inputs)
    total = int(compiled.activation_bytes * scale) + inputs
    if total > budget.max_activation_bytes:
        raise NetspecError(f"the first batch needs ~{total / 2**20:,.0f} MiB (inputs and activations), over the "
                           f"activation budget of {budget.activation_note()}",
                           path=("inputs",), location=source.key(("inputs",)),
                           hint="netspec check --no-run skips the first batch")


def _generate(graph: Graph, shapes: dict, batch: dict) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    out = []
    for d in graph.inputs:
        full = (batch[d.name], *shapes[d.name])
        if _kind(d.dtype) == "f":
            out.append(rng.standard_normal(full).astype(d.dtype if d.dtype != "bfloat16" else "float32"))
        else:
            out.append(np.zeros(full, dtype=d.dtype))
    return out


def _kind(dtype: str) -> str | None:
    """numpy's kind letter of an input dtype ("f" for bfloat16, fed as float32); None for strings."""
    import numpy as np

    if dtype == "bfloat16":
        return "f"
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        return None
    return None if kind in "SUO" else kind


def _pick(tensors: dict, ref: Ref) -> Any:
    value = tensors[ref.node]
    return value if ref.index is None else value[ref.index]


def _locate(compiled: Compiled, graph: Graph, source: SourceMap, tensors: dict) -> NetspecError | None:
    """Call the model's layers one by one on the batch; the located error of the first that fails."""
    from ..errors import keras_message

    for node in graph.nodes:
        layer = compiled.layers[node.name]
        call_in: Any
        if isinstance(node.inputs, dict):
            call_in = {k: [_pick(tensors, x) for x in r] if isinstance(r, list) else _pick(tensors, r)
                       for k, r in node.inputs.items()}
        else:
            seq = [_pick(tensors, r) for r in node.inputs]
            call_in = seq[0] if len(seq) == 1 else seq
        try:
            if isinstance(call_in, dict) and node.kind != "expr":
                tensors[node.name] = layer(**call_in, training=False) if _takes_training(layer) else layer(**call_in)
            else:
                tensors[node.name] = layer(call_in, training=False) if _takes_training(layer) else layer(call_in)
        except NetspecError as e:
            return e
        except Exception as e:
            if _is_memory(e):
                raise
            return _at(node, source, f"builds but fails on the first batch: {keras_message(e)}")
    return None


def _takes_training(layer: Any) -> bool:
    import inspect

    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False


def _at(node: Node, source: SourceMap, message: str) -> NetspecError:
    where = f" ({node.instance_note})" if node.instance_note else ""
    return NetspecError(f"node {node.name!r}{where}: {message}", path=node.path, location=node.location,
                        hint="netspec check --no-run skips the first batch")
