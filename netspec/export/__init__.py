"""Stage 6, export: a model -> a verified file for a deployment target.

``formats`` is the table of formats (ONNX, LiteRT: suffix, precisions, converter, runner),
``targets`` names the targets, ``compat`` checks a model against one before conversion, ``rewrite``
replaces layers a format cannot express, ``convert`` writes ONNX or LiteRT, ``quantize`` calibrates
int8, ``verify`` runs the gate, ``report`` says what was written and proved, and ``pipeline`` ties
them together. Its errors (``ExportError``, ``GateError``) live in :mod:`netspec.errors`.
"""

from ..errors import GateError
from .pipeline import export

__all__ = ["GateError", "export"]
