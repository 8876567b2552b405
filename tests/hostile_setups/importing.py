"""Hostile ``.keras`` files for ``netspec import`` / ``export`` / ``--weights`` (cases gen_*, msg_*, kerasfile_*).

Each function is a ``# setup:`` target: ``fn(tmp, spec, *args)`` writes its files into ``tmp`` and
returns the path the command gets. The archives are written by hand (``zipfile`` + ``json``): a
crafted ``config.json`` (Keras's own format, as ``model.save`` writes it), an empty HDF5 weights
member where Keras must load the model, and whatever the attack needs. No TensorFlow here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
METADATA = json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"})
SENTINEL = "__import__('os').system('touch /tmp/netspec_sentinel_' + str(__import__('os').getpid()))"
EVIL_PLUGIN = ("import os\nopen(f'/tmp/netspec_sentinel_{os.getpid()}', 'w').write('plugin ran')\n")


def _empty_h5() -> bytes:
    """An HDF5 file with no datasets: the weights of a model without parameters."""
    try:
        import h5py
    except ImportError:  # the case then fails on Keras's side, visibly
        return b"\x89HDF\r\n\x1a\n"
    buf = io.BytesIO()
    with h5py.File(buf, "w"):
        pass
    return buf.getvalue()


def _archive(path: Path, config, *, weights: bytes | None = None, extra: list[tuple[str, bytes]] = (),
             config_bytes: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", METADATA)
        zf.writestr("config.json", config_bytes if config_bytes is not None else json.dumps(config))
        zf.writestr("model.weights.h5", _empty_h5() if weights is None else weights)
        for name, data in extra:
            zf.writestr(name, data)
    return path


def _input(name: str, shape: list) -> dict:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "sparse": False, "ragged": False,
                       "name": name, "optional": False},
            "registered_name": None, "name": name, "inbound_nodes": []}


def _tensor(source: str, shape: list) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *shape], "dtype": "float32", "keras_history": [source, 0, 0]}}


def _layer(cls: str, name: str, config: dict, source: str, in_shape: list, *, build: list | None = "same",
           recorded: list | None = None) -> dict:
    """A called layer; ``build``: its build_config input shape ("same": ``in_shape``; None: none)."""
    layer = {"module": "keras.layers", "class_name": cls,
             "config": {"name": name, "trainable": True, "dtype": DTYPE, **config},
             "registered_name": None, "name": name,
             "inbound_nodes": [{"args": [_tensor(source, recorded if recorded is not None else in_shape)],
                                "kwargs": {}}]}
    if build is not None:
        layer["build_config"] = {"input_shape": [None, *(in_shape if build == "same" else build)]}
    return layer


def _functional(layers: list, inputs: str, output: str, name: str = "tiny") -> dict:
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": name, "trainable": True, "layers": layers,
                       "input_layers": [inputs, 0, 0], "output_layers": [output, 0, 0]},
            "registered_name": "Functional", "build_config": {"input_shape": None}, "compile_config": {}}


def _relu_model(model_name: str = "tiny", input_name: str = "x", layer_name: str = "r") -> dict:
    return _functional([_input(input_name, [4]),
                        _layer("ReLU", layer_name, {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
                               input_name, [4], build=None)],
                       input_name, layer_name, model_name)


def _expression(name: str, source: str, shape: list, **config) -> dict:
    cfg = {"name": name, "trainable": True, "dtype": DTYPE, "expression": "x * 2.0", "variables": ["x"],
           "constants": {}, "output_shape": None}
    cfg.update(config)
    return {"module": "netspec.build.expression", "class_name": "Expression", "config": cfg,
            "registered_name": "netspec>Expression", "build_config": {"input_shape": {"x": [None, *shape]}},
            "name": name, "inbound_nodes": [{"args": [{"x": _tensor(source, shape)}], "kwargs": {}}]}


# -- class 1: generated text is data --------------------------------------------------------------


def hostile_file_name(tmp: Path, spec: Path, which: str = "plugins") -> Path:
    """A tiny legal model whose FILE NAME is YAML (the issue's critical case), with evil.py beside it."""
    (tmp / "evil.py").write_text(EVIL_PLUGIN)
    names = {
        "plugins": "m\nplugins: [evil.py]\n#.keras",
        "specials": "a: b &x *y !tag #c ---  '\"{[.keras",
        "breaks": "m\u2028plugins: [evil.py]\x85\ufeff\r#.keras",
        "document": "m\n---\nnetspec: 1\nplugins: [evil.py]\n...\n.keras",
    }
    return _archive(tmp / names[which], _relu_model())


def hostile_model_names(tmp: Path, spec: Path, which: str = "model") -> Path:
    """A tiny legal model whose model, input or layer name is YAML, control characters or unicode tricks."""
    (tmp / "evil.py").write_text(EVIL_PLUGIN)
    text = {
        "newline": "m\nplugins: [evil.py]\n#",
        "specials": "&a *b !c #d: e --- ",
        "trailing": "relu\n",
        "unicode": "r\u202eelu\u0301\uff52\u2028",
        "empty": "",
    }
    where = {"model": {"model_name": text["newline"]}, "input": {"input_name": text["specials"]},
             "layer": {"layer_name": text["trailing"]}, "unicode": {"layer_name": text["unicode"]},
             "empty": {"model_name": text["empty"], "layer_name": "0"}}[which]
    return _archive(tmp / "named.keras", _relu_model(**where))


# -- class 9: messages tell the truth ----------------------------------------------------------------


def tampered_expression(tmp: Path, spec: Path, how: str = "code") -> Path:
    """An expression layer whose stored text (or another field) was edited after saving."""
    edits = {
        "code": {"expression": SENTINEL},
        "dtype": {"dtype": {"class_name": "Lambda", "config": {"name": "float32"}}},
        "name": {"expression": "x * scale2"},
        "variables": {"variables": ["x; import os"]},
        "function": {"function": "4wEAAAAAAAAA"},
        "clean": {},
    }[how]
    layers = [_input("x", [4]), _expression("scaled", "x", [4], **edits)]
    return _archive(tmp / "tampered.keras", _functional(layers, "x", "scaled"))


def lambda_layer(tmp: Path, spec: Path, where: str = "layer") -> Path:
    """A real Lambda layer (stored bytecode), or a Lambda object nested inside a Dense's config."""
    lam = {"module": "keras.layers", "class_name": "Lambda",
           "config": {"name": "plus", "trainable": True, "dtype": DTYPE,
                      "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None,
                                                                          "closure": None}},
                      "arguments": {}},
           "registered_name": None, "name": "plus",
           "inbound_nodes": [{"args": [_tensor("x", [4])], "kwargs": {}}]}
    if where == "layer":
        layers = [_input("x", [4]), lam]
        out = "plus"
    else:
        dense = _layer("Dense", "d", {"units": 2, "use_bias": True,
                                      "kernel_initializer": {"module": "keras.layers", "class_name": "Lambda",
                                                             "config": {"name": "init"}}}, "x", [4])
        layers = [_input("x", [4]), dense]
        out = "d"
    return _archive(tmp / "lambda.keras", _functional(layers, "x", out))


