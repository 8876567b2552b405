"""Export-time rewrites of a Keras model, applied while it is converted and undone after (see compat.REWRITES)."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

from .compat import AUGMENTATION, REWRITES


def erf_gelu(x, approximate: bool = False):
    """Exact gelu as ``0.5 * x * (1 + erf(x / sqrt(2)))``: TensorFlow's own form emits Erfc, which ONNX lacks."""
    from keras import ops

    if approximate:
        return ops.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))


def _all_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)]


def _identity_call(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def export_rewrites(model, fmt: str) -> Iterator[list[str]]:
    """Rewrite what ``fmt`` cannot take, in place; yields one line per rewrite; restores the model on exit.

    * exact gelu (``activation: gelu``, ``activations.gelu`` / ``ops.gelu(approximate=False)`` in
      expressions) becomes its erf form (max difference ~1e-7);
    * random augmentation layers, identities at inference, are left out of the exported graph.
    """
    import keras

    from . import expr as expr_module
    from .exprcheck import export_caveats

    wanted = REWRITES.get(fmt, frozenset())
    undo: list = []
    done: list[str] = []
    exact_gelu = keras.activations.gelu
    try:
        for layer in _all_layers(model):
            cls = type(layer).__name__
            if "gelu" in wanted:
                for attr in ("activation", "recurrent_activation"):
                    if getattr(layer, attr, None) is exact_gelu:
                        undo.append((layer, attr, exact_gelu))
                        setattr(layer, attr, erf_gelu)
                        done.append(f"{layer.name}: exact gelu ({attr}) exported as 0.5*x*(1+erf(x/sqrt(2)))")
                if isinstance(layer, expr_module.Expression) and any(
                        "gelu" in msg for _, msg in export_caveats(layer.expression)):
                    done.append(f"{layer.name}: exact gelu in the expression exported as 0.5*x*(1+erf(x/sqrt(2)))")
            if "augmentation" in wanted and cls in AUGMENTATION:
                undo.append((layer, "call", None))
                layer.call = _identity_call  # an instance attribute, deleted on exit
                done.append(f"{layer.name}: {cls} (an identity at inference) left out of the exported graph")
        if any("expression" in line for line in done):
            targets = expr_module._TARGETS
            for key in ("activations.gelu", "ops.gelu"):
                undo.append((targets, key, targets[key]))
            default_exact = targets["activations.gelu"]
            targets["activations.gelu"] = erf_gelu
            targets["ops.gelu"] = lambda x, approximate=True: erf_gelu(x, approximate)
            del default_exact
        yield done
    finally:
        for obj, key, old in reversed(undo):
            if isinstance(obj, dict):
                obj[key] = old
            elif old is None:
                obj.__dict__.pop(key, None)
            else:
                setattr(obj, key, old)
