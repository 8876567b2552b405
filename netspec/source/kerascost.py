"""A ``.keras`` config read as data before Keras builds it: unsafe objects refused, parameters costed.

:func:`check_objects` walks every serialized object in the config (iteratively: configs may nest
deeply) and refuses a ``Lambda`` (stored Python code) or a class from a module that is neither Keras
nor registered by a plugin, naming the layer. :func:`cost_config` estimates each layer's parameters
from its config and the shapes that reach it (the shapes the config records, its ``build_config``,
and shapes propagated from the model's inputs through the common layer classes; the largest wins, so
a config cannot hide a dimension by under-declaring it) and refuses past the compiler's parameter
budget, naming the layer, its class, its parameter count and the file. Unknown dimensions count as 1:
the estimate is then a lower bound, never an over-refusal of what Keras would build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import ModelFileError, short
from .kerasrules import CAP, Shape, merge, rule, shape_of, shapes_of

# Classes that hold Python code (bytecode or a function name to look up): never loaded.
LAMBDA_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"})
# Serialization helpers Keras writes for plain values (no class behind them).
VALUE_CLASSES = frozenset({"__keras_tensor__", "__tuple__", "__numpy__", "__bytes__", "__ellipsis__",
                           "__slice__", "__tensor__", "__typespec__", "__dtype__", "__symbolic_tensor__"})
_WRAPPED = ("layer", "backward_layer", "cell")  # config keys that hold a layer
EXPRESSION = "netspec>Expression"  # registered name of netspec's expression layer
# Layer calls a .keras config may hold. Keras spends ~0.8 ms building each (45,000 chained ReLUs:
# 35 s before it fails); the biggest keras.applications model has ~1,100.
MAX_LAYERS = 10_000


def check_objects(config: dict, shown: str, registered: Callable[[str | None, str], bool]) -> None:
    """Refuse Lambda layers and classes from outside Keras that no plugin registered.

    Args:
        config: the parsed ``config.json``.
        shown: the file name as messages show it.
        registered: ``(registered_name, class_name) -> bool``, whether Keras's registry holds it.

    Raises:
        ModelFileError: naming the layer and the class (with the ``expr:`` hint for Lambda only).
    """
    for obj, layer, is_layer in _objects(config):
        cls = obj.get("class_name")
        if not isinstance(cls, str):
            continue
        where = f"layer {_name(layer)}" if layer is not None else "the model"
        if cls in LAMBDA_CLASSES and is_layer:
            raise ModelFileError(
                f"{shown}: {where} is a {_txt(cls)} layer, which stores Python code; Keras refuses it in safe "
                "mode and netspec never loads it unsafely",
                hint="rewrite the Lambda as an `expr:` node in a spec (netspec's own expression layer "
                     "stores checked text, not code)")
        if cls in LAMBDA_CLASSES:
            raise ModelFileError(f"{shown}: {where} ({_txt(layer.get('class_name') if layer else None)}) holds a "
                                 f"{_txt(cls)} object in its config, which would be Python code; refusing the file")
        if cls in VALUE_CLASSES:
            continue
        module = obj.get("module")
        reg = obj.get("registered_name")
        if module is None or not isinstance(module, str):
            continue  # Keras looks such names up among its own classes only
        if module == "keras" or module.startswith("keras."):
            continue
        if module == "builtins" and cls == "function":
            continue  # a Keras built-in function by name (activations, losses)
        if registered(reg if isinstance(reg, str) else None, cls):
            continue
        raise ModelFileError(
            f"{shown} uses the layer class {_txt(cls)} from module {_txt(module)} ({where}), which is not "
            "registered",
            hint="pass the plugin that registers it (netspec import, export, predict and evaluate: --plugins FILE.py; "
                 "Python: load_model(path, plugins=[...])); "
                 "netspec never imports a module because a model file names it")


def _objects(config: dict) -> Iterator[tuple[dict, dict | None, bool]]:
    """Every dict in ``config`` with its enclosing layer and whether it is a layer itself.

    The optimizer's ``compile_config`` is skipped (netspec loads with ``compile=False``), and so is the
    inside of netspec's own expression layers: their ``from_config`` re-validates every field and
    gives its own reason for a tampered one.
    """
    stack: list[tuple[Any, dict | None, bool]] = [(config, None, True)]
    while stack:
        value, layer, is_layer = stack.pop()
        if isinstance(value, dict):
            if is_layer:
                layer = value
            yield value, layer, is_layer
            if is_layer and value.get("registered_name") == EXPRESSION:
                continue
            inner = raw if is_layer and isinstance(raw := value.get("config"), dict) else {}
            for k, v in [*value.items(), *inner.items()]:
                if k == "compile_config" or (inner and v is inner):
                    continue
                if k == "layers" and isinstance(v, list):  # a model's layers
                    stack.extend((item, layer, True) for item in v)
                elif k in _WRAPPED and isinstance(v, dict) and inner.get(k) is v:  # Bidirectional, RNN
                    stack.append((v, layer, True))
                else:
                    stack.append((v, layer, False))
        elif isinstance(value, list):
            stack.extend((v, layer, False) for v in value)


def _txt(value: object, limit: int = 60) -> str:
    return short(value, limit)


def _name(layer: dict) -> str:
    cfg = raw if isinstance(raw := layer.get("config"), dict) else {}
    return _txt(layer.get("name", cfg.get("name")))


# ---------------------------------------------------------------------------------------------
# Parameter cost.


@dataclass
class Cost:
    """The estimate: total parameters and bytes, and the biggest layer."""

    params: int = 0
    bytes: int = 0
    layers: int = 0
    biggest: tuple[int, str, str] = (0, "", "")  # params, layer name, class
    notes: list[str] = field(default_factory=list)


def cost_config(config: dict, shown: str, max_params: int, origin: str = "") -> Cost:
    """Estimate the parameters of the model a ``config.json`` describes; refuse over ``max_params``.

    Args:
        config: the parsed ``config.json``.
        shown: the file name as messages show it.
        max_params: the parameter budget (the compiler's ``DEFAULT_BUDGET.max_params``).
        origin: where the budget comes from, for messages (``" (from memory 24 GiB)"``).

    Returns:
        The :class:`Cost` (a lower bound where the config leaves dimensions unknown).

    Raises:
        ModelFileError: a layer (or the running total) is over the budget; the message names the
            layer, its class, its parameter count, the budget and the file.
    """
    walker = _Walker(shown, max_params, origin)
    try:
        walker.obj(config, None)
    except RecursionError:  # shapes nested a thousand deep: no model is written like that
        raise ModelFileError(f"{shown}: config.json nests its values too deeply to be a model") from None
    return walker.cost


class _Walker:
    """Walks a config's models in call order, tracking shapes and adding parameters."""

    def __init__(self, shown: str, max_params: int, origin: str = "") -> None:
        self.shown, self.max_params, self.origin = shown, max_params, origin
        self.cost = Cost()
        self.depth = 0
        self.calls = 0

    # -- models ---------------------------------------------------------------------------------

    def obj(self, obj: Any, ins: list[Shape | None] | None) -> list[Shape | None]:
        """One serialized layer or model, called on ``ins``; returns its output shapes."""
        if not isinstance(obj, dict):
            return [None]
        cls, cfg = obj.get("class_name"), obj.get("config")
        if not isinstance(cfg, dict):
            return [None]
        self.calls += 1
        if self.calls > MAX_LAYERS:  # Keras would spend minutes building them (and recurse)
            raise ModelFileError(f"{self.shown}: config.json has more than {MAX_LAYERS:,} layer calls, the most "
                                 "netspec lets Keras build from a file; refusing the file before Keras builds it")
        self.depth += 1
        try:
            if self.depth > 64:
                raise ModelFileError(f"{self.shown}: models are nested over 64 deep in config.json")
            if isinstance(cfg.get("layers"), list) and (cls == "Sequential" or (
                    cls in ("Functional", "Model") and "input_layers" not in cfg)):
                return [self.sequential(cfg, ins)]
            if isinstance(cfg.get("layers"), list):
                return self.functional(cfg, ins)
            return self.layer(obj, ins or [None])
        finally:
            self.depth -= 1

    def sequential(self, cfg: dict, ins: list[Shape | None] | None) -> Shape | None:
        shape = merge(ins[0] if ins else None, shape_of(cfg.get("build_input_shape")))
        for layer in cfg["layers"]:
            if not isinstance(layer, dict):
                continue
            if layer.get("class_name") == "InputLayer":
                shape = merge(shape, self.input_shape(layer))
                continue
            build = shapes_of((layer.get("build_config") or {}).get("input_shape")
                            if isinstance(layer.get("build_config"), dict) else None)
            shape = merge(shape, build[0] if build else None)
            shape = (self.obj(layer, [shape]) or [None])[0]
        return shape

    def functional(self, cfg: dict, ins: list[Shape | None] | None) -> list[Shape | None]:
        # Keyed by (layer, node, tensor); a tensor without a well-formed keras_history looks up None,
        # which nothing is stored under, so its shape reads as unknown.
        out: dict[tuple | None, Shape | None] = {}
        bound = list(ins or [])
        for layer in cfg["layers"]:
            if not isinstance(layer, dict):
                continue
            name = layer.get("name", (layer.get("config") or {}).get("name") if isinstance(layer.get("config"), dict) else None)
            if not isinstance(name, str):
                continue
            if layer.get("class_name") == "InputLayer":
                shape = self.input_shape(layer)
                out[(name, 0, 0)] = merge(shape, bound.pop(0) if bound else None)
                continue
            nodes = layer.get("inbound_nodes")
            nodes = nodes if isinstance(nodes, list) and nodes else [{}]
            build = shapes_of(layer["build_config"].get("input_shape")) if isinstance(layer.get("build_config"), dict) else []
            for k, node in enumerate(nodes):
                shapes = [merge(shape_of(t.get("shape")), out.get(_history(t))) for t in _tensors(node)]
                if k == 0:
                    shapes = [merge(s, build[i] if i < len(build) else None) for i, s in enumerate(shapes)] or build
                results = self.obj(layer, shapes or [None]) if k == 0 else self.shapes_only(layer, shapes)
                for t, s in enumerate(results):
                    out[(name, k, t)] = s
        outputs = cfg.get("output_layers")
        return [out.get(_history({"keras_history": h})) for h in _history_list(outputs)] or [None]

    def shapes_only(self, layer: dict, ins: list[Shape | None]) -> list[Shape | None]:
        """A shared layer's further calls: shapes, no new parameters."""
        saved = self.cost.params, self.cost.bytes, self.cost.layers, self.cost.biggest
        saved_max, self.max_params = self.max_params, CAP
        try:
            return self.obj(layer, ins or [None])
        finally:
            self.max_params = saved_max
            self.cost.params, self.cost.bytes, self.cost.layers, self.cost.biggest = saved

    @staticmethod
    def input_shape(layer: dict) -> Shape | None:
        cfg = raw if isinstance(raw := layer.get("config"), dict) else {}
        shape = shape_of(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
        return shape if shape is not None else shape_of(cfg.get("shape"), batch=False)

    # -- one layer ------------------------------------------------------------------------------

    def layer(self, obj: dict, ins: list[Shape | None]) -> list[Shape | None]:
        cls, cfg = obj.get("class_name"), obj["config"]
        if cls in ("Bidirectional", "TimeDistributed") and isinstance(cfg.get("layer"), dict):
            inner_in = [s[1:] if s else None for s in ins] if cls == "TimeDistributed" else ins
            copies = 2 if cls == "Bidirectional" else 1
            out = None
            for _ in range(copies):
                out = self.obj(cfg["layer"], inner_in)[0]
            if cls == "TimeDistributed":
                return [None if out is None or not ins[0] else [ins[0][0], *out]]
            if out is not None and cfg.get("merge_mode", "concat") == "concat" and out:
                out = [*out[:-1], None if out[-1] is None else 2 * out[-1]]
            return [out]
        params, out = rule(str(cls), cfg, ins)
        self.add(obj, str(cls), params, cfg)
        return [out]

    def add(self, obj: dict, cls: str, params: int, cfg: dict) -> None:
        if params <= 0:
            return
        itemsize = _itemsize(cfg.get("dtype"))
        self.cost.params += params
        self.cost.bytes += params * itemsize
        self.cost.layers += 1
        name = obj.get("name", cfg.get("name"))
        if params > self.cost.biggest[0]:
            self.cost.biggest = (params, _txt(name), cls)
        if params > self.max_params:
            raise ModelFileError(
                f"{self.shown}: layer {_txt(name)} ({_txt(cls, 40)}) has {_big(params)} parameters "
                f"({_bytes(params * itemsize)} of weights), over the parameter budget of {self.max_params:,}"
                f"{self.origin}; refusing the file before Keras builds the model")
        if self.cost.params > self.max_params:
            raise ModelFileError(
                f"{self.shown}: the model reaches {_big(self.cost.params)} parameters at layer {_txt(name)} "
                f"({_txt(cls, 40)}, {_big(params)} parameters), over the parameter budget of "
                f"{self.max_params:,}{self.origin}; refusing the file before Keras builds the model")


def _big(n: int) -> str:
    return f"{n:,}" if n < 10 ** 24 else f"over {10 ** 24:,}"


def _bytes(n: int) -> str:
    for unit, size in (("TB", 10 ** 12), ("GB", 10 ** 9), ("MB", 10 ** 6)):
        if n >= size:
            return f"{n / size:,.1f} {unit}" if n < 10 ** 24 else "over 10^24 bytes"
    return f"{n:,} bytes"


def _itemsize(dtype: Any) -> int:
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict) else dtype
    name = name if isinstance(name, str) else "float32"
    if name.startswith("mixed_"):
        return 4  # variables stay float32 under a mixed policy
    return 8 if "64" in name else 2 if "16" in name else 1 if "int8" in name or "int4" in name else 4


def _tensors(node: Any) -> list[dict]:
    """The ``__keras_tensor__`` configs a call's arguments hold, in order."""
    found: list[dict] = []
    stack = [node.get("args", []) if isinstance(node, dict) else [], node.get("kwargs", {}) if isinstance(node, dict) else {}]
    stack.reverse()
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__" and isinstance(value.get("config"), dict):
                found.append(value["config"])
            else:
                stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return found


def _history(tensor: dict) -> tuple | None:
    h = tensor.get("keras_history")
    return tuple(h) if isinstance(h, list) and len(h) == 3 and all(isinstance(x, (str, int)) for x in h) else None


def _history_list(value: Any) -> list[list]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    return [v for v in value if isinstance(v, list)] if isinstance(value, list) else []
