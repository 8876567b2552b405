"""netspec: a declarative network compiler for Keras."""

from __future__ import annotations

from .version import __version__

from .errors import (  # noqa: E402
    ArtifactError,
    ContractError,
    CostError,
    DataError,
    ExportError,
    ExpressionError,
    GateError,
    ImportVerifyError,
    Location,
    ModelFileError,
    ModelImportError,
    NetspecError,
    OutputError,
    PlotError,
    PluginError,
    ResolveError,
    SchemaError,
    ShapeError,
    SpecSyntaxError,
    TrainError,
)
from .schema.registry import register_layer  # noqa: E402
from .build.saving import load_model  # noqa: E402
from .spec import CheckResult, Spec, load  # noqa: E402

__all__ = [
    "ArtifactError", "CheckResult", "ContractError", "CostError", "DataError", "ExportError", "ExpressionError", "GateError", "ImportVerifyError",
    "Location", "ModelFileError", "ModelImportError", "NetspecError", "OutputError", "PlotError", "PluginError", "ResolveError",
    "SchemaError", "ShapeError", "Spec", "SpecSyntaxError", "TrainError", "__version__", "load", "load_model",
    "register_layer",
]
