"""Schema defs of the deployment contract: ``preprocess:`` on a model input, ``labels:`` on a model output.

Only the model's own ``inputs:`` and ``outputs:`` take them (a block's inputs and outputs are internal
wiring), so they get their own defs, ``modelInput`` and ``modelOutputs``, made from ``input`` and
``refs`` plus the contract's keys. The enums come from :mod:`netspec.contract`.
"""

from __future__ import annotations

import copy

from ..contract import COLORS, INTERPOLATIONS, RAW_DTYPES
from ..schema.derive.types import BOOL, ENUM, NUM, STR, described, obj, ref, with_interp

PREPROCESS_KEYS = ("dtype", "color", "resize", "interpolation", "scale", "rescale", "offset", "mean", "std")


def deploy_defs(defs: dict) -> dict:
    """``preprocess``, ``modelInput``, ``outputEntry`` and ``modelOutputs``, given the ``input`` and ``ref`` defs."""
    numbers = {"type": "array", "items": with_interp(NUM()), "minItems": 1}
    preprocess = obj(
        {
            "dtype": described(with_interp(ENUM(*RAW_DTYPES)), "The raw input's dtype (what a deployed model with "
                               "`include_preprocess` takes); default float32."),
            "color": described(with_interp(ENUM(*COLORS)), "The channel order the model takes; image files are "
                               "converted to it."),
            "resize": described(with_interp(BOOL), "Resize image files to the input's height and width."),
            "interpolation": described(with_interp(ENUM(*INTERPOLATIONS)), "The resize filter; default bilinear."),
            "scale": described(with_interp(NUM()), "x * scale + offset (Keras `Rescaling`); default 1."),
            "rescale": described(with_interp(NUM()), "Another name for `scale` (as in ImageDataGenerator)."),
            "offset": described(with_interp(NUM()), "Added after `scale`; default 0."),
            "mean": described(with_interp([numbers]), "Per-channel mean subtracted after the rescale."),
            "std": described(with_interp([numbers]), "Per-channel standard deviation divided by last."),
        },
        description="How a raw input becomes what the model takes: x * scale + offset, then (x - mean) / std.",
    )
    model_input = copy.deepcopy(defs["input"])
    model_input["anyOf"][1]["properties"]["preprocess"] = ref("preprocess")
    model_input["description"] = ("A model input: its shape, or {shape, dtype, batch_size, sparse, optional, "
                                  "example_shape, preprocess}.")
    labels = {"anyOf": [{"type": "array", "items": STR[0], "minItems": 1}, {"type": "string", "minLength": 1}],
              "description": "Class names along the output's last axis: a list, or a file in the spec's tree "
                             "with one label per line."}
    entry = obj({"from": ref("ref"), "labels": labels}, required=["from"],
                description="A model output with its deployment contract: {from: ref, labels: [...] or FILE}.")
    item = {"anyOf": [ref("ref"), ref("outputEntry")]}
    outputs = {
        "anyOf": [
            ref("ref"),
            {"type": "array", "items": item, "minItems": 1},
            {"type": "object", "propertyNames": ref("name"), "additionalProperties": item, "minProperties": 1},
        ],
        "description": "A ref, a list of refs, or a mapping name: ref; any ref may be {from: ref, labels: ...}.",
    }
    return {"preprocess": preprocess, "modelInput": model_input, "outputEntry": entry, "modelOutputs": outputs}
