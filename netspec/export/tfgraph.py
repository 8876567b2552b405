"""TensorFlow's side of the ONNX conversion: the serving function frozen and grappler-optimized, with as
few copies of the weights alive at once as the result allows (``convert.onnx_model`` runs the rest)."""

from __future__ import annotations

# tf2onnx relies on grappler to inline function calls; a call left in the graph becomes an ONNX node
# "StatefulPartitionedCall" that no runtime has. Grappler does not inline calls marked for XLA
# (``_XlaMustCompile`` on the call; freezing marks the callee ``_noinline`` too), and Keras's TF backend
# compiles grouped convolutions (ConvNeXt's depthwise ``Conv2D(groups=...)``) and channels-first 3D
# convolutions with ``tf.function(jit_compile=True)``; user layers may do the same. XLA is a choice of TF's
# runtime, meaningless in ONNX: the marks are dropped and those calls inlined like any other.
XLA_MARK = "_XlaMustCompile"


def drop_xla_marks(graph_def):
    """Unmark XLA-compiled calls in ``graph_def`` (in place) so grappler inlines them; other calls are left alone."""
    bodies = list(graph_def.library.function)
    callees = set()
    for node in [*graph_def.node, *(n for f in bodies for n in f.node_def)]:
        if XLA_MARK in node.attr:
            del node.attr[XLA_MARK]
            if "f" in node.attr:
                callees.add(node.attr["f"].func.name)
    for func in bodies:
        if func.signature.name in callees or XLA_MARK in func.attr:
            for key in (XLA_MARK, "_noinline"):
                if key in func.attr:
                    del func.attr[key]
    return graph_def


def frozen_graph_def(func, input_names: list[str], output_names: list[str], large_model: bool = False):
    """tf2onnx's ``tf_loader.from_function`` (freeze, fix, grappler) holding fewer copies of the weights at once.

    tf2onnx keeps the frozen ``ConcreteFunction`` (about 7x the weights in TensorFlow's graph and its
    captures) and a session graph it imports only to drop resource inputs (which the serving
    signature has none of) alive while grappler runs, which makes its own copies: 20x the weights
    in all, 7 GiB for ConvNeXtBase. Here no frozen function is built (:func:`frozen_graph`), nothing
    else is imported, and grappler runs as tf2onnx configures it (``tf_loader.tf_optimize``) on the
    graph without the values of the weights it cannot fold (:func:`hollow_weights`). XLA-compiled
    calls are unmarked so grappler inlines them (:func:`drop_xla_marks`).
    """
    import tensorflow as tf
    from tf2onnx import tf_loader

    if large_model:  # tf2onnx's external-storage path; netspec does not use it
        return tf_loader.convert_variables_to_constants_large_model(func)
    try:
        graph_def = frozen_graph(func)
    except ValueError as e:  # as tf2onnx: freezing sometimes fails on resources in subgraphs
        if "incompatible with expected resource" not in str(e):
            raise
        graph_def = tf_loader.fix_freezing_errors(tf_loader.convert_variables_to_constants_large_model(func))
    graph_def = drop_xla_marks(tf_loader.fix_freezing_errors_part2(graph_def))
    weights = hollow_weights(graph_def)
    with tf.Graph().as_default():  # grappler's meta-graph export needs a graph context
        graph_def = tf_loader.tf_optimize(list(input_names), list(output_names), graph_def)
    return refill_weights(graph_def, weights)


# Ops that only ever read a weight as one operand of a computation on the network's data: grappler cannot fold a
# weight that reaches only these (through Identity nodes), so it does not need its values.
WEIGHT_READERS = frozenset({"Conv2D", "Conv3D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "BatchMatMulV3",
                            "Einsum", "Conv2DBackpropInput", "Conv3DBackpropInputV2"})
SCALING = frozenset({"Mul", "RealDiv", "Div", "MulNoNan", "DivNoNan"})
HOLLOW_MIN_BYTES = 4096
STAND_IN_SHAPE = "/netspec_stand_in_shape"


