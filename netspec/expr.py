"""The Keras layer behind ``expr:`` nodes; importing this module registers ``netspec>Expression``.

``import netspec`` does not import Keras; ``import netspec.expr`` does, so plain
``keras.saving.load_model`` can read models with expression nodes.
"""

from .build.expression import Expression

__all__ = ["Expression"]
