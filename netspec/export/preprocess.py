"""``include_preprocess``: the spec's numeric preprocessing folded into the exported graph.

The exported model then takes each preprocessed input raw, in its ``preprocess.dtype`` (``uint8``
images), and applies ``x * scale + offset`` and ``(x - mean) / std`` itself: Keras layers are put in
front of the model before conversion (``Rescaling``, which also casts to float32, and ``Normalization``
with the given mean and variance, which the export rewrites to graph constants). Color conversion and
resizing stay outside the graph: they belong to the image decoder, not to a tensor program.

The gate must prove the whole path, so its reference is *not* the wrapped model: it is the spec's own
model applied to :meth:`netspec.contract.Preprocess.apply` of the raw input (numpy), and its generated
inputs are raw values over the dtype's range (0..255 for ``uint8``). The spec's data (in the model's
space) becomes raw by inverting the steps (rounded and clipped for integer dtypes), so real samples,
int8 calibration and held-out accuracy see what a deployed model would be fed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..contract import Contract, Preprocess, fold_problem
from ..errors import NetspecError

if TYPE_CHECKING:
    from .quantize import InputInfo

# The exclusive upper bound of generated raw integer inputs: the dtype's range (int32: a 16-bit range,
# enough to exercise the rescale without overflowing float32 precision).
RAW_HIGH = {"uint8": 256, "int8": 128, "uint16": 65536, "int16": 32768, "int32": 65536}
RAW_FLOAT_RANGE = (0.0, 255.0)  # generated raw float inputs: pixel values, the common raw float form


@dataclass
class Folded:
    """The model that takes raw inputs, and what the export needs to feed and check it."""

    model: Any  # the wrapped keras.Model: raw inputs -> preprocessing layers -> the spec's model
    steps: dict[str, Preprocess]  # by input name: the inputs that take raw values
    reference: Callable[[Mapping[str, np.ndarray]], dict]  # raw inputs -> the spec's model on the preprocessed ones
    contract: Contract  # the stamped contract: inputs marked ``included``, in their raw dtype

    def raw(self, x: dict) -> dict:
        """Model-space arrays (the spec's data) as raw ones: the steps inverted."""
        return {k: invert(self.steps[k], v) if k in self.steps else v for k, v in x.items()}

    def inputs(self, declared: list[InputInfo]) -> list[InputInfo]:
        """The wrapped model's inputs with the raw ranges the gate and calibration generate."""
        out = []
        for info in declared:
            pre = self.steps.get(info.name)
            if pre is None:
                out.append(info)
            elif pre.dtype in RAW_HIGH:
                out.append(replace(info, high=RAW_HIGH[pre.dtype]))
            else:
                out.append(replace(info, range=RAW_FLOAT_RANGE))
        return out

    def arrays(self, load_arrays: Callable | None) -> Callable | None:
        """``load_arrays`` returning raw inputs (see :meth:`raw`)."""
        if load_arrays is None:
            return None

        def load(spec, part):
            data = load_arrays(spec, part)
            return None if data is None else _Raw(self.raw(data.x), getattr(data, "y", None))

        return load


@dataclass
class _Raw:
    x: dict
    y: Any


def fold(model, spec, source, names, fail: Callable[[str], NetspecError]) -> Folded:
    """``model`` with the contract's numeric preprocessing in front of its inputs.

    Args:
        spec: the spec (its contract), or None for a ``.keras`` file ``source`` (the contract stamped in it).
        fail: makes the error located at the target's ``include_preprocess``.

    Raises:
        NetspecError: from ``fail``: no input declares a preprocess.
    """
    import keras

    from ..source.kerasfile import open_archive
    from .signature import call_model

    contract = Contract.of_graph(spec.graph) if spec is not None else \
        Contract.from_metadata(open_archive(source).netspec, str(source)) or Contract()
    steps = {name: i.preprocess for name, i in contract.inputs.items() if i.preprocess is not None}
    if not steps:
        raise fail("include_preprocess folds the inputs' preprocess: into the exported model, and no input "
                   "declares one (inputs: {name: {shape: ..., preprocess: {...}}})")
    for name, step in steps.items():  # the spec's targets are checked on load; --include-preprocess and .keras here
        problem = fold_problem(step)
        if problem is not None:
            raise fail(f"input {name!r}: {problem}")
    raw_inputs, fed = [], []
    for tensor in model.inputs:
        name = tensor.name
        pre = steps.get(name)
        shape = tuple(tensor.shape)[1:]
        if pre is None:
            x = keras.Input(shape=shape, dtype=tensor.dtype, name=name)
            raw_inputs.append(x)
            fed.append(x)
            continue
        x = keras.Input(shape=shape, dtype=pre.dtype, name=name)
        raw_inputs.append(x)
        y = keras.layers.Rescaling(pre.scale, pre.offset, name=f"{name}_rescale")(x)  # casts to float32 first
        if pre.mean is not None or pre.std is not None:
            channels = shape[-1]
            mean = pre.mean if pre.mean is not None else (0.0,) * channels
            std = np.asarray(pre.std if pre.std is not None else (1.0,) * channels, dtype=np.float64)
            y = keras.layers.Normalization(axis=-1, mean=list(mean), variance=list(std ** 2),
                                           name=f"{name}_normalize")(y)
        fed.append(y)
    wrapped = keras.Model(raw_inputs, model(fed if len(fed) > 1 else fed[0]), name=f"{model.name}_raw")

    def reference(x: Mapping[str, np.ndarray]) -> dict:
        return call_model(model, names, {k: steps[k].apply(v) if k in steps else v for k, v in x.items()})

    return Folded(wrapped, steps, reference, contract.folded())


def invert(pre: Preprocess, x: np.ndarray) -> np.ndarray:
    """The raw values that :meth:`Preprocess.apply` maps to ``x`` (rounded and clipped for integer dtypes)."""
    y = np.asarray(x, dtype=np.float64)
    if pre.std is not None:
        y = y * np.asarray(pre.std)
    if pre.mean is not None:
        y = y + np.asarray(pre.mean)
    y = (y - pre.offset) / pre.scale
    dtype = np.dtype(pre.dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        y = np.clip(np.rint(y), info.min, info.max)
    return y.astype(dtype)