def hollow_weights(graph_def) -> dict:
    """Turn the float weight constants grappler cannot fold into stand-ins of their dtype and shape; returns
    their values by node name, for :func:`refill_weights`.

    Grappler holds the graph it is given several times over (the meta-graph, its serialization, its parsed
    copy, its work item, its result and that result's serialization): its peak was 10x the weights for
    ConvNeXtTiny, the largest share of the ONNX conversion's. It optimizes the same graph without the values
    of weights it only passes to a convolution or a matrix product: the peak is then the graph's structure.
    """
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import op_def_registry, tensor_util

    floats = {types_pb2.DT_FLOAT, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16, types_pb2.DT_DOUBLE}  # RandomUniform's
    consumers: dict[str, list] = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node)

    def read_only_by_weight_readers(name: str, depth: int = 0) -> bool:
        users = consumers.get(name, [])
        if not users or depth > 8:
            return False
        for user in users:
            if all(i.startswith("^") for i in user.input if i.lstrip("^").split(":")[0] == name):
                continue  # only a control dependency (the function's NoOp of control outputs): reads no value
            if user.op == "Identity":
                if not read_only_by_weight_readers(user.name, depth + 1):
                    return False
            elif user.op not in WEIGHT_READERS or scaled(user.name) or on_constants(user, name):
                return False
        return True

    def on_constants(reader, weight: str) -> bool:
        """Are the reader's other operands constants too? Then grappler folds the whole product."""
        others = [i.split(":")[0] for i in reader.input if not i.startswith("^") and i.split(":")[0] != weight]
        return all(constant(o) for o in others)

    constant_memo: dict[str, bool] = {}
    by_name = {n.name: n for n in graph_def.node}

    def data_inputs(node) -> list[str]:
        return [i.split(":")[0] for i in node.input if not i.startswith("^")]

    def constant(name: str) -> bool:
        """Does the node compute from constants alone (what grappler's constant folding can evaluate)? An
        iterative depth-first walk (the data path of a deep network is thousands of nodes long), memoized."""
        stack = [(name, False)]
        while stack:
            current, expanded = stack.pop()
            node = by_name.get(current)
            if expanded:
                constant_memo[current] = all(constant_memo.get(i, False) for i in data_inputs(node))
                continue
            if current in constant_memo:
                continue
            op_def = op_def_registry.get(node.op) if node is not None else None
            if node is None or op_def is None or op_def.is_stateful or node.op.startswith("Placeholder"):
                constant_memo[current] = False
            elif node.op == "Const":
                constant_memo[current] = True
            elif not data_inputs(node):
                constant_memo[current] = False
            else:
                constant_memo[current] = False  # until its inputs are known (a cycle stays not constant)
                stack.append((current, True))
                stack.extend((i, False) for i in data_inputs(node) if i not in constant_memo)
        return constant_memo[name]

    def scaled(name: str, depth: int = 0) -> bool:
        """Does a Mul or division read this output (through Identity nodes)? Grappler folds a constant
        factor after a convolution into its filter (MulConvPushDown), which needs the filter's values."""
        return depth > 8 or any(u.op in SCALING or u.op == "Identity" and scaled(u.name, depth + 1)
                                for u in consumers.get(name, []))

    weights = {}
    stand_ins = []
    for node in graph_def.node:
        if node.op != "Const" or node.attr["dtype"].type not in floats:
            continue
        if node.attr["value"].tensor.ByteSize() < HOLLOW_MIN_BYTES or not read_only_by_weight_readers(node.name):
            continue
        value = node.attr["value"].tensor
        kept = type(value)()
        kept.CopyFrom(value)
        dims = [d.size for d in value.tensor_shape.dim]
        dtype = node.attr["dtype"].type
        # RandomUniform, not a Placeholder: grappler takes a placeholder for a feed of unknown shape, which
        # changed what it folds downstream (an Add of a zero bias after the weight's MatMul stayed). Its shape
        # comes from a constant, and a stateful op is never folded.
        node.op = "RandomUniform"
        node.ClearField("attr")
        node.attr["dtype"].type = dtype
        node.attr["T"].type = types_pb2.DT_INT32
        node.attr["seed"].i = node.attr["seed2"].i = 0
        del node.input[:]
        node.input.append(node.name + STAND_IN_SHAPE)
        stand_ins.append((node.name + STAND_IN_SHAPE, dims))
        weights[node.name] = kept
    for name, dims in stand_ins:
        shape = graph_def.node.add()
        shape.name, shape.op = name, "Const"
        shape.attr["dtype"].type = types_pb2.DT_INT32
        shape.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(dims, dtype="int32"))
    return weights


def refill_weights(graph_def, weights: dict):
    """The stand-ins :func:`hollow_weights` made, constants again with their values; their shape constants go."""
    keep = []
    for node in graph_def.node:
        if node.name.endswith(STAND_IN_SHAPE) and node.name[:-len(STAND_IN_SHAPE)] in weights:
            continue
        value = weights.pop(node.name, None)
        if value is not None:
            if node.op != "RandomUniform":  # grappler reused the name for another node: not seen
                raise RuntimeError(f"grappler rewrote weight {node.name!r} into {node.op}")
            dtype = node.attr["dtype"].type
            node.op = "Const"
            node.ClearField("attr")
            del node.input[:]
            node.attr["dtype"].type = dtype
            node.attr["value"].tensor.CopyFrom(value)
        keep.append(node)
    if weights:  # grappler dropped or renamed a weight the graph still needs: refuse rather than export without it
        raise RuntimeError(f"grappler lost weight {next(iter(weights))!r}")
    del graph_def.node[:]
    graph_def.node.extend(keep)
    return graph_def


def frozen_graph(func):
    """``func``'s graph with its variables as constants: ``convert_variables_to_constants_v2`` without the
    ConcreteFunction it then builds from that graph.

    tf2onnx freezes with the public function and takes the new function's ``as_graph_def()``: the graph is
    imported into a function (registered with the eager context) and serialized back, three more copies of
    the weights at once. The ``GraphDef`` TensorFlow builds before that is the same graph.
    """
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import convert_to_constants as c2c
    from tensorflow.python.framework import op_def_registry

    data = c2c._FunctionConverterDataInEager(func=func, lower_control_flow=False, aggressive_inlining=True)
    graph_def, _ = c2c._replace_variables_by_constants(converter_data=data)
    # A variable the graph also writes (a SeedGenerator's state) is frozen too, and its writer then reads a
    # constant where it needs a resource: the rebuilt function's import refused that, which sent tf2onnx to its
    # fallback freezing (frozen_graph_def). Refused the same way here, without the import.
    constants = {n.name for n in graph_def.node if n.op == "Const"}
    for node in graph_def.node:
        op_def = op_def_registry.get(node.op)
        if op_def is None:
            continue
        for arg, name in zip(op_def.input_arg, [i for i in node.input if not i.startswith("^")]):
            if arg.number_attr or arg.type_list_attr:
                break  # list arguments: inputs no longer line up with arguments one to one
            if arg.type == types_pb2.DT_RESOURCE and name.split(":")[0] in constants:
                raise ValueError(f"Input of node {node.name} was passed a constant: incompatible with expected resource")
    return graph_def
