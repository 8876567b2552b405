"""Export compatibility of a loaded Keras model (a ``.keras`` file): compat's tables, by layer name and class.

A spec is checked line by line before anything is built (:func:`netspec.export.compat.check`); a
``.keras`` file has no lines, so its layers are checked once loaded, against the same tables and
with the same reason texts, and reported as ``layer 'name' (Class)``. The refusal then comes
before conversion, instead of as a converter's or runtime's raw message.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ExportError
from .compat import ARGS, AUGMENTATION, EXPRESSION_REWRITES, REWRITES, Action, layer_refusal
from .formats import FORMATS
from .targets import Target


@dataclass(frozen=True)
class LayerFinding:
    """One layer of a model that a format refuses, or that netspec rewrites on export."""

    action: Action
    layer: str
    cls: str
    message: str

    @property
    def where(self) -> str:
        """``layer 'name' (Class)``: how messages name it."""
        return f"layer {self.layer!r} ({self.cls})"

    def __str__(self) -> str:
        return f"{self.action}: {self.where}: {self.message}"


def check_model(model, fmt: str) -> list[LayerFinding]:
    """Everything in ``model`` (nested layers included) that ``fmt`` refuses or that netspec rewrites, in layer order."""
    from ..build.expression import Expression
    from ..expressions.check import export_caveats
    from ..kerasapi import child_layers

    found: list[LayerFinding] = []
    stack = list(reversed(child_layers(model)))
    while stack:
        layer = stack.pop()
        cls = type(layer).__name__

        def add(action: Action, message: str) -> None:
            found.append(LayerFinding(action, layer.name, cls, message))  # noqa: B023 - used at once

        reason = layer_refusal(cls, fmt)
        if reason:
            add("refused", f"{cls} {reason}")
        elif cls in AUGMENTATION and "augmentation" in REWRITES[fmt]:
            add("rewritten", f"{cls} is an identity at inference; left out of the exported graph")
            continue  # what it holds is left out with it
        config = _config(layer)
        for rule in ARGS:
            if fmt in rule.formats and config.get(rule.arg) == rule.value and \
                    (rule.layers is None or cls in rule.layers):
                add(rule.action, f"{rule.arg}: {rule.value}: {rule.reason}")
        if isinstance(layer, Expression) and FORMATS[fmt].expression_caveats:
            for _, message in export_caveats(layer.expression):
                qual = message.partition(":")[0]
                if EXPRESSION_REWRITES.get(qual) in REWRITES[fmt]:
                    add("rewritten", f"{qual}: exported without {'Erfc' if 'gelu' in qual else 'Expm1'}")
                else:
                    add("refused", message)
        stack.extend(reversed(child_layers(layer)))
    return found


def _config(layer) -> dict:
    """The layer's config (activations by name), or {} when it has none it can give."""
    try:
        config = layer.get_config()
    except Exception:  # a custom layer without get_config: only its class can be checked
        return {}
    return config if isinstance(config, dict) else {}


def refuse_layers(findings: list[LayerFinding], target: Target, source: str) -> None:
    """Raise for the first refused layer (with the count of the rest), as a spec's refusal does for its node.

    Raises:
        ExportError: ``target 'T' (fmt) cannot take layer 'name' (Class): <reason>`` (the reason text
            is the one ``netspec validate --target`` gives for the same layer in a spec).
    """
    refused = [f for f in findings if f.action == "refused"]
    if refused:
        first = refused[0]
        raise ExportError(f"{source}: target {target.name!r} ({target.format}) cannot take {first.where}: "
                          f"{first.message}", more=len(refused) - 1)
