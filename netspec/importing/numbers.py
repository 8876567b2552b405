"""Prove an import by its numbers: the spec's model, given the source's weights, computes the same outputs.

The layer-by-layer comparison (:mod:`.check`) matches each source layer to its node by class, config,
shapes and first call; a model can pass it and still compute something else: a nested model applied
twice in a row written as one call, a nested model's outputs listed in another order. Running both
models answers that directly. It allocates the weights twice and runs one sample, so it is done for
models up to :data:`MAX_PARAMS` parameters and :data:`MAX_INPUT_ELEMENTS` input numbers; larger ones
(the big ``keras.applications`` models, proven by their own round-trip tests) say it was not run.
"""

from __future__ import annotations

from typing import Any

from .. import kerasapi

# 4M parameters: MobileNetV2 and smaller, each checked in about a second on 2 cores.
MAX_PARAMS = 4_000_000
MAX_INPUT_ELEMENTS = 224 * 224 * 3
# Same layers, same weights, same inputs: only the order of float additions may differ.
RELATIVE_TOLERANCE = 1e-4


def compare_numbers(source_model, spec, names: dict[str, str], operations) -> tuple[str | None, str]:
    """Run ``source_model`` and the spec's model, weights copied layer by layer, on one seeded sample.

    Args:
        source_model: the Keras model that was imported.
        spec: the loaded imported spec.
        names: source layer name -> spec node name (what the importer made of each).
        operations: :func:`netspec.importing.check._operations` (every layer by name, nested ones too).

    Returns:
        (a problem, or None when the outputs agree or the check was not run; what was found, for the summary).
    """
    import numpy as np

    params = source_model.count_params() if source_model.built else 0
    if params > MAX_PARAMS:
        return None, f"outputs not run ({params:,} parameters, over {MAX_PARAMS:,})"
    if any(kerasapi.pending_initializer(v) is not None for v in source_model.weights):
        # built for its shapes only (kerasapi.symbolic_build): its weights are made anew on each read
        return None, "outputs not run (the source's weights are not allocated)"
    x = _sample(source_model)
    if isinstance(x, str):
        return None, f"outputs not run ({x})"
    model = spec.build()
    ours = operations(model, {})
    for name, op in operations(source_model, {}).items():
        if not getattr(op, "weights", None):  # keras.ops operations and weightless layers
            continue
        mine = ours.get(names.get(name, ""))
        theirs = [np.asarray(w) for w in op.get_weights()]
        if mine is None or [tuple(w.shape) for w in mine.get_weights()] != [w.shape for w in theirs]:
            return None, f"outputs not run (the weights of layer {name!r} have no one place in the spec)"
        mine.set_weights(theirs)
    # by position: the spec's inputs come in the model's order, named by Input layer or by input dict key
    arrays = [x[t.name] for t in source_model.inputs]
    if [tuple(t.shape[1:]) for t in model.inputs] != [tuple(t.shape[1:]) for t in source_model.inputs]:
        return None, "outputs not run (the spec's inputs are not the model's)"
    try:
        want, again = (_run(source_model, arrays) for _ in range(2))
    except Exception as e:  # a source built without weights, a user layer that cannot run eagerly
        return None, f"outputs not run (the source model does not run: {type(e).__name__})"
    if any(not np.array_equal(w, a, equal_nan=True) for w, a in zip(want, again)):
        return None, "outputs not run (the source model is random at inference: two runs differ)"
    got = _run(model, arrays)
    if [w.shape for w in want] != [g.shape for g in got]:
        return (f"on the same input its outputs have shapes {[g.shape for g in got]}, the source's "
                f"{[w.shape for w in want]}"), ""
    worst = 0.0
    for k, (w, g) in enumerate(zip(want, got)):
        if w.dtype.kind not in "fiub":
            continue
        w64, g64 = w.astype(np.float64), g.astype(np.float64)
        span = float(np.ptp(w64)) if w64.size else 0.0
        error = float(np.max(np.abs(w64 - g64))) if w64.size else 0.0
        if not np.isfinite(error) and not np.array_equal(w64, g64, equal_nan=True):
            return f"output {k} differs on the same input (non-finite values where the source has others)", ""
        if error > RELATIVE_TOLERANCE * max(span, 1.0):
            return (f"with the source's weights, output {k} differs on the same input by {error:.3g} "
                    f"(the source's output range is {span:.3g})"), ""
        worst = max(worst, error)
    return None, f"same outputs on a random sample with the source's weights (max |error| {worst:.1e})"


def _sample(model) -> dict[str, Any] | str:
    """One seeded sample per input by name, as export's gate generates them (integer inputs within the
    bound of the Embedding that reads them, pixels for a stem that rescales them), or why not."""
    import numpy as np

    from ..budget import feed_dims
    from ..export.quantize import describe_inputs, generate

    inputs = describe_inputs(model)
    if sum(int(np.prod(feed_dims(i.shape, 1), dtype=np.int64)) for i in inputs) > MAX_INPUT_ELEMENTS:
        return f"inputs of over {MAX_INPUT_ELEMENTS:,} numbers"
    return generate(inputs, 1, seed=0)


def _run(model, arrays: list) -> list:
    import keras
    import numpy as np

    from ..export.signature import model_args

    out = model(model_args(model, arrays), training=False)
    return [np.asarray(t) for t in keras.tree.flatten(out)]