def foreign_class(tmp: Path, spec: Path, module: str = "os") -> Path:
    """A layer whose module is not Keras and whose class nobody registered."""
    layer = _layer("Dense", "d", {"units": 2}, "x", [4])
    layer["module"], layer["class_name"], layer["registered_name"] = module, "system", f"{module}>system"
    return _archive(tmp / "foreign.keras", _functional([_input("x", [4]), layer], "x", "d"))


# -- class 6: .keras files are costed before Keras builds them --------------------------------------


def huge_layer(tmp: Path, spec: Path, kind: str = "dense", build: str = "yes") -> Path:
    """A ~1.5 KB config whose one layer asks for billions of parameters (build=no: no build_config and a
    recorded input shape that lies; the size only shows by propagating the input's shape)."""
    n = 60000
    recorded = [1] if build == "no" else None
    b = "same" if build == "yes" else None
    if kind == "dense":
        layers = [_input("x", [n]), _layer("Dense", "big", {"units": n, "use_bias": True}, "x", [n], build=b,
                                            recorded=recorded)]
    elif kind == "conv":
        layers = [_input("x", [8, 8, 50000]),
                  _layer("Conv2D", "big", {"filters": 50000, "kernel_size": [3, 3], "strides": [1, 1],
                                           "padding": "same", "data_format": "channels_last", "groups": 1,
                                           "use_bias": True}, "x", [8, 8, 50000], build=b,
                         recorded=[8, 8, 1] if build == "no" else None)]
    elif kind == "embedding":
        layers = [_input("x", [10]), _layer("Embedding", "big", {"input_dim": 10 ** 9, "output_dim": 64}, "x", [10],
                                             build=b)]
    elif kind == "lstm":
        layers = [_input("x", [5, n]), _layer("LSTM", "big", {"units": n, "return_sequences": False}, "x", [5, n],
                                               build=b, recorded=[5, 1] if build == "no" else None)]
    elif kind == "bidirectional":
        inner = {"module": "keras.layers", "class_name": "GRU",
                 "config": {"name": "gru", "units": 30000, "dtype": DTYPE}, "registered_name": None}
        layers = [_input("x", [5, 30000]), _layer("Bidirectional", "big", {"layer": inner, "merge_mode": "concat"},
                                                   "x", [5, 30000], build=b)]
    elif kind == "flatten":  # the size appears only after Flatten: 1000*1000 inputs into 5000 units
        layers = [_input("x", [1000, 1000]),
                  _layer("Flatten", "flat", {"data_format": "channels_last"}, "x", [1000, 1000], build=None),
                  _layer("Dense", "big", {"units": 5000}, "flat", [1], build=None)]
    elif kind == "sum":  # no layer alone is over the budget (even at 4 GiB); together they are
        layers = [_input("x", [11000])]
        for i in range(8):
            layers.append(_layer("Dense", f"d{i}", {"units": 11000}, layers[-1]["name"], [11000]))
    elif kind == "nested":
        inner = _functional([_input("ix", [n]), _layer("Dense", "big", {"units": n}, "ix", [n], build=None)],
                            "ix", "big", "inner")
        inner.update(name="inner", inbound_nodes=[{"args": [_tensor("x", [n])], "kwargs": {}}])
        layers = [_input("x", [n]), inner]
    elif kind == "sequential":
        seq = {"module": "keras", "class_name": "Sequential",
               "config": {"name": "seq", "trainable": True, "dtype": DTYPE,
                          "layers": [{"module": "keras.layers", "class_name": "InputLayer",
                                      "config": {"batch_shape": [None, n], "dtype": "float32", "name": "x"},
                                      "registered_name": None},
                                     {"module": "keras.layers", "class_name": "Dense",
                                      "config": {"name": "big", "units": n, "dtype": DTYPE},
                                      "registered_name": None}]},
               "registered_name": None}
        return _archive(tmp / "huge.keras", seq)
    else:
        raise ValueError(kind)
    return _archive(tmp / "huge.keras", _functional(layers, "x", layers[-1]["name"]))


