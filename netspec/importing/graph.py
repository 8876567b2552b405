"""The flat graph of an import: a functional Keras model's config walked in call order, one op per call."""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from typing import Any

from .. import kerasapi
from ..schema import registry
from ..schema.keywords import is_number
from ..errors import ModelImportError, short
from .foldgraph import Op, is_name, postorder, spec_name
from .nesting import Group
from .args import OBJECT_KINDS, ArgConverter, normalize
from .calls import TensorDict, call_inputs, strip_implicit_masks
from .structures import call_refs, model_nodes, output_count, top_structures
from .values import (
    call_tensors,
    config_dtype,
    history_list,
    index_text,
    is_array,
    is_tensor,
    number_text,
    plain_arrays,
    plain_value,
)


# Python operators on KerasTensors become keras.ops operations; each is one expression.
_BINARY = {"Add": "+", "Subtract": "-", "Multiply": "*", "TrueDivide": "/", "Divide": "/",
           "FloorDivide": "//", "Mod": "%", "Matmul": "@", "Power": "**"}
_UNARY = {"Negative": "-"}
MAX_LAYER_NAME = 255  # characters of a layer name kept as it is (longer ones are cut to 64)

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
        self.params: dict[str, Any] = {}      # spec params: the values netspec expressions stored
        # Layers of a nested model are named "<model>_<layer>": the names netspec gives the layers
        # of a block instance, so the spec built from the import names its layers the same way.
        self.prefix = ""
        self.calls: dict[int, int] = {}       # id(layer) -> calls after its first (a shared layer)
        # The model's outputs given as a dict (keras.Model(inputs, {"priority": p, ...})): their names,
        # in the config's order, which the spec's outputs mapping keeps (Keras orders the outputs and
        # their layers by these names).
        self.output_keys: list[str] | None = None
        self.reserved: set[str] = set()       # output keys no node may be named (folding avoids them too)
        self.input_keys: dict[str, str] = {}  # Input layer name -> the key of the model's input dict feeding it
        self.groups: list[Group] = []         # nested models called once (see nesting.py), innermost first
        self.grouping = True                  # whether a model called once here is recorded as a group
        self.walked: set[int] = set()         # id() of the nested models walked (called) so far

    def own(self, keras_name: str) -> str:
        """A fresh op name for a Keras layer, inside the nested model being flattened."""
        return self.fresh(self.prefix + keras_name)

    def name_call(self, keras_name: str, node: str, k: int = 0) -> None:
        """Record the node made of call ``k`` of a Keras layer (or what a nested model's input is bound to):
        ``name``, then ``name#1``, ... for the calls of a nested model walked again (called more than once),
        which the import's check accepts as that layer's nodes."""
        key, again = (keras_name if k == 0 else f"{keras_name}#{k}"), k
        while key in self.names and self.names[key] != node:
            again += 1
            key = f"{keras_name}#{again}"
        self.names[key] = node

    def fresh(self, wanted: str) -> str:
        # a valid name is kept whole up to MAX_LAYER_NAME: netspec names nested instances <a>_<b>_<c>
        name = wanted if is_name(wanted) and len(wanted) <= MAX_LAYER_NAME else spec_name(wanted)
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
        if not _functional(model):
            raise ModelImportError(
                f"{short(where.rstrip(' >'), 80) if where else 'the model'} is a subclassed keras.Model "
                f"({type(model).__name__}): its graph is the Python code of its call() method, not a graph of "
                "layers that netspec can read",
                hint="write it as a functional model (keras.Model(inputs, outputs)) and import that, or write the "
                     "spec by hand and register the class as a user layer (@netspec.register_layer)")
        config = plain_value(model.get_config())  # tuples as lists, as in a .keras file
        live = {op.name: op for op in model.operations}
        live_nodes = {}
        for name, op in live.items():
            for k, node in enumerate(model_nodes(model, op)):
                live_nodes[(name, k)] = node
        for entry in history_list(config["output_layers"]):  # the leaves themselves: the call each output is of
            entry[1] -= kerasapi.config_call_offset(live[entry[0]]) if entry[0] in live else 0
        skip = strip_implicit_masks(config, live_nodes)
        calls = self._calls(config, skip)
        refs: dict[tuple[str, int, int], str] = {}
        multi: dict[tuple[str, int], bool] = {}
        # the inputs in keras.tree.flatten order (a dict's by sorted key): the model's own `inputs`
        in_names = [entry[0] for entry in history_list(config["input_layers"], sort_keys=True)]
        if bound is None:
            top_structures(self, model, config, live)
        for layer_cfg, k in calls:
            name = layer_cfg["name"]
            op = live.get(name)
            if layer_cfg["class_name"] == "InputLayer":
                if bound is not None:
                    refs[(name, 0, 0)] = bound[in_names.index(name)]
                    self.name_call(name, bound[in_names.index(name)].split(".")[0])
                else:
                    refs[(name, 0, 0)] = self._input(layer_cfg)
                continue
            node_args = layer_cfg["inbound_nodes"][k]
            inputs = self._call_inputs(node_args, refs, op, f"{where}{name}", live_nodes.get((name, k)))
            n_out = output_count(model, op, k)
            if isinstance(op, self.keras.Model):
                outs = self.nested(op, call_refs(op, inputs, f"{where}{name}"), where,
                                   once=len(layer_cfg["inbound_nodes"]) == 1)
                if len(outs) == 1:  # the nested model, as a producer, stands for its output layer
                    self.names.setdefault(name, outs[0].split(".")[0])
                for t, ref in enumerate(outs):
                    refs[(name, k, t)] = ref
                continue
            op_name = self.convert(op, layer_cfg, inputs, k, f"{where}{name}")
            self.name_call(name, op_name, k)
            multi[(name, k)] = n_out > 1
            for t in range(max(n_out, 1)):
                refs[(name, k, t)] = f"{op_name}.{t}" if n_out > 1 else op_name
        if bound is None:  # the spec's inputs in the model's order, not in the order the walk met them
            order = [self.names.get(n) for n in in_names]
            self.inputs.sort(key=lambda info: order.index(info.name) if info.name in order else len(order))
        # a nested model's outputs in keras.tree.flatten order (a dict's by sorted key): the tensor indices its
        # callers' configs name; the top model's in the config's order, which its outputs: mapping keeps by key
        outputs = history_list(config["output_layers"], sort_keys=bound is not None)
        return [_output_ref(refs, tuple(entry), where) for entry in outputs]

    def nested(self, model, bound: list[str], where: str, once: bool = False) -> list[str]:
        """Inline a nested model called on ``bound``; its layers are named ``<model>_<layer>``.

        A model called ``once`` at the top level, or inside a model called once and recorded so, and
        the first call of a model called more than once at the top level, is recorded as a
        :class:`~netspec.importing.nesting.Group` (its ops, which may become a block, with its inputs'
        names and refs and its outputs' refs), under a name of its own (the instance's).
        """
        # a model called more than once at the top level: its first call is the group (its later
        # calls, share ops, become share: nodes of it); the models nested in it stay inline
        first = id(model) not in self.walked
        self.walked.add(id(model))
        top = self.grouping and first and (once or self.prefix == "")
        instance = self.fresh(self.prefix + spec_name(model.name)) if top else self.prefix + spec_name(model.name)
        outer, self.prefix = self.prefix, instance + "_"
        grouping, self.grouping = self.grouping, top and once
        start = len(self.ops)
        try:
            outs = self.model(model, bound, f"{where}{model.name} > ")
        finally:
            self.prefix, self.grouping = outer, grouping
        if top:
            names = ["x"] if len(bound) == 1 else [spec_name(kerasapi.producer(t).name, "x") for t in model.inputs]
            self.groups.append(Group(instance, spec_name(model.name), tuple(op.name for op in self.ops[start:]),
                                     tuple(names), tuple(bound), tuple(outs)))
        return outs

    def _sequential(self, model, bound, where: str) -> list[str]:
        if bound is None:
            if not model.inputs:
                raise ModelImportError("the Sequential model is not built (it has no input shape); "
                                       "build it or give it an Input first")
            t = model.inputs[0]
            # keras.Input((4,)) is named keras_tensor_<counter>: a name that says nothing and changes
            auto = not is_name(t.name) or re.fullmatch(r"keras_tensor(_\d+)?", t.name) is not None
            info = InputInfo(self.fresh("input" if auto else t.name),
                             [None if d is None else int(d) for d in t.shape[1:]], str(t.dtype),
                             None if t.shape[0] is None else int(t.shape[0]))
            self.inputs.append(info)
            self.names[kerasapi.producer(t).name] = info.name
            current = info.name
        else:
            current = bound[0]
            if model.inputs:
                self.name_call(kerasapi.producer(model.inputs[0]).name, current.split(".")[0])
        for layer in model.layers:
            if isinstance(layer, self.keras.Model):
                current = self.nested(layer, [current], where, once=True)[0]
                self.names.setdefault(layer.name, current.split(".")[0])  # it stands for its output layer
                continue
            cfg = {"class_name": type(layer).__name__, "module": type(layer).__module__, "name": layer.name,
                   "config": layer.get_config()}
            current = self.convert(layer, cfg, [current], 0, f"{where}{layer.name}")
            self.name_call(layer.name, current)
        return [current]

    def _input(self, layer_cfg: dict) -> str:
        cfg = layer_cfg["config"]
        shape = cfg.get("batch_shape") or [None, *(cfg.get("shape") or [])]
        name = self.fresh(self.input_keys.get(layer_cfg["name"], layer_cfg["name"]))  # by input dict key, if any
        info = InputInfo(name, list(shape[1:]), config_dtype(cfg.get("dtype")), shape[0], bool(cfg.get("sparse")),
                         bool(cfg.get("optional")))
        if cfg.get("ragged"):
            raise ModelImportError(f"input {short(layer_cfg['name'], 80)} is ragged; spec inputs cannot be ragged")
        self.inputs.append(info)
        self.names[layer_cfg["name"]] = info.name
        return info.name

    def _calls(self, config: dict, skip: frozenset = frozenset()) -> list[tuple[dict, int]]:
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
        # anything the outputs do not reach, but not the operations that only made implicit masks
        roots += [(layer["name"], 0) for layer in config["layers"] if layer["name"] not in skip]
        def cycle(call: tuple[str, int]) -> None:
            raise ModelImportError(f"the model's graph has a cycle through layer {short(call[0], 80)}")

        return [(by_name[call[0]], call[1]) for call in postorder(roots, deps, cycle)]

    def _call_inputs(self, node: dict, refs: dict, op, where: str, live=None):
        """A layer call's inputs (see :func:`netspec.importing.calls.call_inputs`); a keras.ops
        operation keeps its raw arguments (numbers among them) for :meth:`_operation`."""
        def ref(t):
            return refs[tuple(t["config"]["keras_history"])]

        if not isinstance(op, self.keras.layers.Layer):
            return ("call", node.get("args", []), node.get("kwargs", {}), ref)
        return call_inputs(node, ref, op, where, live)

    # -- one call -------------------------------------------------------------------------------

    def convert(self, op, layer_cfg: dict, inputs, k: int, where: str) -> str:
        """Add the Op for call ``k`` of ``op``; returns its name."""
        keras = self.keras
        module, cls_name = type(op).__module__, type(op).__name__
        inside = kerasapi.keras_module(type(op)) or ""  # "" for a class that is not Keras's own
        # a later call of a layer shares its weights; an operation (keras.ops) holds none: each call is its own
        shared = id(op) in self.first_call and isinstance(op, keras.layers.Layer)
        if shared:
            count = self.calls[id(op)] = self.calls.get(id(op), 0) + 1  # k of a nested model's layer is 0
            name = self.own(f"{op.name}_{count}")
            self.ops.append(Op(name, "share", None, {}, _layer_inputs(inputs, where),
                               share_of=self.first_call[id(op)], foldable=False, origin=f"{op.name}#{k}"))
            return name
        if not isinstance(op, keras.layers.Layer):
            if inside.startswith("ops"):
                return self._operation(op, cls_name, inputs, where)
            raise ModelImportError(f"operation {short(where, 80)} ({module}.{cls_name}) cannot be written in a spec")
        if (inside, cls_name) in _KNOWN_EXPRESSIONS:
            text, variables = _KNOWN_EXPRESSIONS[(inside, cls_name)](op.get_config())
            refs = inputs if isinstance(inputs, list) else None
            if refs is None or len(refs) != len(variables):
                raise ModelImportError(f"layer {short(where, 80)} ({cls_name}) is called with unexpected inputs")
            return self._add(Op(self.own(op.name), "expr", None, {}, dict(zip(variables, refs)), expr=text,
                                origin=op.name), op)
        if (module, cls_name) == ("netspec.build.expression", "Expression"):
            return self._stored_expression(op, inputs, where)
        type_name = self._type_name(op, where)
        if type_name in self.catalog.core:
            args = self.args.layer_args(op, type_name, f"layer {short(where, 80)}")
        else:
            args = self._user_args(op, type_name, where)
        return self._add(Op(self.own(op.name), "layer", type_name, args,
                            _layer_inputs(inputs, where), origin=op.name), op)

    def _stored_expression(self, op, inputs, where: str) -> str:
        """netspec's own expression layer (a model netspec built): back to the ``expr:`` node it was."""
        config = op.get_config()
        for param, value in (config.get("constants") or {}).items():
            value = plain_value(value)
            if param in self.params and self.params[param] != value:
                raise ModelImportError(
                    f"layer {short(where, 80)} (a netspec expression) uses param {short(param)}={short(value)}, "
                    f"but another expression uses {short(param)}={short(self.params[param])}; a spec has one "
                    "value per param", hint="rename the param in one of the expressions")
            self.params[param] = value
        names = list(op.variable_names)
        refs: dict[str, str] | None = None
        if isinstance(inputs, TensorDict) and sorted(inputs) == sorted(names):
            refs = {n: inputs[n] for n in names}
        elif isinstance(inputs, list) and not isinstance(inputs, TensorDict) and len(inputs) == len(names):
            refs = dict(zip(names, inputs))
        if refs is None:
            raise ModelImportError(f"layer {short(where)} (a netspec expression) is called with inputs that do "
                                   "not match its variables")
        args = {} if config.get("output_shape") is None else {"output_shape": plain_value(config["output_shape"])}
        return self._add(Op(self.own(op.name), "expr", None, args, refs, expr=op.expression, origin=op.name), op)

    def _add(self, new: Op, op) -> str:
        # Named after its node, not the bare Keras name: a nested model's layer is the node
        # <model>_<layer> here and in a model netspec builds from the spec (the folding names blocks
        # from it, and maps it to its place in the spec).
        new.origin = new.name
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
            kind = self.catalog.arg_kind(type_name, key)
            if isinstance(value, dict) and kind in OBJECT_KINDS:
                # an initializer, regularizer or constraint, in the spec form a core layer's takes
                written = self.args.object_value(kind, value, f"layer {short(where, 80)}: {key}")
                if param is not None and isinstance(param.default, str) and written == param.default:
                    continue
                out[key] = written
                continue
            if isinstance(value, dict):
                raise ModelImportError(f"layer {short(where, 80)}: argument {key} of user layer {type_name} is an "
                                       "object that is not an initializer, regularizer or constraint; write it in "
                                       "the spec by hand")
            out[key] = plain_value(value)
        return out

    def _operation(self, op, cls_name: str, inputs, where: str) -> str:
        if not (isinstance(inputs, tuple) and inputs[0] == "call"):
            inputs = ("call", [{"@ref": r} for r in inputs], {}, None)
        _, args, kwargs, ref = inputs
        if kwargs:
            raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) has keyword arguments; "
                                   "only arithmetic operations are imported as expressions")
        if cls_name == "GetItem" and len(args) == 2 and (is_tensor(args[0]) or isinstance(args[0], dict)
                                                          and "@ref" in args[0]):
            index = index_text(args[1])  # x[:, 0] (a ViT's class token), x[..., ::-1]
            if index is None:
                raise ModelImportError(f"operation {short(where, 80)} (keras.ops GetItem) indexes with "
                                       f"{short(args[1])}; an expression subscript holds integers, slices, ... and None")
            target = ref(args[0]) if is_tensor(args[0]) else args[0]["@ref"]
            return self._add(Op(self.own(op.name), "expr", None, {}, {"x": target}, expr=f"x[{index}]",
                                origin=op.name), op)
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
            elif is_number(a):
                if not math.isfinite(a):
                    raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) has the constant "
                                           f"{a!r}; an expression holds finite numbers only")
                terms.append(number_text(a))
            elif is_array(a) and is_number(value := plain_arrays(a, f"operation {short(where, 80)}")) \
                    and {a["config"].get("dtype")} == {t["config"].get("dtype") for t in args if is_tensor(t)}:
                # x * ops.convert_to_tensor(2.0): one number of the tensor's own dtype reads as a literal
                terms.append(number_text(value))
            else:
                raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) has argument {short(a)}, "
                                       "which an expression cannot hold")
        if cls_name == "Power" and len(terms) == 2 and not _small_literal(terms[1]):
            text = f"ops.power({terms[0]}, {terms[1]})"  # '**' takes number exponents within MAX_EXPONENT only
        elif cls_name in _BINARY and len(terms) == 2:
            text = f"{terms[0]} {_BINARY[cls_name]} {terms[1]}"
        elif cls_name in _UNARY and len(terms) == 1:
            text = f"{_UNARY[cls_name]}{terms[0]}"
        else:
            raise ModelImportError(f"operation {short(where, 80)} (keras.ops {cls_name}) cannot be imported; "
                                   "only + - * / // % @ ** and unary minus on tensors become expressions")
        if len(variables) == 1:  # one input: it is called x
            text = re.sub(r"\ba\b", "x", text)
            variables = {"x": variables["a"]}
        return self._add(Op(self.own(op.name), "expr", None, {}, variables, expr=text, origin=op.name), op)


