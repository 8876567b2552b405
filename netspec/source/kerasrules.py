"""Per-layer-class rules for costing a ``.keras`` config: parameters and output shape from the config.

Used by :mod:`netspec.source.kerascost` before Keras builds anything. Shapes are lists of dimensions
without the batch axis (None: unknown); unknown dimensions count as 1, so a rule gives a lower
bound, never more than Keras would allocate. Products saturate at :data:`CAP` so a hostile list of
kernel sizes cannot make a huge integer. The rules are held to Keras's own parameter counts in
tests/test_saving.py (keras.applications and small models of every costed class).
"""

from __future__ import annotations

from typing import Any, TypeAlias

CAP = 10 ** 30  # products saturate here: a hostile kernel_size list cannot make a huge integer

Shape: TypeAlias = "list[int | None]"  # dimensions without the batch axis; None where unknown

def dim(value: Any) -> int | None:
    """A known dimension (a non-negative int), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def shape_of(value: Any, batch: bool = True) -> Shape | None:
    """A shape from a config list (``batch``: drop the first entry); None unless it is a list of dims."""
    if not isinstance(value, list) or not all(v is None or isinstance(v, int) for v in value):
        return None
    dims = [dim(v) for v in value]
    return dims[1:] if batch else dims


def shapes_of(value: Any) -> list[Shape | None]:
    """Every shape in a ``build_config`` input shape (one shape, a list of them, or a dict of them)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in shapes_of(v)]
    one = shape_of(value)
    if one is not None:
        return [one]
    if isinstance(value, list):
        return [s for v in value for s in shapes_of(v)]
    return []


def merge(a: Shape | None, b: Shape | None) -> Shape | None:
    """The larger reading of one tensor's shape: elementwise max, or the bigger one when ranks differ."""
    if a is None or b is None:
        return a if b is None else b
    if len(a) == len(b):
        return [x if y is None else y if x is None else max(x, y) for x, y in zip(a, b)]
    return a if _prod(a) >= _prod(b) else b


def _prod(dims) -> int:
    n = 1
    for d in dims:
        n = min(n * (d if isinstance(d, int) and not isinstance(d, bool) and d >= 0 else 1), CAP)
    return n


def _ints(value: Any, rank: int, default: int = 1) -> list[int]:
    if isinstance(value, list):
        vals = [v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default for v in value]
        return (vals + [default] * rank)[:rank] if rank else vals
    v = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    return [v] * rank


def _int(cfg: dict, key: str, default: int = 0) -> int:
    v = cfg.get(key, default)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else default


def _last(shape: Shape | None) -> int:
    return shape[-1] if shape and isinstance(shape[-1], int) else 1


def _channels(shape: Shape | None, cfg: dict) -> int:
    if cfg.get("data_format") == "channels_first":
        return shape[0] if shape and isinstance(shape[0], int) else 1
    return _last(shape)


def _rank(cls: str) -> int:
    return 3 if "3D" in cls else 2 if "2D" in cls else 1


# -- per-class rules: (parameters, output shape) from the config and the input shapes ----------

_PRESERVING_PREFIXES = ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout",
                        "GaussianNoise", "GaussianDropout", "AlphaDropout", "BatchNormalization",
                        "LayerNormalization", "GroupNormalization", "UnitNormalization", "Rescaling",
                        "Normalization", "Identity", "Masking", "ActivityRegularization", "PReLU")
_MERGE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Expression"})


def rule(cls: str, cfg: dict, ins: list[Shape | None]) -> tuple[int, Shape | None]:
    """The parameter count and output shape of a layer of class ``cls`` with config ``cfg`` on input shapes ``ins``."""
    x = ins[0] if ins else None
    if cls in ("Dense",):
        units = _int(cfg, "units")
        return units * _last(x) + units * bool(cfg.get("use_bias", True)), (x[:-1] if x else []) + [units]
    if cls == "EinsumDense":
        out = shape_of(cfg.get("output_shape"), batch=False) or [_int(cfg, "output_shape", 1)]
        return _prod(out) * _last(x), out
    if cls == "Embedding":
        units = _int(cfg, "output_dim")
        return _int(cfg, "input_dim") * units, (list(x) if x else [None]) + [units]
    if cls.startswith(("Conv", "SeparableConv", "DepthwiseConv")) and "LSTM" not in cls:
        return _conv(cls, cfg, x)
    if cls in ("SimpleRNN", "GRU", "LSTM") or (cls == "RNN" and isinstance(cfg.get("cell"), dict)):
        return _rnn(cls, cfg, x)
    if cls.startswith("ConvLSTM"):
        k, filters, cin = _prod(_ints(cfg.get("kernel_size"), _rank(cls))), _int(cfg, "filters"), _channels(x, cfg)
        return 4 * filters * (k * (cin + filters) + 1), None
    if cls == "MultiHeadAttention":
        heads, kd = _int(cfg, "num_heads"), _int(cfg, "key_dim")
        vd = _int(cfg, "value_dim") or kd
        q = _last(x)
        k = _last(ins[-1] if len(ins) > 1 else x)
        return heads * (kd * (q + 1) + kd * (k + 1) + vd * (k + 1)) + heads * vd * q + q, x
    if cls.startswith(_PRESERVING_PREFIXES):
        c = _channels(x, cfg) if "Normalization" in cls else 0
        affine = bool(cfg.get("scale", True)) + bool(cfg.get("center", True))  # gamma, beta
        params = (c * (2 + affine) if cls == "BatchNormalization" else c * affine if cls != "Normalization"
                  else 2 * c + 1) if c else (_prod(x) if cls == "PReLU" and x else 0)
        return params, x
    if cls in _MERGE:
        merged: Shape | None = None
        for s in ins:
            merged = merge(merged, s)
        return 0, merged
    if cls == "Concatenate":
        return 0, _concat(ins, cfg)
    return 0, _shape_rule(cls, cfg, x)


