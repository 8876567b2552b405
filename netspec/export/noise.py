"""The fp32 gate's second bound: an export is judged against Keras's own float32 round-off.

The fp32 gate's first bound is absolute (``1e-4 * max(1, range) + 1e-4 * |keras|``). Deep networks
exceed it without any export bug: float32 round-off from different convolution algorithms (oneDNN
in TensorFlow, MLAS in onnxruntime, XNNPACK in LiteRT) compounds over 100+ layers. Measured on
``keras.applications`` ResNet101 and ResNet152 with lively random weights and logits of std 4
(``bench/zoo.py``): max |onnxruntime - Keras| 2.5e-4 and 4.3e-4 at output ranges 0.8 and 0.7.

When the absolute bound fails, the same model with the same weights runs in float64 on the same
gate batch; that is the exact function both float32 implementations approximate. Element by element,
the export may be no further from it than K times the larger of the absolute bound and Keras's largest
float32 round-off error, where a jump (a step flipping between float32 and float64) loosens only its own
element's bound (:func:`rejudge`). See :data:`K` for the factor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

if TYPE_CHECKING:
    from .verify import Parity

Arrays = Mapping[str, np.ndarray]

# Two float32 implementations of the same network land at comparable distances from float64. Measured:
# keras.applications ResNet101 (lively weights, logits of std 4, onnx-cpu, gate batches 1 and 8):
# |onnxruntime - Keras| 2.5e-4 over the absolute bound 1e-4, e_keras 1.7e-4, e_export 1.2e-4 (ratio 0.7);
# the 12-convolution residual CNN of tests/test_gate_noise.py: ratios 2.2 at batch 1 (e_keras 1.5e-7,
# about one float32 ulp) and 1.3 at batch 8. K = 4 leaves room for that spread (one implementation's
# summation order may be ~2x noisier than the other's), while a real export bug stays far outside it:
# one weight of the ONNX file off by 1e-3 puts the export 75-170x over the bound, off by 1e-2 750-1700x.
K = 4.0
# Keras's error over this many times the absolute bound at an element is a jump (a step function flipping
# between float32 and float64), not round-off. Round-off measured: ResNet152 (LiteRT) 9.2e-4 against a bound
# of 1.5e-4 (6x), ResNet101 1.7e-4 against 1e-4. A jump can loosen the bound of the round-off elements by at
# most JUMP x K times the absolute bound (1.2e-2 of the output's scale), where one bound for all loosened it
# without limit.
JUMP = 30.0
TINY_ULPS = 1.0  # float32 ulps of the output scale below which Keras's error counts as that much


def float64_twin(model):
    """The same Keras model with every float32 layer, input and weight in float64, weights copied exactly.

    The model's serialized config is rewritten (every ``float32`` dtype or dtype policy, nested
    models included) and rebuilt; float32 inputs are cast up on entry (Keras casts floating
    inputs to a layer's compute dtype), which is exact. Integer inputs and weights keep their type.

    Raises:
        Exception: a layer cannot be rebuilt or has no float64 kernel (the caller reports it).
    """
    import keras

    config = keras.saving.serialize_keras_object(model)
    twin = keras.saving.deserialize_keras_object(_to_float64(config))
    if len(twin.weights) != len(model.weights):
        raise ValueError(f"the float64 rebuild has {len(twin.weights)} weights, the model {len(model.weights)}")
    for mine, theirs in zip(twin.weights, model.weights):
        value = np.asarray(theirs)
        if tuple(mine.shape) != value.shape:
            raise ValueError(f"weight {theirs.path}: float64 rebuild has shape {tuple(mine.shape)}, model {value.shape}")
        mine.assign(value.astype(mine.dtype) if np.issubdtype(value.dtype, np.floating) else value)
    return twin


def _to_float64(node: Any) -> Any:
    """A serialized Keras config with float32 dtypes and dtype policies made float64."""
    if isinstance(node, list):
        return [_to_float64(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(node.get("config"), dict):
        if node["config"].get("name") == "float32":
            return {**node, "config": {**node["config"], "name": "float64"}}
        return node
    out = {}
    for key, value in node.items():
        out[key] = "float64" if key == "dtype" and value == "float32" else _to_float64(value)
    return out


def float64_reference(model, call: Callable[[Any, Arrays], dict]) -> Callable[[Arrays], dict]:
    """``call(twin, x)`` with the float64 twin built on the first call (only a failing fp32 gate pays for it)."""
    twin: list = []

    def run(x: Arrays) -> dict:
        if not twin:
            twin.append(float64_twin(model))
        return call(twin[0], x)

    return run


def rejudge(p: Parity, want: np.ndarray, got: np.ndarray, exact: np.ndarray, classifier: bool,
            rtol: float = 1e-4) -> Parity:
    """``p`` (an fp32 comparison over its absolute bound) judged against Keras's float32 noise instead.

    Against float64, Keras's element errors are of two kinds. Round-off (continuous: within
    :data:`JUMP` times the absolute bound) is spread over the output, and two float32 implementations
    of a deep network are off by comparable amounts but at different elements; so every such element
    may be off by ``K`` times the larger of the absolute bound and Keras's largest round-off error.
    A jump (a sign or rounding step that flips between float32 and float64: over ``JUMP`` times the
    bound) says nothing about the other elements, so it loosens only its own bound (``K`` times
    Keras's error there). With one bound for the whole output (``K`` times Keras's largest error), an
    output half made of ``sign(rounding residual)`` let an export off by 0.5 at its other, exactly
    computed half pass (found by a red team); element by element only, LiteRT's ResNet152 (off by
    6.2e-4 where Keras is off by 9.2e-4, at other elements) failed. A classifier must also keep every
    top-1 decision whose margin exceeds twice the largest error allowed.

    Sets ``p.noise`` to ``{"e_keras", "e_export", "k", "bound", "worst", "jumps"}``: ``e_keras`` Keras's
    largest round-off error, ``bound`` what a round-off element is allowed at most, ``worst`` the
    largest ratio of an element's export error to what it is allowed (it passes at <= 1), ``jumps``
    the share of elements where Keras itself jumps. Sets ``p.ok``.
    """
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    if exact.shape != want.shape or not np.isfinite(exact).all() or not np.isfinite(got).all():
        p.noise = {"note": "the float64 reference is not comparable (shape or non-finite values)"}
        return p
    tiny = TINY_ULPS * float(np.finfo(np.float32).eps) * max(1.0, p.span)
    keras_err = np.abs(want - exact)
    export_err = np.abs(got - exact)
    absolute = np.maximum(p.bound + rtol * np.abs(want), tiny)  # the gate's first bound (``rtol`` its relative part)
    jumps = keras_err > JUMP * absolute
    roundoff = float(keras_err[~jumps].max(initial=0.0))
    allowed = np.where(jumps, K * keras_err, K * np.maximum(absolute, roundoff))
    worst = float((export_err / allowed).max(initial=0.0))
    ok = worst <= 1.0
    if ok and classifier and want.ndim == 2 and want.shape[1] > 1:
        top2 = np.sort(want, axis=1)[:, -2:]
        margin = float(allowed.max()) + float(keras_err.max())  # |got - want| <= export error + Keras's error
        decisive = (top2[:, 1] - top2[:, 0]) > 2 * margin
        agree = want.argmax(axis=1) == got.argmax(axis=1)
        ok = bool(agree[decisive].all())
    p.noise = {"e_keras": roundoff, "e_export": float(export_err.max(initial=0.0)), "k": K,
               "bound": float(K * max(float(absolute.max(initial=0.0)), roundoff)), "worst": worst,
               "jumps": float(jumps.mean()) if jumps.size else 0.0}
    p.ok = ok
    return p


def describe(noise: dict) -> str:
    """The noise-scaled bound's figures in words."""
    if "note" in noise:
        return f"fp32 noise not measured: {noise['note']}"
    jumps = (f"; {noise['jumps']:.1%} of elements jump in Keras itself (over {JUMP:g}x the absolute bound), each "
             f"allowed {noise['k']:g} x its own error" if noise.get("jumps") else "")
    return (f"noise-scaled bound: against Keras in float64, export off by {noise['e_export']:.3g}, Keras float32 "
            f"by {noise['e_keras']:.3g}; bound {noise['k']:g} x the larger of that and the absolute bound = "
            f"{noise['bound']:.3g}{jumps}; worst element at {noise['worst']:.2g} of its bound")
