"""Where an OpenVINO export departs from Keras (fp32) or from its float IR (int8), named by spec node.

Names cannot say which IR tensor is which Keras layer's output. ``openvino.convert_model`` keeps the
TensorFlow tensor names (``lenet5_1/f5_1/Tanh:0``) only where a tensor survives its transformations:
transpose sinking moves the NHWC<->NCHW transposes around every convolution to the ends of the
convolutional part, so the tensors in between exist only channels-first and lose their names (LeNet-5:
nothing named before the Flatten; MobileNetV2: 98 of its 104 computing ops unnamed, measured on
OpenVINO 2026.4). So layers are matched by value, as :func:`netspec.export.verify.first_divergence`
does for ONNX nodes tf2onnx left without a scope: every computing op of the IR is made an output, and
each Keras layer's output is compared with the IR tensors of its size, in its own, the channels-first
or a flat layout (a tensor named under the layer's scope is preferred when it is within the bound).

fp32 (:func:`first_divergence`): the first layer (Keras's topological order) that no IR tensor
reproduces within the fp32 bound, while none of the layers it feeds is reproduced either. The
second condition tells a diverging layer from one whose output the IR never computes: a
BatchNormalization folded into the convolution before it leaves that convolution's own output
nowhere, but the normalization's output is there.

int8 (:func:`activation_errors`): each layer is matched as above in the float IR (the
conversion NNCF quantized), and the same op, found by name in the int8 IR (NNCF keeps op names and
puts a FakeQuantize after the ops it quantizes; its output is what the next op reads), is compared
with it over the gate's batches by SQNR, summed as :mod:`netspec.export.localize` sums ONNX
activations. What to report from those figures is :func:`netspec.export.localize.summarize`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .localize import add_squares, sqnr_db
from .verify import TOLERANCES, Tolerance, _layout_error, layer_of

Arrays = Mapping[str, np.ndarray]
_SKIP = frozenset({"Parameter", "Result", "Constant"})
# Which float IR tensor is a layer's output, for int8: found within this bound, not the fp32 gate's (a
# float IR a little off the gate's bound is still the model NNCF quantized, and its ops still the layers').
MATCH = Tolerance(rtol=1e-3, atol=1e-3, floor_one=True)


@dataclass(frozen=True)
class Layer:
    """A Keras layer whose output can be compared: its name, the layers it reads and the layers that read it."""

    name: str
    inbound: tuple[str, ...]
    consumers: tuple[str, ...]


def keras_layers(model) -> tuple[list[Layer], list]:
    """The layers of ``model`` called once with one tensor output (the others cannot be told apart), in
    topological order, and their output tensors."""
    import keras

    from ..kerasapi import inbound_nodes, producer

    chosen, tensors, inbound = [], [], {}
    for layer in model.layers:
        nodes = inbound_nodes(layer)
        if isinstance(layer, keras.layers.InputLayer) or len(nodes) != 1 or isinstance(layer.output, (list, tuple, dict)):
            continue
        chosen.append(layer.name)
        tensors.append(layer.output)
        inbound[layer.name] = tuple(producer(t).name for t in nodes[0].input_tensors)
    consumers: dict[str, list[str]] = {}
    for name, sources in inbound.items():
        for source in sources:
            consumers.setdefault(source, []).append(name)
    return [Layer(n, inbound[n], tuple(consumers.get(n, ()))) for n in chosen], tensors


def keras_values(model, x: Arrays) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """Each comparable layer's output for the inputs ``x`` (see :func:`keras_layers`)."""
    import keras

    layers, tensors = keras_layers(model)
    if not layers:
        return [], {}
    reference = keras.Model(model.inputs, tensors)
    out = reference([x[t.name] for t in model.inputs], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return layers, {layer.name: np.asarray(v) for layer, v in zip(layers, out)}


def tensor_key(op, index: int) -> str:
    """How an IR op's output is known here and found again in the quantized IR: ``<friendly name>:<index>``."""
    return f"{op.get_friendly_name()}:{index}"


def computing_outputs(ov_model) -> list:
    """The float outputs of every op that computes (not parameters, constants or results), in graph order."""
    return [out for op in ov_model.get_ordered_ops() if op.get_type_name() not in _SKIP
            for out in op.outputs() if out.get_element_type().is_real()]


def run_with_outputs(ov_model, ports: list[tuple[str, int, str]], feeds: list[Arrays]):
    """Yield, per feed, ``{key: array}`` of the given op outputs (``(op's friendly name, output index, key)``),
    compiled for CPU at the f32 inference precision the gate uses, on a copy (``ov_model`` is left as it was)."""
    import openvino as ov

    from .openvino import COMPILE_CONFIG, runner

    probe = ov_model.clone()
    ops = {op.get_friendly_name(): op for op in probe.get_ordered_ops()}
    if ports:  # an op output that already is a model output is not added again
        probe.add_outputs([ops[name].output(index) for name, index, _ in ports])
    wanted = {(name, index): key for name, index, key in ports}
    keys = []
    for i, result in enumerate(probe.get_results()):
        source = result.input_value(0)
        keys.append(wanted.get((source.get_node().get_friendly_name(), source.get_index()), f"result:{i}"))
    compiled = ov.Core().compile_model(probe, "CPU", dict(COMPILE_CONFIG))
    run = runner(compiled, keys)
    for feed in feeds:
        yield run(feed)


def match_layers(layers: list[Layer], ref: dict[str, np.ndarray], values: dict[str, np.ndarray],
                 names: dict[str, str], tol: Tolerance) -> dict[str, dict]:
    """Each layer's closest IR tensor: ``{layer: {"key", "error", "bound", "ok"}}`` (layers with no tensor
    of their size left out); ``ok``: within ``tol``'s bound.

    Args:
        ref: the layers' Keras outputs.
        values: the IR tensors, by :func:`tensor_key`, in graph order.
        names: each tensor's TensorFlow names joined (empty when transformations dropped them).
    """
    scoped: dict[str, list[str]] = {}
    for key, joined in names.items():
        for scope in {layer_of(n) for n in joined.split("\n") if n}:
            if scope is not None:
                scoped.setdefault(scope, []).append(key)
    out = {}
    for layer in layers:
        want = ref[layer.name]
        own = set(scoped.get(layer.name, ()))
        candidates = [k for k, v in values.items() if v.size == want.size or k in own]
        errors = [(e, k) for k in candidates if (e := _layout_error(want, values.get(k))) is not None]
        if not errors:
            continue
        atol, _ = tol.bound(want)
        bound = atol + tol.rtol * float(np.abs(want).max(initial=0.0))
        # A tensor under the layer's own name scope when one is right (equal tensors: a ReLU of positive
        # values), else the closest; not the scope alone: an output's tensor carries the output's name.
        error, key = min(errors, key=lambda ek: (not (ek[1] in own and ek[0] <= bound), ek[0]))
        out[layer.name] = {"key": key, "error": error, "bound": atol, "ok": error <= bound}
    return out


def probe(model, ov_model, x: Arrays, tol: Tolerance) -> tuple[list[Layer], dict[str, dict]]:
    """Keras's layers, each matched to the IR tensor that reproduces it best (see :func:`match_layers`)."""
    layers, ref = keras_values(model, x)
    ports = computing_outputs(ov_model)
    keyed = [(p.get_node().get_friendly_name(), p.get_index(), tensor_key(p.get_node(), p.get_index())) for p in ports]
    values = next(run_with_outputs(ov_model, keyed, [x]))
    names = {k: "\n".join(sorted(p.get_names())) for p, (_, _, k) in zip(ports, keyed)}
    return layers, match_layers(layers, ref, {k: values[k] for _, _, k in keyed}, names, tol)


def first_divergence(model, ov_model, x: Arrays) -> dict | None:
    """The first Keras layer the fp32 IR does not reproduce (see the module docstring).

    Returns:
        ``{"node", "max_abs_error", "bound"}`` as :func:`netspec.export.verify.first_divergence` has it,
        or None when every layer is reproduced (or none can be compared).
    """
    layers, matched = probe(model, ov_model, x, TOLERANCES["fp32"])
    for layer in layers:
        m = matched.get(layer.name)
        if m is None or m["ok"]:
            continue
        if any(matched.get(c, {}).get("ok") for c in layer.consumers):
            continue  # its output is nowhere in the IR (folded into the next op), and what reads it is right
        return {"node": layer.name, "max_abs_error": m["error"], "bound": m["bound"]}
    return None


def activation_errors(model, float_model, low_model, batches: list[Arrays]) -> list[dict]:
    """Per Keras layer, in topological order: the SQNR of the int8 IR's activation against the float IR's at
    the op that reproduces the layer, and how much SQNR it lost against the nearest measured layers it reads.

    Returns:
        ``[{"node", "tensor", "sqnr_db", "drop_db"}]`` as :func:`netspec.export.localize.activation_errors`
        has it (``tensor``: the IR op); layers the float IR does not reproduce, or whose op the int8 IR
        lacks, are left out.
    """
    layers, matched = probe(model, float_model, batches[0], MATCH)
    low_ops = {op.get_friendly_name(): op for op in low_model.get_ordered_ops()}
    float_ports: list[tuple[str, int, str]] = []
    low_ports: list[tuple[str, int, str]] = []
    which: dict[str, str] = {}
    for layer in layers:
        m = matched.get(layer.name)
        if m is None or not m["ok"]:
            continue
        name, index = m["key"].rsplit(":", 1)
        low = low_ops.get(name)
        if low is None or int(index) >= low.get_output_size():
            continue
        which[layer.name] = m["key"]
        if m["key"] in {k for _, _, k in float_ports}:
            continue
        read = _quantized(low.output(int(index)))
        float_ports.append((name, int(index), m["key"]))
        low_ports.append((read.get_node().get_friendly_name(), read.get_index(), m["key"]))
    signal: dict[str, float] = {}
    noise: dict[str, float] = {}
    runs = zip(run_with_outputs(float_model, float_ports, batches), run_with_outputs(low_model, low_ports, batches))
    for f, q in runs:
        for key in set(which.values()):
            add_squares(signal, noise, key, f[key], q[key])
    sqnr = sqnr_db(signal, noise)
    by_layer = {name: sqnr[key] for name, key in which.items()}
    out = []
    for layer in layers:
        if layer.name not in by_layer:
            continue
        own = by_layer[layer.name]
        inputs = [by_layer[i] for i in _measured_sources(layer, {la.name: la for la in layers}, by_layer)]
        out.append({"node": layer.name, "tensor": which[layer.name].rsplit(":", 1)[0], "sqnr_db": float(own),
                    "drop_db": float(min(inputs) - own) if inputs else 0.0})
    return out


def _measured_sources(layer: Layer, layers: dict[str, Layer], measured: Mapping[str, float]) -> set[str]:
    """The nearest measured layers ``layer`` reads, through the ones the IR folded away (a convolution
    before its BatchNormalization): what its SQNR loss is counted against."""
    found: set[str] = set()
    todo, seen = list(layer.inbound), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in measured:
            found.add(name)
        elif name in layers:
            todo.extend(layers[name].inbound)
    return found


def _quantized(port) -> Any:
    """The value the next op reads: the output of the FakeQuantize NNCF put after ``port``, else ``port``."""
    for target in port.get_target_inputs():
        node = target.get_node()
        if node.get_type_name() == "FakeQuantize" and target.get_index() == 0:
            return node.output(0)
    return port
