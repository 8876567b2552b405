"""What the corpus models share: netspec's Expression layer (the safe Lambda) and the seed plugin.

Public Keras examples compute weightless steps with ``keras.ops`` inside small layer classes or a
``Lambda``. A reference model here writes such a step as an :class:`netspec.expr.Expression` layer,
the one Lambda a saved model may carry (it stores checked text, not bytecode), so the model stays a
functional graph that ``netspec import`` can read. Layers with weights stay Keras layers.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_PLUGIN = "specs/seed_layers.py"  # repo-relative, as the modules' PLUGINS list it


def expr(text: str, inputs: dict, name: str | None = None, **constants):
    """Apply the expression ``text`` to ``inputs`` (variable name -> tensor); ``constants`` are its params."""
    from netspec.expr import Expression

    return Expression(text, list(inputs), constants, name=name)(inputs)


def seed_layer(name: str):
    """A user layer class of specs/seed_layers.py (PAM, Scale, ConvBnReLU, Sampling), loaded as a plugin."""
    from netspec.schema import registry
    from netspec.schema.plugins import load_plugin_targets

    load_plugin_targets([SEED_PLUGIN], base=ROOT)
    return registry.LAYERS[name]
