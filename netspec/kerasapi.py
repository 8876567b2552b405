"""The one module that reaches into Keras internals (``keras.src``, private attributes).

Everything else in netspec uses public Keras API; where Keras 3 has none (a tensor's producing
layer, a layer's call nodes, the deferred variable initialization of a symbolic build, the
registries behind ``keras.<module>.get``), it calls a function here, so a Keras upgrade that moves
an internal breaks this file and nothing else. Keras is imported inside the functions: importing
this module costs nothing, and ``netspec validate`` never starts TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

# -- symbolic builds ------------------------------------------------------------------------------


@contextlib.contextmanager
def symbolic_build(*, allocate: bool = False) -> Iterator[None]:
    """Build layers and models inside the block with shapes but no weight memory.

    Variables created in the block (``keras.StatelessScope(initialize_variables=False)``) get
    their shapes and dtypes and keep their initializers, but nothing is allocated: a
    350M-parameter model builds in seconds, and a model over a budget is refused before it
    costs memory.

    Args:
        allocate: when the block succeeds, allocate (initialize) the variables it created, on
            leaving it. Otherwise (and always when the block raises) they are discarded and never
            allocated; the objects built in the block are then for their shapes only.
    """
    import keras
    from keras.src.backend.common import global_state
    from keras.src.backend.common.variables import initialize_all_variables

    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    except BaseException:
        global_state.set_global_attribute("uninitialized_variables", [])  # never allocate them
        raise
    if allocate:
        initialize_all_variables()
    else:
        global_state.set_global_attribute("uninitialized_variables", [])


def pending_initializer(variable: Any) -> Any:
    """The initializer a variable built symbolically keeps until it is allocated (None once it is)."""
    return getattr(variable, "_initializer", None)


# -- the functional graph ------------------------------------------------------------------------


def producer(tensor: Any) -> Any:
    """The operation (layer) whose call made the symbolic ``tensor`` (an ``InputLayer`` for an input)."""
    return tensor._keras_history[0]


def inbound_nodes(operation: Any) -> list:
    """The call nodes of a layer or operation, in call order (empty when it was never called).

    Each node has ``input_tensors`` and ``output_tensors`` (``outputs``: the same, as Keras keeps them).
    """
    return getattr(operation, "_inbound_nodes", [])


def keras_mask(tensor: Any) -> Any:
    """The mask Keras attached to a symbolic tensor (Embedding ``mask_zero``, Masking), or None."""
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor) if hasattr(tensor, "shape") else None


def call_of(tensor: Any) -> tuple[Any, Any] | None:
    """``(operation, node)`` of the call that made the symbolic ``tensor``; the node's ``arguments``
    hold the call's ``args`` and ``kwargs``. None for a tensor with no history."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    operation, index = history[0], history[1]
    nodes = getattr(operation, "_inbound_nodes", [])
    return (operation, nodes[index]) if index < len(nodes) else None


def model_nodes(model: Any, operation: Any) -> list:
    """The call nodes of ``operation`` that belong to ``model`` (a layer may be called outside it too)."""
    from keras.src.ops.function import make_node_key

    return [node for i, node in enumerate(operation._inbound_nodes) if make_node_key(operation, i) in model._nodes]


def config_call_offset(operation: Any) -> int:
    """What a model config's ``output_layers`` adds to the call index of ``operation``: 1 for a functional
    model, whose node 0 is the one that made it (``get_network_config`` numbers its kept nodes from 1), else 0.
    The ``keras_history`` of a call's own arguments counts calls from 0."""
    from keras.src.models.functional import Functional

    return 1 if isinstance(operation, Functional) else 0


def child_layers(layer: Any) -> list:
    """The layers directly inside ``layer`` (a model's layers, a wrapper's wrapped layer), not itself."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def keras_module(cls: type) -> str | None:
    """Where a Keras class lives inside Keras (``"ops.numpy"``, ``"applications.convnext"``), None if not Keras's."""
    module = cls.__module__
    prefix = "keras.src."
    return module[len(prefix):] if module.startswith(prefix) else None


# -- layers and errors ----------------------------------------------------------------------------


def assert_input_compatibility(spec: Any, tensor: Any, layer_name: str) -> None:
    """Keras's own check of ``tensor`` against a ``keras.InputSpec`` (raises ValueError with its reason)."""
    from keras.src.layers.input_spec import assert_input_compatibility as check

    check(spec, tensor, layer_name)


def keep_error_as_raised(error: BaseException) -> None:
    """Mark an exception raised inside a layer's call so that Keras re-raises it unchanged.

    Keras otherwise replaces it with a new exception of the same class carrying the call's
    arguments in its message, which would lose the error's own fields (spec path, location).
    """
    error._keras_call_info_injected = True  # type: ignore[attr-defined]


# -- registries (what the schema generator derives its enums from) --------------------------------


def object_registry(module_name: str) -> dict[str, Any]:
    """The name -> object table behind ``keras.<module_name>.get`` (initializers, activations, ...)."""
    return dict(importlib.import_module(f"keras.src.{module_name}").ALL_OBJECTS_DICT)


def tensor_dtypes() -> list[str]:
    """Every dtype name Keras accepts for a tensor."""
    from keras.src.backend.common import dtypes

    return list(dtypes.ALLOWED_DTYPES)


def snake_case(name: str) -> str:
    """Keras's default object name for a class name (``MeanSquaredError`` -> ``mean_squared_error``)."""
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)


def assign_weights(model: Any, weights: list) -> None:
    """``model.set_weights(weights)``, then what Keras's own weight loading (``load_own_variables``) does after it:
    a layer that derives state from the variables just assigned recomputes it (``finalize_state``: an adapted
    Normalization's mean and variance). ``set_weights`` alone left an adapted Normalization at mean 0, variance 1,
    so a spec given a trained ``.keras`` file's weights computed something else. Layers without variables (a
    Discretization's bins, a lookup's vocabulary live in their config) are left as they are."""
    model.set_weights(weights)
    for layer in model._flatten_layers(include_self=False):
        finalize = getattr(layer, "finalize_state", None)
        if finalize is not None and getattr(layer, "built", False) and layer.weights:
            finalize()
