"""netspec: a declarative network compiler for Keras."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import NetspecError  # noqa: E402
from .registry import register_layer  # noqa: E402
from .spec import CheckResult, Spec, load  # noqa: E402

__all__ = ["CheckResult", "NetspecError", "Spec", "__version__", "load", "register_layer"]