def _conv(cls: str, cfg: dict, x: Shape | None) -> tuple[int, Shape | None]:
    rank = _rank(cls)
    ks = _ints(cfg.get("kernel_size"), rank)
    k = _prod(ks)
    cin = _channels(x, cfg)
    filters = _int(cfg, "filters")
    bias = bool(cfg.get("use_bias", True))
    if cls.startswith("SeparableConv"):
        dm = _int(cfg, "depth_multiplier", 1)
        params = k * cin * dm + cin * dm * filters + filters * bias
    elif cls.startswith("DepthwiseConv"):
        dm = _int(cfg, "depth_multiplier", 1)
        params, filters = k * cin * dm + cin * dm * bias, cin * dm
    else:
        groups = _int(cfg, "groups", 1) or 1
        params = k * max(cin // groups, 1) * filters + filters * bias
    if not x or len(x) != rank + 1 or cfg.get("data_format") == "channels_first":
        return params, None
    strides = _ints(cfg.get("strides"), rank)
    dil = _ints(cfg.get("dilation_rate"), rank)
    pad = cfg.get("padding", "valid")
    out: Shape = []
    for d, kk, s, dl in zip(x[:-1], ks, strides, dil):
        if d is None:
            out.append(None)
        elif "Transpose" in cls:
            out.append(d * s if pad == "same" else d * s + max(kk - s, 0))
        elif pad in ("same", "causal"):
            out.append(-(-d // s))
        else:
            out.append(max((d - dl * (kk - 1) - 1) // s + 1, 0))
    return params, out + [filters]


def _rnn(cls: str, cfg: dict, x: Shape | None) -> tuple[int, Shape | None]:
    kind = cls
    if cls == "RNN":
        cell = cfg["cell"]
        kind = str(cell.get("class_name", "")).replace("Cell", "")
        cfg = {**(cell.get("config") if isinstance(cell.get("config"), dict) else {}),
               "return_sequences": cfg.get("return_sequences")}
    units = _int(cfg, "units")
    gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}.get(kind, 1)
    biases = 2 if kind == "GRU" and cfg.get("reset_after", True) else 1
    params = gates * units * (_last(x) + units + biases)
    if cfg.get("return_sequences") and x:
        return params, [x[0], units]
    return params, [units]


def _concat(ins: list[Shape | None], cfg: dict) -> Shape | None:
    known = [s for s in ins if s is not None]  # every input shape must be known (same length as ins)
    if not known or len(known) != len(ins) or len({len(s) for s in known}) != 1 or not known[0]:
        return None
    axis = cfg.get("axis", -1)
    axis = axis if isinstance(axis, int) and not isinstance(axis, bool) else -1
    rank = len(known[0])
    axis = axis - 1 if axis > 0 else axis + rank  # the config's axis counts the batch axis
    if not 0 <= axis < rank:
        return None
    out = list(known[0])
    parts = [s[axis] for s in known]
    dims = [p for p in parts if p is not None]
    out[axis] = sum(dims) if len(dims) == len(parts) else None  # unknown if any part is unknown
    return out


def _shape_rule(cls: str, cfg: dict, x: Shape | None) -> Shape | None:
    """Output shapes of weightless layers that change shapes (None: unknown)."""
    if x is None:
        return None
    if cls == "Flatten":
        return [None if any(d is None for d in x) else _prod(x)]
    if cls == "Reshape":
        target = shape_of(cfg.get("target_shape"), batch=False) if isinstance(cfg.get("target_shape"), list) else None
        raw = cfg.get("target_shape")
        if isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            known = _prod([v for v in raw if v != -1])
            total = _prod(x) if all(d is not None for d in x) else None
            return [(total // known if total is not None and known else None) if v == -1 else v for v in raw]
        return target
    if cls.startswith("Global") and "Pooling" in cls:
        c = _channels(x, cfg)
        ones: Shape = [1] * (len(x) - 1)
        return ones + [c] if cfg.get("keepdims") else [c]
    if "Pooling" in cls and len(x) == _rank(cls) + 1 and cfg.get("data_format") != "channels_first":
        rank = _rank(cls)
        pool = _ints(cfg.get("pool_size"), rank, 2)
        strides = _ints(cfg.get("strides"), rank, 0) if cfg.get("strides") is not None else pool
        strides = [s or p for s, p in zip(strides, pool)]
        same = cfg.get("padding") == "same"
        return [None if d is None else (-(-d // s) if same else max((d - p) // s + 1, 0))
                for d, p, s in zip(x[:-1], pool, strides)] + [x[-1]]
    if cls == "RepeatVector":
        return [_int(cfg, "n", 1), *x]
    if cls == "Permute" and isinstance(cfg.get("dims"), list):
        dims = cfg["dims"]
        if sorted(d for d in dims if isinstance(d, int)) == list(range(1, len(x) + 1)):
            return [x[d - 1] for d in dims]
        return None
    if cls.startswith("UpSampling") and len(x) == _rank(cls) + 1:
        size = _ints(cfg.get("size"), _rank(cls), 2)
        return [None if d is None else d * s for d, s in zip(x[:-1], size)] + [x[-1]]
    if cls in ("Resizing", "CenterCrop") and len(x) == 3:
        return [_int(cfg, "height", 1), _int(cfg, "width", 1), x[-1]]
    return x  # other weightless layers keep or shrink their input: a reading that never under-costs
