"""Export-time rewrites of a Keras model, applied while it is converted and undone after (see compat.REWRITES)."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

from .compat import AUGMENTATION, EXPRESSION_REWRITES, REWRITES


def erf_gelu(x, approximate: bool = False):
    """Exact gelu as ``0.5 * x * (1 + erf(x / sqrt(2)))``: TensorFlow's own form emits Erfc, which ONNX lacks."""
    from keras import ops

    if approximate:
        return ops.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def expm1_free_celu(x, alpha: float = 1.0):
    """celu as ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``: TensorFlow's own form emits Expm1, which ONNX lacks."""
    from keras import ops

    return ops.maximum(x, 0.0) + ops.minimum(0.0, alpha * (ops.exp(x / alpha) - 1.0))


def normalization_constants(layer):
    """(mean, std) of a built ``Normalization`` layer as numpy arrays in its broadcast shape and compute dtype.

    ``std`` is ``max(sqrt(variance), epsilon)``, as Keras computes it on every call. The values
    are the ones the layer itself uses (its ``mean``/``variance`` tensors, set from the adapted
    weights or the given mean and variance when it was built), so the export matches Keras exactly.
    """
    import numpy as np
    from keras import backend

    dtype = layer.compute_dtype
    mean = np.asarray(layer.mean, dtype=np.float32)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, dtype=np.float32)), np.float32(backend.epsilon()))
    return mean.astype(dtype), std.astype(dtype)


def constant_normalization(layer):
    """A ``call`` for ``layer`` with its mean and std as graph constants (numpy arrays, not eager tensors).

    Keras keeps them as eager tensors, which a traced function captures as extra inputs; tf2onnx
    turns those into graph inputs nobody feeds. Constants fold into the graph instead.
    """
    from keras import ops

    mean, std = normalization_constants(layer)
    dtype = layer.compute_dtype

    def call(inputs, *args, **kwargs):
        x = ops.cast(inputs, dtype)
        if layer.invert:
            return ops.add(mean, ops.multiply(x, std))
        return ops.divide(ops.subtract(x, mean), std)

    return call


def _all_layers(model, skip_inside: frozenset[str] = frozenset()) -> list:
    """Every layer inside ``model`` (depth first), not descending into layers whose class is in ``skip_inside``."""
    from ..kerasapi import child_layers

    out, stack = [], list(reversed(child_layers(model)))
    while stack:
        layer = stack.pop()
        out.append(layer)
        if type(layer).__name__ not in skip_inside:
            stack.extend(reversed(child_layers(layer)))
    return out


def _identity_call(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def export_rewrites(model, fmt: str) -> Iterator[list[str]]:
    """Rewrite what ``fmt`` cannot take, in place; yields one line per rewrite; restores the model on exit.

    * exact gelu and celu (as ``activation:``, or ``activations.*`` / ``ops.*`` calls in expressions)
      become forms without Erfc/Expm1 (max difference ~1e-7);
    * random augmentation layers, identities at inference, are left out of the exported graph;
    * ``Normalization`` layers (adapted or given mean and variance, any axis, inverted or not) compute
      with their mean and std as constants: ``(x - mean) / std`` (``mean + x * std`` inverted).
    """
    import keras

    from ..build import expression as expr_module
    from ..expressions.check import export_caveats

    wanted = REWRITES.get(fmt, frozenset())
    # activation -> (its replacement, what it is, the exported form); gelu and celu take different extra arguments
    swaps: dict[Callable[..., Any], tuple[Callable[..., Any], str, str]] = {}
    if "gelu" in wanted:
        swaps[keras.activations.gelu] = (erf_gelu, "exact gelu", "0.5*x*(1+erf(x/sqrt(2)))")
    if "celu" in wanted:
        swaps[keras.activations.celu] = (expm1_free_celu, "celu", "max(0,x)+min(0,alpha*(exp(x/alpha)-1))")
    undo: list = []
    done: list[str] = []
    patch_expressions = False
    try:
        dropped = AUGMENTATION if "augmentation" in wanted else frozenset()
        for layer in _all_layers(model, dropped):
            cls = type(layer).__name__
            for attr in ("activation", "recurrent_activation"):
                fn = getattr(layer, attr, None)
                if fn in swaps:
                    new, what, form = swaps[fn]
                    undo.append((layer, attr, fn))
                    setattr(layer, attr, new)
                    done.append(f"{layer.name}: {what} ({attr}) exported as {form}")
            if isinstance(layer, expr_module.Expression):
                for _, msg in export_caveats(layer.expression):
                    qual = msg.partition(":")[0]
                    if qual in EXPRESSION_REWRITES and EXPRESSION_REWRITES[qual] in wanted:
                        patch_expressions = True
                        done.append(f"{layer.name}: {qual} in the expression exported without "
                                    f"{'Erfc' if 'gelu' in qual else 'Expm1'}")
            if "augmentation" in wanted and cls in AUGMENTATION:
                undo.append((layer, "call", None))
                layer.call = _identity_call  # an instance attribute, deleted on exit
                done.append(f"{layer.name}: {cls} (an identity at inference) left out of the exported graph")
            if "normalization" in wanted and isinstance(layer, keras.layers.Normalization) and layer.built:
                form = "mean + x * std" if layer.invert else "(x - mean) / std"
                undo.append((layer, "call", None))
                layer.call = constant_normalization(layer)  # an instance attribute, deleted on exit
                done.append(f"{layer.name}: Normalization exported as {form} with constant mean and std")
        if patch_expressions:
            targets = expr_module.KERAS_FUNCTIONS
            for key in EXPRESSION_REWRITES:
                undo.append((targets, key, targets[key]))
            targets["activations.gelu"] = erf_gelu
            targets["ops.gelu"] = lambda x, approximate=True: erf_gelu(x, approximate)
            targets["activations.celu"] = targets["ops.celu"] = expm1_free_celu
        yield done
    finally:
        for obj, key, old in reversed(undo):
            if isinstance(obj, dict):
                obj[key] = old
            elif old is None:
                obj.__dict__.pop(key, None)
            else:
                setattr(obj, key, old)
