"""The domain rules of the contract's fields, shared by the spec's ``preprocess:`` (netspec.resolve), the
stamped contract's reader (:mod:`netspec.contract`) and ``include_preprocess`` (netspec.export): a spec
netspec accepts always stamps a contract netspec reads back."""

from __future__ import annotations

import math
from typing import Any

# The raw dtypes an artifact may take with the numeric preprocessing folded into its graph (``included``):
# integer images and arrays. A float input cannot show whether its graph rescales (a float32 model
# without the folded steps takes float32 too), so ``included`` on a float dtype would let a contract
# feed raw 0..255 pixels to a model that expects them preprocessed; folding exists to take raw images.
FOLDABLE_DTYPES = ("uint8", "uint16", "int8", "int16", "int32")
CHANNELS_OF = {"grayscale": 1, "rgb": 3, "bgr": 3}
F32_MAX = 3.4028234663852886e38  # the largest finite float32: the numeric steps run in float32
F32_TINY = 1.1754943508222875e-38  # the smallest normal float32: a smaller scale is 0 or loses its digits
# std divides last. Keras's Normalization (what include_preprocess folds it into) divides by
# max(std, keras.backend.epsilon()) = 1e-7, so a smaller std would make the folded export and
# Preprocess.apply disagree; and std is squared into its variance, which must be a finite float32.
MIN_STD = 1e-7
MAX_STD = 1.8e19


def number_problem(key: str, value: float) -> str | None:
    """Why ``value`` cannot be the preprocess number ``key`` (``scale``, ``offset``, one ``mean`` or ``std``
    entry), or None: every one must be a finite float32 (the steps run in float32), ``scale`` a non-zero
    normal one, ``std`` between :data:`MIN_STD` and :data:`MAX_STD`. The spec's ``preprocess:`` and a
    stamped contract are held to the same rule."""
    if not math.isfinite(value) or abs(value) > F32_MAX:
        return f"{key} must be a finite float32 number (at most {F32_MAX:.4g} in magnitude)"
    if key == "scale" and abs(value) < F32_TINY:
        return f"scale must be a non-zero float32 number of magnitude at least {F32_TINY:.4g} (scale 0 erases the input)"
    if key == "std" and not MIN_STD <= value <= MAX_STD:
        return (f"std divides, so each value must be positive, from {MIN_STD:g} (Keras's Normalization divides by "
                f"at least that) to {MAX_STD:g} (its square, the variance, must fit float32)")
    return None


def color_problem(color: str | None, shape: tuple) -> str | None:
    """Why images cannot be converted to ``color`` for an input of ``shape`` (no batch axis), or None."""
    if color is None:
        return None
    if len(shape) != 3:
        return f"color {color} applies to an image input, shaped (height, width, channels)"
    want, channels = CHANNELS_OF[color], shape[-1]
    if channels is not None and channels != want:
        return f"color {color} has {want} channel{'s' * (want > 1)} but the input has {channels}"
    return None


def fold_problem(pre: Any) -> str | None:
    """Why ``pre`` (a :class:`~netspec.contract.Preprocess`) cannot be folded into an exported graph
    (``include_preprocess``), or None."""
    if pre.dtype not in FOLDABLE_DTYPES:
        return (f"preprocessing is folded into a model that takes raw integer values ({', '.join(FOLDABLE_DTYPES)}: "
                f"images, counts); a raw {pre.dtype} input keeps its preprocessing outside the graph "
                "(give preprocess.dtype: uint8 for 8-bit images)")
    return None
