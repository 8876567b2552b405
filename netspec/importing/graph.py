"""The flat graph of an import: a functional Keras model's config walked in call order, one op per call."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from .. import kerasapi
from ..schema import registry
from ..errors import ModelImportError, short
from .foldgraph import Op, is_name, spec_name
from .args import ArgConverter, normalize
from .values import (
    CALL_CONTEXT,
    call_tensors,
    config_dtype,
    has_tensor,
    history_list,
    is_tensor,
    number_text,
    plain_value,
    positional,
    positional_or_named,
)


# Python operators on KerasTensors become keras.ops operations; each is one expression.
_BINARY = {"Add": "+", "Subtract": "-", "Multiply": "*", "TrueDivide": "/", "Divide": "/",
           "FloorDivide": "//", "Mod": "%", "Matmul": "@", "Power": "**"}
_UNARY = {"Negative": "-"}

# Weightless layer classes private to keras.applications, written as the expression they compute
# (keyed by where the class lives inside Keras: kerasapi.keras_module).
_KNOWN_EXPRESSIONS = {
    ("applications.inception_resnet_v2", "CustomScaleLayer"):
        lambda config: ("a + b * " + number_text(config["scale"]), ("a", "b")),
}

# Why some layers can never be written in a spec (from the schema generator's own list).
def _excluded() -> dict[str, str]:
    from ..schema.derive.classes import EXCLUDED_LAYERS

    return EXCLUDED_LAYERS


@dataclass
class InputInfo:
    """One model input: its name, shape (without the batch axis), dtype and ``Input`` options."""

    name: str
    shape: list
    dtype: str
    batch_size: int | None = None
    sparse: bool = False
    optional: bool = False
    example_shape: list | None = None  # the size to prove unknown dimensions at (a keras_app's default)


class Flattener:
    """Walks a functional model's config (the .keras format) in call order, making one Op per call."""

    def __init__(self, catalog) -> None:
        import keras

        self.keras = keras
        self.catalog = catalog
        self.args = ArgConverter(catalog)
        self.ops: list[Op] = []
        self.inputs: list[InputInfo] = []
        self.used: set[str] = set()
        self.first_call: dict[int, str] = {}  # id(layer) -> name of the op of its first call
        self.names: dict[str, str] = {}       # Keras name -> op name
        self.notes: list[str] = []

    def fresh(self, wanted: str) -> str:
        name = wanted if is_name(wanted) and len(wanted) <= 64 else spec_name(wanted)
        base, k = name, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    # -- models --------------------------------------------------------------------------------

    def model(self, model, bound: list[str] | None = None, where: str = "") -> list[str]:
        """Add the ops of ``model``; returns its output refs. ``bound``: refs for its inputs (nested)."""
        if isinstance(model, self.keras.Sequential):
            return self._sequential(model, bound, where)
        if not hasattr(model, "_nodes") or not isinstance(model.get_config(), dict) or "layers" not in model.get_config():
            raise ModelImportError(f"{where or 'the model'} is a subclassed keras.Model ({type(model).__name__}); "
                                   "only functional and Sequential models can be imported")
        config = plain_value(model.get_config())  # tuples as lists, as in a .keras file
        live = {op.name: op for op in model.operations}
        calls = self._calls(config)
        refs: dict[tuple[str, int, int], str] = {}
        multi: dict[tuple[str, int], bool] = {}
        in_names = [entry[0] for entry in history_list(config["input_layers"])]
        for layer_cfg, k in calls:
            name = layer_cfg["name"]
            op = live.get(name)
            if layer_cfg["class_name"] == "InputLayer":
                if bound is not None:
                    refs[(name, 0, 0)] = bound[in_names.index(name)]
                    self.names[name] = bound[in_names.index(name)].split(".")[0]
                else:
                    refs[(name, 0, 0)] = self._input(layer_cfg)
                continue
            node_args = layer_cfg["inbound_nodes"][k]
            inputs = self._call_inputs(node_args, refs, op, f"{where}{name}")
            n_out = _output_count(model, op, k)
            if isinstance(op, self.keras.Model):
                outs = self.model(op, positional(inputs), f"{where}{name} > ")
                if len(outs) == 1:
                    self.names[name] = outs[0].split(".")[0]
                for t, ref in enumerate(outs):
                    refs[(name, k, t)] = ref
                continue
            op_name = self.convert(op, layer_cfg, inputs, k, f"{where}{name}")
            self.names[name if k == 0 else f"{name}#{k}"] = op_name
            multi[(name, k)] = n_out > 1
            for t in range(max(n_out, 1)):
                refs[(name, k, t)] = f"{op_name}.{t}" if n_out > 1 else op_name
        outs = []
        for entry in history_list(config["output_layers"]):
            outs.append(refs[tuple(entry)])
        return outs

    def _sequential(self, model, bound, where: str) -> list[str]:
        if bound is None:
            if not model.inputs:
                raise ModelImportError("the Sequential model is not built (it has no input shape); "
                                       "build it or give it an Input first")
            t = model.inputs[0]
            info = InputInfo(self.fresh(t.name if is_name(t.name) else "input"),
                             [None if d is None else int(d) for d in t.shape[1:]], str(t.dtype),
                             None if t.shape[0] is None else int(t.shape[0]))
            self.inputs.append(info)
            self.names[kerasapi.producer(t).name] = info.name
            current = info.name
        else:
            current = bound[0]
            if model.inputs:
                self.names[kerasapi.producer(model.inputs[0]).name] = current.split(".")[0]
        for layer in model.layers:
            if isinstance(layer, self.keras.Model):
                current = self.model(layer, [current], f"{where}{layer.name} > ")[0]
                continue
            cfg = {"class_name": type(layer).__name__, "module": type(layer).__module__, "name": layer.name,
                   "config": layer.get_config()}
            current = self.convert(layer, cfg, [current], 0, f"{where}{layer.name}")
            self.names[layer.name] = current
        return [current]

    def _input(self, layer_cfg: dict) -> str:
        cfg = layer_cfg["config"]
        shape = cfg.get("batch_shape") or [None, *(cfg.get("shape") or [])]
        info = InputInfo(self.fresh(layer_cfg["name"]), list(shape[1:]), config_dtype(cfg.get("dtype")),
                         shape[0], bool(cfg.get("sparse")), bool(cfg.get("optional")))
        if cfg.get("ragged"):
            raise ModelImportError(f"input {short(layer_cfg['name'], 80)} is ragged; spec inputs cannot be ragged")
        self.inputs.append(info)
        self.names[layer_cfg["name"]] = info.name
        return info.name

    def _calls(self, config: dict) -> list[tuple[dict, int]]:
        """Every (layer config, call index), each after its inputs, branches kept together.

        A depth-first walk from the outputs (inputs in call-argument order, iterative) emits each call
        right after the chain that feeds it: a residual block comes out as shortcut, main branch, add,
        the order its author wrote it in, where the config's own order interleaves branches by depth.
        """
        by_name = {layer["name"]: layer for layer in config["layers"]}
        deps: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for layer in config["layers"]:
            calls = layer["inbound_nodes"] or [{}]
            for k, node in enumerate(calls):
                deps[(layer["name"], k)] = list(dict.fromkeys((h[0], h[1]) for h in call_tensors(node)))
        for call, needed in deps.items():
            for d in needed:
                if d not in deps:
                    raise ModelImportError(f"layer {short(call[0], 80)} uses a tensor of {short(d[0], 80)}, which is not in the model")
        roots = [(h[0], h[1]) for h in history_list(config["output_layers"])]
        roots += [(layer["name"], 0) for layer in config["layers"]]  # anything the outputs do not reach
        done: set[tuple[str, int]] = set()
        out: list[tuple[dict, int]] = []
        for root in roots:
            if root in done or root not in deps:
                continue
            stack = [(root, iter(deps[root]))]
            active = {root}
            while stack:
                call, it = stack[-1]
                step = next(it, None)
                if step is None:
                    stack.pop()
                    active.discard(call)
                    done.add(call)
                    out.append((by_name[call[0]], call[1]))
                elif step not in done:
                    if step in active:
                        raise ModelImportError(f"the model's graph has a cycle through layer {short(step[0], 80)}")
                    active.add(step)
                    stack.append((step, iter(deps[step])))
        return out

    def _call_inputs(self, node: dict, refs: dict, op, where: str):
        args, kwargs = node.get("args", []), node.get("kwargs", {})

        def ref(t):
            return refs[tuple(t["config"]["keras_history"])]

        if len(args) == 1 and is_tensor(args[0]) and not has_tensor(kwargs):
            inputs: Any = [ref(args[0])]
        elif len(args) == 1 and isinstance(args[0], list) and args[0] and all(is_tensor(a) for a in args[0]) \
                and not has_tensor(kwargs):
            inputs = [ref(a) for a in args[0]]
        else:
            inputs = ("call", args, kwargs, ref)
        extra = {k: v for k, v in kwargs.items() if not is_tensor(v) and v is not None and k not in CALL_CONTEXT}
        if extra and not isinstance(inputs, tuple):
            key, value = next(iter(extra.items()))
            raise ModelImportError(f"layer {short(where, 80)} is called with {key}={short(value)}; a spec node "
                                   "cannot pass call arguments other than its inputs")
        return inputs

    # -- one call -------------------------------------------------------------------------------

    def convert(self, op, layer_cfg: dict, inputs, k: int, where: str) -> str:
        """Add the Op for call ``k`` of ``op``; returns its name."""
        keras = self.keras
        module, cls_name = type(op).__module__, type(op).__name__
        inside = kerasapi.keras_module(type(op)) or ""  # "" for a class that is not Keras's own
        shared = id(op) in self.first_call
        if shared:
            name = self.fresh(f"{op.name}_{k}" if k else op.name)
            self.ops.append(Op(name, "share", None, {}, positional_or_named(inputs, op, where),
                               share_of=self.first_call[id(op)], foldable=False, origin=f"{op.name}#{k}"))
            return name
        if not isinstance(op, keras.layers.Layer):
            if inside.startswith("ops"):
                return self._operation(op, cls_name, inputs, where)
            raise ModelImportError(f"operation {short(where, 80)} ({module}.{cls_name}) cannot be written in a spec")
        if (inside, cls_name) in _KNOWN_EXPRESSIONS:
            text, variables = _KNOWN_EXPRESSIONS[(inside, cls_name)](op.get_config())
            refs = positional(inputs) if isinstance(inputs, list) else None
            if refs is None or len(refs) != len(variables):
                raise ModelImportError(f"layer {short(where, 80)} ({cls_name}) is called with unexpected inputs")
            return self._add(Op(self.fresh(op.name), "expr", None, {}, dict(zip(variables, refs)), expr=text,
                                origin=op.name), op)
        if (module, cls_name) == ("netspec.build.expression", "Expression"):
            return self._stored_expression(op, inputs, where)
        type_name = self._type_name(op, where)
        if type_name in self.catalog.core:
            args = self.args.layer_args(op, type_name, f"layer {short(where, 80)}")
        else:
            args = self._user_args(op, type_name, where)
        return self._add(Op(self.fresh(op.name), "layer", type_name, args,
                            positional_or_named(inputs, op, where), origin=op.name), op)

    def _stored_expression(self, op, inputs, where: str) -> str:
        """netspec's own expression layer (a model netspec built): back to the ``expr:`` node it was."""
        config = op.get_config()
        if config.get("constants"):
            raise ModelImportError(f"layer {short(where)} is a netspec expression that uses params "
                                   f"({', '.join(sorted(map(str, config['constants'])))[:80]}); import writes "
                                   "expressions without params only", hint="write this node as `expr:` by hand")
        names = list(op.variable_names)
        refs: dict[str, str] | None = None
        if isinstance(inputs, list) and len(inputs) == len(names):
            refs = dict(zip(names, inputs))
        elif isinstance(inputs, tuple):
            _, args, kwargs, ref = inputs
            given = args[0] if len(args) == 1 and isinstance(args[0], dict) and not kwargs else {}
            if sorted(given) == sorted(names) and all(is_tensor(v) for v in given.values()):
                refs = {n: ref(given[n]) for n in names}
        if refs is None:
            raise ModelImportError(f"layer {short(where)} (a netspec expression) is called with inputs that do "
                                   "not match its variables")
        args = {} if config.get("output_shape") is None else {"output_shape": plain_value(config["output_shape"])}
        return self._add(Op(self.fresh(op.name), "expr", None, args, refs, expr=op.expression, origin=op.name), op)

    def _add(self, new: Op, op) -> str:
        self.first_call[id(op)] = new.name
        self.ops.append(new)
        return new.name

    def _type_name(self, op, where: str) -> str:
        cls = type(op)
        name = cls.__name__
        if getattr(self.keras.layers, name, None) is cls and name in self.catalog.core:
            return name
        for key, registered in registry.LAYERS.items():
            if registered is cls:
                return key
        excluded = _excluded()
        if name in excluded and getattr(self.keras.layers, name, None) is cls:
            raise ModelImportError(f"layer {short(where, 80)} is a {name}, which a spec cannot express: {excluded[name]}")
        raise ModelImportError(
            f"layer {short(where, 80)} is a {cls.__module__}.{name}, which is neither a core Keras layer nor a "
            "layer registered with netspec",
            hint="register the class with @netspec.register_layer in a plugin and pass it to "
                 "`netspec import --plugins`")

    def _user_args(self, op, type_name: str, where: str) -> dict:
        config = op.get_config()
        sig = inspect.signature(type(op).__init__)
        out = {}
        for key, value in config.items():
            if key in ("name", "trainable", "dtype"):
                continue
            param = sig.parameters.get(key)
            if param is not None and param.default is not param.empty and normalize(param.default) == normalize(value):
                continue
            if isinstance(value, dict):
                raise ModelImportError(f"layer {short(where, 80)}: argument {key}={short(value)} of user layer "
                                       f"{type_name} is an object; write it in the spec by hand")
            out[key] = plain_value(value)
        return out

    def _operation(self, op, cls_name: str, inputs, where: str) -> str:
        if not (isinstance(inputs, tuple) and inputs[0] == "call"):
            inputs = ("call", [{"@ref": r} for r in inputs], {}, None)
        _, args, kwargs, ref = inputs
        if kwargs:
            raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) has keyword arguments; "
                                   "only arithmetic operations are imported as expressions")
        variables: dict[str, str] = {}
        terms = []
        for a in args:
            if is_tensor(a) or (isinstance(a, dict) and "@ref" in a):
                target = ref(a) if is_tensor(a) else a["@ref"]
                var = next((v for v, r in variables.items() if r == target), None)
                if var is None:
                    var = "abcdefgh"[len(variables)]
                    variables[var] = target
                terms.append(var)
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                terms.append(number_text(a))
            else:
                raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) has argument {short(a)}, "
                                       "which an expression cannot hold")
        if cls_name in _BINARY and len(terms) == 2:
            text = f"{terms[0]} {_BINARY[cls_name]} {terms[1]}"
        elif cls_name in _UNARY and len(terms) == 1:
            text = f"{_UNARY[cls_name]}{terms[0]}"
        else:
            raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) cannot be imported; "
                                   "only + - * / // % @ ** and unary minus on tensors become expressions")
        if len(variables) == 1:  # one input: it is called x
            text = " ".join("x" if t == "a" else t for t in text.split(" "))
            text = text.replace("-a", "-x")
            variables = {"x": variables["a"]}
        return self._add(Op(self.fresh(op.name), "expr", None, {}, variables, expr=text, origin=op.name), op)


def _output_count(model, op, k: int) -> int:
    """How many tensors call ``k`` of ``op`` (re-indexed as in the model's config) returns."""
    try:
        return len(kerasapi.model_nodes(model, op)[k].outputs)
    except Exception:  # private Keras structures changed: assume one output
        return 1