def _small_literal(term: str) -> bool:
    """Whether an expression term is a number '**' takes as its exponent (a literal within MAX_EXPONENT)."""
    from ..expressions.check import MAX_EXPONENT

    try:
        return abs(float(term)) <= MAX_EXPONENT
    except ValueError:  # a variable
        return False


def _layer_inputs(inputs, where: str):
    """A layer's ``in:``: only netspec's expression layer is called with a dict of tensors."""
    if isinstance(inputs, TensorDict):
        raise ModelImportError(f"layer {short(where, 80)} is called with a dict of tensors; a spec node passes a "
                               "tensor, a list, or call keywords")
    return inputs


def _output_ref(refs: dict, entry: tuple, where: str) -> str:
    """The ref of a model output ``(layer, call, tensor)``, its call counted as its callers count it
    (:func:`netspec.kerasapi.config_call_offset`)."""
    if entry in refs:
        return refs[entry]
    raise ModelImportError(f"{short(where.rstrip(' >'), 80) if where else 'the model'}: output "
                           f"{short(list(entry), 80)} names no call in the model")


def _functional(model) -> bool:
    """Whether ``model`` is a graph of layers (functional), not a subclass whose call() is code."""
    try:
        config = model.get_config()
    except Exception:  # a subclass without get_config
        return False
    return hasattr(model, "_nodes") and isinstance(config, dict) and "layers" in config and "input_layers" in config
