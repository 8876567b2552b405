"""One call of a layer in an imported model: its tensors as a spec node's ``in:`` (a ref, a list, or
call keywords such as ``{sequences: x, initial_state: [enc.1, enc.2]}`` and ``{query: q, value: v}``).

Keras records what a call passed in the model's config (``inbound_nodes``: ``args`` and ``kwargs``
with serialized tensors). Two things it records that the model's author did not write are left out,
because building the spec makes Keras record them again: ``training`` (Keras fills in ``False``
while it builds a functional model, or the default of the layer's ``call``: ``True`` for the random
augmentation layers) and an implicit ``mask`` (the mask an ``Embedding(mask_zero=True)``
or a ``Masking`` layer attaches to its output, which Keras passes on to the next layer by itself).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from .. import kerasapi
from ..errors import ModelImportError, short
from .values import call_tensors, history_list, is_tensor

Ref = Callable[[dict], str]


class TensorDict(dict):
    """The call's only argument was a dict of tensors (netspec's expression layer takes one)."""


def _tensors(value) -> bool:
    """A tensor, or a non-empty list of tensors (what a spec's ``in:`` can pass)."""
    return is_tensor(value) or (isinstance(value, list) and bool(value) and all(is_tensor(v) for v in value))


def _refs(value, ref: Ref):
    return ref(value) if is_tensor(value) else [ref(v) for v in value]


def _what(value) -> str:
    """A call value for a message: never a serialized tensor config (they are long and say nothing)."""
    if is_tensor(value):
        return "a tensor"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return short(value)


def call_inputs(node: dict, ref: Ref, op, where: str, live=None) -> list[str] | dict[str, Any]:
    """The inputs of one call as a spec ``in:``: a list of refs (a layer called on a tensor or a list
    of tensors), or a mapping keyword -> ref or list of refs (a call with keywords).

    Args:
        node: the call in the model's config (``{"args": [...], "kwargs": {...}}``).
        ref: turns a serialized tensor into the ref of what made it.
        op: the live layer (its ``call`` signature names positional arguments).
        where: the layer's name, for messages.
        live: the live call node (implicit masks are recognised on it), or None.

    Raises:
        ModelImportError: the call passes something a spec cannot (``training=True``, a value that is
            not a tensor); the message names the layer, its class and the keyword.
    """
    args, kwargs = list(node.get("args", [])), dict(node.get("kwargs", {}))
    label = f"layer {short(where, 80)} ({type(op).__name__})"
    if "mask" in kwargs and live is not None and implicit_mask(live):
        del kwargs["mask"]
    for key, value in list(kwargs.items()):
        if key == "training" and not _tensors(value):
            if value is True and _call_default(op, "training") is not True:
                raise ModelImportError(f"{label} is called with training=True (it always runs as in training); "
                                       "a spec cannot pass training", hint="call it without training=, or "
                                       "write the behaviour as a user layer class (@netspec.register_layer)")
            # False or None: what Keras itself passes while it builds the model; True where the layer's
            # call() defaults to it (RandomFlip: Keras records the default, the author wrote nothing)
            del kwargs[key]
        elif _all_none(value):
            # None, or one None per input (mask=[None, None] of a two-input nested model, or
            # {"p": None, "q": None} of one called with a dict)
            del kwargs[key]
        elif not _tensors(value):
            raise ModelImportError(f"{label} is called with keyword {key}={_what(value)}; a spec node passes "
                                   "only tensors (a ref or a list of refs) as call keywords",
                                   hint=f"give {key} to the layer's constructor if it takes it, or write the "
                                        "node by hand")
    if len(args) == 1 and isinstance(args[0], dict) and not kwargs and args[0] \
            and all(is_tensor(v) for v in args[0].values()):
        return TensorDict({k: ref(v) for k, v in args[0].items()})
    for i, a in enumerate(args):
        if not _tensors(a):
            raise ModelImportError(f"{label} is called with {_what(a)} as positional argument {i}; a spec node "
                                   "passes only tensors")
    if not kwargs and len(args) == 1:
        return [ref(args[0])] if is_tensor(args[0]) else [ref(v) for v in args[0]]
    names = _positional_names(op)
    out: dict[str, Any] = {}
    for i, a in enumerate(args):
        if i >= len(names):
            raise ModelImportError(f"{label} is called with more positional inputs than its call() names")
        out[names[i]] = _refs(a, ref)
    for key, value in kwargs.items():
        out[key] = _refs(value, ref)
    return out


def _all_none(value) -> bool:
    """None, or a non-empty list or dict of Nones (the mask Keras records for a nested model's call)."""
    if isinstance(value, dict):
        value = list(value.values())
    return value is None or (isinstance(value, list) and bool(value) and all(v is None for v in value))


def _call_default(op, name: str) -> Any:
    """The default of argument ``name`` of ``op.call`` (``inspect.Parameter.empty`` if none)."""
    try:
        param = inspect.signature(op.call).parameters.get(name)
    except (TypeError, ValueError):
        return inspect.Parameter.empty
    return inspect.Parameter.empty if param is None else param.default


def _positional_names(op) -> list[str]:
    try:
        return [p.name for p in inspect.signature(op.call).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]
    except (TypeError, ValueError):
        return []


# -- implicit masks -------------------------------------------------------------------------------


def implicit_mask(live) -> bool:
    """Whether the ``mask`` a call passed is the one Keras attached to its first argument itself.

    The model may have been rebuilt from a file, where the mask in the config and the one Keras
    attaches again are different tensors of the same computation; they are compared by what made
    them (operation class, config, arguments), a few operations deep.
    """
    arguments = getattr(live, "arguments", None)
    if arguments is None or not arguments.args or "mask" not in arguments.kwargs:
        return False
    first, given = arguments.args[0], arguments.kwargs["mask"]
    if isinstance(first, (list, tuple)):
        expected: Any = [kerasapi.keras_mask(t) for t in first]
    else:
        expected = kerasapi.keras_mask(first)
    if expected is None or (isinstance(expected, list) and all(m is None for m in expected)):
        return False
    return _same_computation(given, expected, 8)


def _same_computation(a, b, depth: int) -> bool:
    if a is b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_computation(x, y, depth) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_computation(a[k], b[k], depth) for k in a)
    made_a, made_b = kerasapi.call_of(a), kerasapi.call_of(b)
    if made_a is None or made_b is None:
        return made_a is None and made_b is None and not hasattr(a, "shape") and a == b
    if depth == 0:
        return False
    (op_a, node_a), (op_b, node_b) = made_a, made_b
    if type(op_a) is not type(op_b) or _config(op_a) != _config(op_b):
        return False
    return (_same_computation(list(node_a.arguments.args), list(node_b.arguments.args), depth - 1)
            and _same_computation(dict(node_a.arguments.kwargs), dict(node_b.arguments.kwargs), depth - 1))


