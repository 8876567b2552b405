"""The structures of an imported model's inputs and outputs: nested inputs, dict outputs, dict calls.

Keras 3 keeps a functional model's inputs and outputs in the structure they were given (a tensor, a
list, a dict, nested: ``keras.Model({"pair": [a, b], "y": y}, ...)``). A spec's inputs are a flat
mapping by name and its outputs a ref, a list or a flat mapping ``name: ref``: nested inputs become
their leaves (named after their ``Input`` layers, in ``keras.tree.flatten`` order), dict outputs keep
their keys as the output names.
"""

from __future__ import annotations

from .. import kerasapi
from ..errors import ModelImportError, short
from .calls import TensorDict
from .foldgraph import is_name
from .values import history_list, is_nested, plain_value, positional


def top_structures(flat, model, config: dict, live: dict) -> None:
    """Read the top model's input and output structures into ``flat`` (the
    :class:`~netspec.importing.graph.Flattener`), before its walk names any node.

    Nested inputs (``keras.Model({"pair": [a, b], "y": y}, ...)``) become the spec's flat inputs,
    named after their ``Input`` layers. A flat dict of inputs names them by its keys, as Keras feeds
    them (``keras.Model({"b": a, "a": b}, ...)`` takes ``{"b": ...}`` into the Input named a). Dict
    outputs keep their keys as the spec's output names: a key is reserved here, so that a node named
    like it (the output's own layer aside) gets a fresh name instead; users call the outputs by key.
    """
    import keras

    if is_nested(config["input_layers"]):
        flat.notes.append("the model's inputs are a nested structure; the spec takes its leaves as inputs "
                          "named after their Input layers (feed them as a dict by those names)")
    elif isinstance(config["input_layers"], dict):
        by_layer = {entry[0]: str(key) for key, entry in config["input_layers"].items()}
        if any(layer != key for layer, key in by_layer.items()) and all(is_name(k) for k in by_layer.values()):
            flat.input_keys = by_layer
            flat.notes.append("the model's input dict has keys other than its Input layers' names; the spec "
                              "names its inputs by the keys, as the model is fed")
    outputs = config["output_layers"]
    if not isinstance(outputs, dict) or is_nested(outputs):
        if is_nested(outputs):
            flat.notes.append("the model's outputs are a nested structure; the spec lists its leaves")
        return
    keys = [str(k) for k in outputs]
    if not all(is_name(k) for k in keys):
        flat.notes.append("the model's outputs are a dict whose keys are not all names; the spec "
                          "lists them instead (outputs named after their nodes)")
        return
    flat.output_keys = keys
    inputs = {entry[0] for entry in history_list(config["input_layers"])}
    for key, entry in zip(keys, outputs.values()):
        layer = live.get(key)
        # the output's own layer, named like its key, keeps that name: the output is its one tensor
        own = (list(entry) == [key, 0, 0] and isinstance(layer, keras.layers.Layer)
               and not isinstance(layer, keras.Model) and output_count(model, layer, 0) == 1)
        if not own and key in inputs:
            raise ModelImportError(
                f"the model's output {short(key)} is named like its input {short(key)}: a spec's output names "
                "become layer names, so one name cannot be both (users feed inputs and read outputs by name)",
                hint="rename the Input or the output's key in the source model, then import it")
        if not own:
            flat.used.add(key)
            flat.reserved.add(key)


def call_refs(model, inputs, where: str) -> list[str]:
    """A nested model's call inputs as refs in the order of its ``inputs``.

    A model built on a dict of inputs and called with a dict of the same keys takes them by key:
    both flatten in sorted key order (``keras.tree.flatten``), the order
    :meth:`netspec.importing.graph.Flattener.model` binds the model's inputs in.

    Raises:
        ModelImportError: called with a dict its inputs are not, or with keyword arguments.
    """
    if isinstance(inputs, TensorDict):
        layers = plain_value(model.get_config()).get("input_layers")
        keys = sorted(inputs, key=str)
        if isinstance(layers, dict) and not is_nested(layers) and sorted(layers, key=str) == keys:
            return [inputs[k] for k in keys]
        raise ModelImportError(f"the nested model {short(where, 80)} is called with a dict of tensors (keys "
                               f"{short(keys, 80)}) that is not the structure of its inputs; call it on a tensor, "
                               "a list of tensors, or a dict with its inputs' keys")
    return positional(inputs, where)


def model_nodes(model, op) -> list:
    """The live calls of ``op`` in ``model`` (:func:`netspec.kerasapi.model_nodes`), or none."""
    try:
        return kerasapi.model_nodes(model, op)
    except Exception:  # private Keras structures changed: no live calls (masks are then kept)
        return []


def output_count(model, op, k: int) -> int:
    """How many tensors call ``k`` of ``op`` (re-indexed as in the model's config) returns (1 when unknown)."""
    nodes = model_nodes(model, op)
    return len(nodes[k].outputs) if k < len(nodes) else 1
