"""Stage 6, export: a model -> a verified file for a deployment target.

``targets`` names the targets, ``compat`` checks a model against one before conversion, ``rewrite``
replaces layers a format cannot express, ``convert`` writes ONNX or LiteRT, ``quantize`` calibrates
int8, ``verify`` runs the gate and ``pipeline`` ties them together.
"""

from .pipeline import GateError, export

__all__ = ["GateError", "export"]