def huge_weights(tmp: Path, spec: Path, kind: str = "dense", build: str = "no") -> None:
    """The huge file as ``--weights`` for the case's own spec (the command keeps the spec argument)."""
    huge_layer(tmp, spec, kind, build)


def fake_weights(tmp: Path, spec: Path) -> Path:
    """64M parameters (under the budget even at 4 GiB of address space) with an 800-byte weights
    member: not a saved model."""
    layers = [_input("x", [8000]), _layer("Dense", "big", {"units": 8000}, "x", [8000])]
    return _archive(tmp / "fake.keras", _functional(layers, "x", "big"))


def bomb(tmp: Path, spec: Path, member: str = "model.weights.h5", mib: str = "300") -> Path:
    """A member that deflates from ~300 KB to hundreds of MiB (a zip bomb)."""
    path = tmp / "bomb.keras"
    big = b"\0" * (int(mib) << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("metadata.json", METADATA)
        if member != "config.json":
            zf.writestr("config.json", json.dumps(_relu_model()))
        zf.writestr(member, big)
        if member != "model.weights.h5":
            zf.writestr("model.weights.h5", _empty_h5())
    return path


def declared_size(tmp: Path, spec: Path, member: str = "config.json", size: str = "209715200") -> Path:
    """A member whose headers declare ``size`` bytes (200 MB by default) while it stores a few."""
    path = _archive(tmp / "declared.keras", _relu_model())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(member)
    # Central directory: uncompressed size at offset 24; local header: at offset 22.
    cd = data.find(b"PK\x01\x02")
    while cd != -1:
        name_len = int.from_bytes(data[cd + 28:cd + 30], "little")
        if data[cd + 46:cd + 46 + name_len].decode() == member:
            data[cd + 24:cd + 28] = int(size).to_bytes(4, "little")
        cd = data.find(b"PK\x01\x02", cd + 4)
    data[info.header_offset + 22:info.header_offset + 26] = int(size).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def bad_members(tmp: Path, spec: Path, how: str = "traversal") -> Path:
    """Members a zip should never have: path traversal, absolute paths, duplicates, thousands of them."""
    config = _relu_model()
    extra = {
        "traversal": [("assets/../../escaped.txt", b"x")],
        "absolute": [("/tmp/netspec_escaped.txt", b"x")],
        "backslash": [("assets\\..\\..\\escaped.txt", b"x")],
        "many": [(f"assets/{i}.txt", b"") for i in range(5000)],
        "duplicate": [("config.json", json.dumps(_relu_model("other")).encode())],
        "control": [("assets/a\nb.txt", b"x")],
    }[how]
    if how == "duplicate":
        import warnings

        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
    return _archive(tmp / "members.keras", config, extra=extra)


def bad_config(tmp: Path, spec: Path, how: str = "nested") -> Path:
    """config.json that is not a model description: deep nesting, not JSON, not an object, huge ints."""
    data = {
        "nested": b"[" * 100000 + b"]" * 100000,
        "garbage": b"\xff\xfe not json",
        "array": b"[1, 2, 3]",
        "bigint": b'{"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {"units": '
                  + b"9" * 5000 + b'}}]}}',
    }[how]
    return _archive(tmp / "config.keras", None, config_bytes=data)


def not_a_zip(tmp: Path, spec: Path) -> Path:
    path = tmp / "garbage.keras"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    return path


def many_layers(tmp: Path, spec: Path, count: str = "60000", shape: str = "chain") -> Path:
    """``count`` ReLU layers, chained (Keras would spend ~50 s building 60,000 before failing on
    recursion) or all on the input (``wide``: nothing to recurse on, only build time)."""
    layers = [_input("x", [4])]
    for i in range(int(count)):
        source = "x" if shape == "wide" else layers[-1]["name"]
        layers.append(_layer("ReLU", f"r{i}", {}, source, [4], build=None))
    return _archive(tmp / "long.keras", _functional(layers, "x", layers[-1]["name"]))
