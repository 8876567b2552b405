"""Stage 6, export: a model -> a verified file for a deployment target.

``formats`` is the table of formats (ONNX, LiteRT: suffix, precisions, converter, runner),
``targets`` names the targets, ``compat`` checks a model against one before conversion, ``rewrite``
replaces layers a format cannot express, ``convert`` writes ONNX or LiteRT, ``quantize`` calibrates
int8, ``verify`` runs the gate, ``report`` says what was written and proved, and ``pipeline`` ties
them together. Its errors (``ExportError``, ``GateError``) live in :mod:`netspec.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import GateError

if TYPE_CHECKING:
    from .pipeline import export

__all__ = ["GateError", "export"]


def __getattr__(name: str) -> Any:
    # The pipeline loads numpy (and its helpers); ``netspec validate --target`` reads only the formats,
    # targets and compat tables of this package, so ``export`` is imported when first asked for.
    if name == "export":
        from .pipeline import export

        return export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
