"""How netspec calls a Keras model: its input and output names, the structure its inputs are packed in,
and the serving ``tf.function`` every converter traces.

Spec models are called by the spec's names; a ``.keras`` file's model by its own (its dict keys where it was
built on dicts), each output once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ExportError
from ..resolve.scope import unique_name


@dataclass(frozen=True)
class IONames:
    """The model's input names (in call order) and output names (in output order)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def io_names(model, graph=None) -> IONames:
    """Input and output names: the spec's (its input names and output names) or the model's own."""
    inputs = tuple(t.name for t in model.inputs)
    if graph is not None:
        outputs = tuple(name for name, _ in graph.outputs)
        flat = flat_outputs(model)
        if len(outputs) != len(flat):  # a bare ref to a multi-output node: one name per tensor
            outputs = tuple(f"{outputs[0]}_{i}" for i in range(len(flat))) if len(outputs) == 1 else \
                output_names(model)
        return IONames(inputs, outputs)
    return IONames(inputs, output_names(model))


def output_names(model) -> tuple[str, ...]:
    """A Keras model's output names, in ``model.outputs`` order, each once.

    Outputs built as a dict are called by its keys (``{"first": head}`` is ``first``, not the layer's
    name ``head``); others by the layer that made them, and a layer making two outputs (one shared
    layer on two inputs) names the second ``shared_1``, as ``netspec import`` names it.
    """
    import keras

    struct = _structure(model, "output")
    flat = keras.tree.flatten(struct) if struct is not None else []
    if isinstance(struct, Mapping) and len(flat) == len(struct):
        names = [str(k) for k in keras.tree.flatten({k: k for k in struct})]  # the keys, in flatten's order
    else:
        names = list(model.output_names)
    unique: list[str] = []
    for name in names:
        unique.append(unique_name(name, set(unique)))
    return tuple(unique)


def _structure(model, which: str):
    """``model.input`` or ``model.output``: the structure it was built with, or None (a Sequential never
    called has ``inputs`` and ``outputs`` but neither)."""
    try:
        return getattr(model, which)
    except AttributeError:
        return None


def flat_outputs(model) -> list:
    """The model's output tensors as a list (a dict of outputs in its order)."""
    out = model.outputs
    return list(out.values()) if isinstance(out, dict) else list(out)


def named_outputs(model, names: IONames, result) -> dict[str, Any]:
    """A model call's result as a dict by output name."""
    import keras

    if isinstance(result, Mapping) and set(result) == set(names.outputs):
        return {k: result[k] for k in names.outputs}
    flat = keras.tree.flatten(result)  # model.outputs' order: a dict's by sorted key
    if len(flat) != len(names.outputs):
        raise ExportError(f"the model returned {len(flat)} outputs where its outputs are "
                          f"{', '.join(names.outputs)}")
    return dict(zip(names.outputs, flat))


def model_args(model, flat: list):
    """The model's call argument from tensors in ``model.inputs`` order, in the structure it was built with.

    A model built on a dict of inputs lists them in ``model.inputs`` by sorted key, and refuses a list;
    one built on ``[x]`` takes the list. ``keras.tree`` packs them as the model's own ``input`` nests them.
    """
    import keras

    struct = _structure(model, "input")
    if struct is None or len(keras.tree.flatten(struct)) != len(flat):
        return flat[0] if len(flat) == 1 else list(flat)
    return keras.tree.pack_sequence_as(struct, list(flat))


def call_model(model, names: IONames, x: Mapping[str, Any]) -> dict[str, Any]:
    """``model(x, training=False)`` as a dict of numpy arrays by output name."""
    import numpy as np

    result = model(model_args(model, [x[n] for n in names.inputs]), training=False)
    return {k: np.asarray(v) for k, v in named_outputs(model, names, result).items()}


def input_signature(model, names: IONames, batch_size: int | None, shapes: Mapping[str, tuple] | None = None) -> list:
    """The serving signature: the model's inputs at ``batch_size``, with ``shapes`` (by name) fixing other dims."""
    import tensorflow as tf

    sig = []
    for tensor, name in zip(model.inputs, names.inputs):
        shape = (batch_size, *((shapes or {}).get(name) or tuple(tensor.shape)[1:]))
        sig.append(tf.TensorSpec(shape, tf.as_dtype(tensor.dtype), name=name))
    return sig


def serving_function(model, names: IONames, batch_size: int | None, shapes: Mapping[str, tuple] | None = None):
    """A ``tf.function`` with an explicit signature, returning a dict by output name."""
    import tensorflow as tf

    sig = input_signature(model, names, batch_size, shapes)

    @tf.function(input_signature=sig, autograph=False)
    def serve(*args):
        result = model(model_args(model, list(args)), training=False)
        return named_outputs(model, names, result)

    return serve, sig