def _config(op) -> Any:
    try:
        config = dict(op.get_config())
    except Exception:  # an operation without a config: its class and arguments say it all
        return None
    config.pop("name", None)
    return config


def strip_implicit_masks(config: dict, live_nodes: dict) -> frozenset:
    """Drop every ``mask`` keyword that is the implicit mask Keras passes on (see calls.py) from the
    config's calls; returns the operations that then feed nothing (they only computed masks)."""
    before = _reachable(config)
    for layer in config["layers"]:
        for k, node in enumerate(layer["inbound_nodes"]):
            kwargs = node.get("kwargs") if isinstance(node, dict) else None
            if kwargs and "mask" in kwargs and (layer["name"], k) in live_nodes \
                    and implicit_mask(live_nodes[(layer["name"], k)]):
                del kwargs["mask"]
    after = _reachable(config)
    return frozenset(before - after)


def _reachable(config: dict) -> set[str]:
    """Layer names the outputs reach through call arguments."""
    deps: dict[str, set[str]] = {}
    for layer in config["layers"]:
        deps[layer["name"]] = {h[0] for node in layer["inbound_nodes"] for h in call_tensors(node)}
    seen: set[str] = set()
    stack = [h[0] for h in history_list(config["output_layers"])]
    while stack:
        name = stack.pop()
        if name not in seen and name in deps:
            seen.add(name)
            stack.extend(deps[name])
    return seen
