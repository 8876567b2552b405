"""One budget for everything that allocates: the machine's memory, the caps derived from it, and the cost tables.

No TensorFlow here: validate-time code, the compiler, the exporter and the importer all price what
they are about to allocate with these functions, from shapes, before the allocation happens.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from .errors import NetspecError, format_bytes

UNKNOWN_DIM = 8  # the size the gate and calibration feed for an unknown (null) non-batch dimension
GIB = 1 << 30
# Weights, their gradients and two Adam slots: what training holds per parameter, in float32.
BYTES_PER_PARAM = 4 * (1 + 3)
MAX_DEFAULT_PARAMS = 2_000_000_000  # never more than before the budget came from the machine
MAX_DEFAULT_ACTIVATION = 4 * GIB
# Orthogonal runs a QR of a (max x min) matrix: ~max*min^2 multiply-adds. 4096^3 measured ~3-6 s
# on 2 busy cores; an 8000 x 8000 kernel (41 s) is far over it.
MAX_INIT_WORK = 4096 ** 3


# -- the machine --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """How much memory the process may use, and where that figure came from (for messages)."""

    bytes: int
    source: str

    def __str__(self) -> str:
        return f"{self.bytes / GIB:.1f} GiB of {self.source}"


def _physical() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        pass
    return _proc_kib("/proc/meminfo", "MemTotal:")


def _address_limit() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def _cgroup_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """The memory limit of this process's control group (a container's ``--memory``), None when unlimited.

    cgroup v2: ``memory.max`` of the group named by the ``0::`` line of /proc/self/cgroup; v1:
    ``memory/<group>/memory.limit_in_bytes``. A container sees its own group at the root of the mount,
    so the root's file is read when the named group's is absent. Without this, netspec in a container
    limited to 8 GiB on a 64 GiB host budgets for 32 GiB, and the kernel kills it instead of netspec
    refusing with a message.
    """
    groups: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for name in parts[1].split(",") or [""]:
                        groups[name] = parts[2]
    except OSError:
        return None
    candidates = []
    if "" in groups:  # v2 (the unified hierarchy)
        candidates += [f"{root}{groups[''].rstrip('/')}/memory.max", f"{root}/memory.max"]
    if "memory" in groups:  # v1
        candidates += [f"{root}/memory{groups['memory'].rstrip('/')}/memory.limit_in_bytes",
                       f"{root}/memory/memory.limit_in_bytes"]
    for path in candidates:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return value if 0 < value < (1 << 60) else None  # v1 writes ~2**63 for "no limit"
    return None


def machine_memory() -> Memory:
    """Physical memory, or the container's limit (cgroup) or address-space limit (``ulimit -v``) when smaller."""
    phys, limit, group = _physical(), _address_limit(), _cgroup_limit()
    if group is not None and (phys is None or group < phys) and (limit is None or group <= limit):
        return Memory(group, "memory of this container (cgroup limit)")
    if limit is not None and (phys is None or limit < phys):
        return Memory(limit, "address space (ulimit -v)")
    if phys is not None:
        return Memory(phys, "memory")
    return Memory(16 * GIB, "memory (assumed; the machine's could not be read)")


def _mapped_now() -> int:
    """Bytes of address space this process has mapped (VmSize), 0 when unknown."""
    return _proc_kib("/proc/self/status", "VmSize:") or 0


def _proc_kib(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file, in bytes; None when absent or unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def headroom() -> Memory:
    """What one run may still allocate now: half of physical memory (or of the container's cgroup limit), or
    half of the address space left under ``ulimit -v`` (TensorFlow maps gigabytes of it on import)."""
    phys, limit, group = _physical() or 16 * GIB, _address_limit(), _cgroup_limit()
    if group is not None and group < phys:
        phys = group  # a container's limit is the memory there is
    if limit is not None and limit - _mapped_now() < phys:
        return Memory(max(0, limit - _mapped_now()) // 2, "address space left under ulimit -v, halved")
    return Memory(phys // 2, "memory, halved")


# -- the budget -----------------------------------------------------------------------------------

_MEMORY = machine_memory()


@dataclass(frozen=True)
class Budget:
    """Caps checked from shapes before anything is allocated.

    The defaults come from the machine: parameters so that weights, gradients and two optimizer
    slots (16 bytes each) fit in half of memory (at most 2e9); node outputs plus hidden
    intermediates of one sample within a quarter of memory (at most 4 GiB).

    Args:
        max_params: total parameters of the model.
        max_activation_bytes: bytes of all node outputs and costed intermediates for ``batch`` samples.
        max_init_work: multiply-adds of one initializer call (Orthogonal's QR).
        batch: the batch size that ``check`` and ``build`` cost (an unknown batch dimension).
        memory: the memory figure the defaults come from (quoted in messages).
    """

    max_params: int = min(MAX_DEFAULT_PARAMS, _MEMORY.bytes // 2 // BYTES_PER_PARAM)
    max_activation_bytes: int = min(MAX_DEFAULT_ACTIVATION, _MEMORY.bytes // 4)
    max_init_work: int = MAX_INIT_WORK
    batch: int = 1
    memory: Memory = field(default=_MEMORY)

    def params_note(self) -> str:
        """The parameter cap and where it comes from, for messages."""
        origin = f"from {self.memory}" if self.max_params == Budget.max_params else "as given"
        return f"{self.max_params:,} ({origin}; raise it with --max-params if this is intended)"

    def activation_note(self) -> str:
        """The activation cap and where it comes from, for messages."""
        origin = f"from {self.memory}" if self.max_activation_bytes == Budget.max_activation_bytes else "as given"
        return (f"{self.max_activation_bytes / 2**20:,.0f} MiB ({origin}; raise it with --max-activation-mb "
                "if this is intended)")


DEFAULT_BUDGET = Budget()


# -- sizes ------------------------------------------------------------------------------------------


def itemsize(dtype: Any) -> int:
    """Bytes per element of a dtype name (or object whose str is one); 4 when it names no width."""
    text = str(getattr(dtype, "name", dtype))
    for width, size in (("128", 16), ("64", 8), ("32", 4), ("16", 2), ("8", 1)):
        if width in text:
            return size
    return 1 if "bool" in text else 4


def feed_dims(shape: Sequence[int | None], batch: int | None = None) -> tuple[int, ...]:
    """The concrete shape fed for ``shape`` (without batch): unknown dims at :data:`UNKNOWN_DIM`.

    With ``batch``, the batch size comes first. The gate, calibration and latency generate their
    inputs with this, and every cost is taken at these sizes.
    """
    dims = tuple(UNKNOWN_DIM if d is None else int(d) for d in shape)
    return dims if batch is None else (int(batch), *dims)


def elements(shape: Sequence[int | None]) -> int:
    """Elements of a (non-batch) shape at the fed sizes."""
    n = 1
    for d in feed_dims(shape):
        n *= d
    return n


def tensor_bytes(tensor: Any) -> int:
    """Bytes of one sample of a (symbolic) tensor: its shape without batch, at the fed sizes."""
    return elements(tuple(tensor.shape)[1:]) * itemsize(tensor.dtype)


# -- hidden intermediates of core layers ------------------------------------------------------------
# Each function takes the layer object and its call arguments as (name, shape-without-batch) pairs
# in call order (keyword names for a mapping, positions otherwise) and returns (what, elements per
# sample) of the largest tensor the layer makes that is not its output.


def _args(call: Sequence[tuple[str, tuple]], *names: str) -> list[tuple | None]:
    by_name = {k: s for k, s in call if not k.isdigit()}
    positional = [s for k, s in call if k.isdigit()]
    out = []
    for i, name in enumerate(names):
        out.append(by_name.get(name, positional[i] if i < len(positional) else None))
    return out


def _time(shape: tuple | None) -> int:
    return UNKNOWN_DIM if not shape or len(shape) < 2 or shape[0] is None else int(shape[0])


def _mha(layer, call) -> tuple[str, int]:
    query, value, key = _args(call, "query", "value", "key")
    tq, tk = _time(query), _time(key if key is not None else value)
    if query is not None and len(query) > 2:  # attention_axes over several axes: T is their product
        tq = elements(query[:-1])
        tk = elements((key if key is not None else value or query)[:-1])
    heads = int(getattr(layer, "num_heads", 1) or 1)
    return f"attention scores ({heads} heads x {tq:,} x {tk:,})", heads * tq * tk


def _gqa(layer, call) -> tuple[str, int]:
    query, value, key = _args(call, "query", "value", "key")
    tq, tk = _time(query), _time(key if key is not None else value)
    heads = int(getattr(layer, "num_query_heads", 1) or 1)
    return f"attention scores ({heads} heads x {tq:,} x {tk:,})", heads * tq * tk


def _dot_attention(layer, call) -> tuple[str, int]:
    query, value = _args(call, "query", "value")
    tq, tv = _time(query), _time(value)
    return f"attention scores ({tq:,} x {tv:,})", tq * tv


def _additive_attention(layer, call) -> tuple[str, int]:
    # Keras adds query[:, :, None, :] and key[:, None, :, :] before the tanh: Tq x Tv x dim.
    query, value = _args(call, "query", "value")
    tq, tv = _time(query), _time(value)
    dim = UNKNOWN_DIM if not query or query[-1] is None else int(query[-1])
    return f"additive attention terms ({tq:,} x {tv:,} x {dim:,})", tq * tv * dim


INTERMEDIATES: dict[str, Callable[[Any, Sequence[tuple[str, tuple]]], tuple[str, int]]] = {
    "MultiHeadAttention": _mha,
    "GroupQueryAttention": _gqa,
    "GroupedQueryAttention": _gqa,
    "Attention": _dot_attention,
    "AdditiveAttention": _additive_attention,
}


def intermediate(layer: Any, call: Sequence[tuple[str, tuple]]) -> tuple[str, int] | None:
    """(what, elements per sample) of ``layer``'s largest hidden intermediate, None when it has none costed."""
    cost = INTERMEDIATES.get(type(layer).__name__)
    return cost(layer, call) if cost is not None else None


# -- initializer work -------------------------------------------------------------------------------


def _orthogonal(shape: Sequence[int]) -> tuple[str, int]:
    rows = 1
    for d in shape[:-1]:
        rows *= int(d)
    cols = int(shape[-1]) if shape else 1
    big, small = max(rows, cols), min(rows, cols)
    return f"a QR decomposition of a {big:,} x {small:,} matrix", big * small * small


INIT_WORK: dict[str, Callable[[Sequence[int]], tuple[str, int]]] = {
    "Orthogonal": _orthogonal,
    "OrthogonalInitializer": _orthogonal,
}


def init_work(initializer: Any, shape: Sequence[int]) -> tuple[str, int] | None:
    """(what, multiply-adds) of initializing a weight of ``shape``; None for the linear initializers
    (their cost is the parameter count, already budgeted)."""
    cost = INIT_WORK.get(type(initializer).__name__)
    return cost(shape) if cost is not None and len(shape) >= 2 else None


# -- export runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCost:
    """One allocation an export makes: what it is, its bytes, and the target field that sizes it."""

    what: str
    bytes: int
    field: str  # "batch_size" or "calibration.samples"


def generated_bytes(shape: Sequence[int | None], dtype: Any) -> int:
    """Bytes of one generated sample: numpy draws in 64 bits, then casts to ``dtype`` (both live at once)."""
    return elements(shape) * (8 + itemsize(dtype))


# Recorded activations the int8 calibration holds at once (netspec.export.quantize.calibrate): it
# streams the samples through onnxruntime's calibrator in chunks of about this many bytes, so its
# memory is bounded by a chunk, not by the sample count.
CALIBRATION_CHUNK_BYTES = 256 * 2**20


def calibration_chunk(samples: int, batch: int, batch_bytes: int, chunk_bytes: int = CALIBRATION_CHUNK_BYTES) -> int:
    """Samples per calibration chunk: whole batches of ``batch_bytes`` recorded bytes within ``chunk_bytes``."""
    per_chunk = max(1, chunk_bytes // max(1, batch_bytes)) * batch
    return min(max(samples, batch), per_chunk)


def export_runs(inputs: int, activations: int, gate_batch: int, samples: int | None,
                calibration_batch: int = 1, histogram: bool = True) -> list[RunCost]:
    """The allocations of one export, from per-sample bytes, before any of them is made.

    Args:
        inputs: bytes of one generated sample of every input (:func:`generated_bytes`).
        activations: bytes of every node output and costed intermediate for one sample.
        gate_batch: the largest batch the gate and latency feed (a fixed batch size, else 8).
        samples: calibration samples for int8 (None otherwise). They are generated at once; the
            calibration runs one batch at a time and records the activations of one chunk
            (:func:`calibration_chunk`), which the histogram calibrators flatten (a copy) tensor by tensor.
        calibration_batch: the batch the calibration runs (the target's batch size, else 1).
        histogram: the calibration keeps histograms (entropy, percentile), which record a chunk's
            activations; min-max keeps two numbers a tensor and batch (EfficientNetB7 at 600 px: 3.9 GiB
            of activations a sample, which min-max does not hold three times over).
    """
    # The gate runs the batch through Keras and through the exported model: activations twice.
    runs = [RunCost(f"a gate batch of {gate_batch:,} samples (inputs, and activations in Keras and the export)",
                    gate_batch * (inputs + 2 * activations), "batch_size")]
    if samples is not None and not histogram:
        runs.append(RunCost(f"{samples:,} calibration samples (their inputs, one batch of {calibration_batch:,} "
                            "running; min-max records ranges only)",
                            samples * inputs + calibration_batch * activations, "calibration.samples"))
    elif samples is not None:
        chunk = calibration_chunk(samples, calibration_batch, calibration_batch * activations)
        runs.append(RunCost(f"{samples:,} calibration samples (their inputs, one batch of {calibration_batch:,} "
                            f"running and the activations of a chunk of {chunk:,} recorded)",
                            samples * inputs + (calibration_batch + 2 * chunk) * activations, "calibration.samples"))
    return runs


def fitting_gate_batch(inputs: int, activations: int, largest: int, room: int) -> int:
    """The largest gate batch, at most ``largest``, whose cost (:func:`export_runs`) fits in ``room`` bytes; 0: none."""
    per = inputs + 2 * activations
    return min(largest, room // per) if per > 0 else largest


def float64_run(inputs: int, activations: int, batch: int, weights: int) -> RunCost:
    """The fp32 gate's float64 reference (:mod:`netspec.export.noise`) on one gate batch.

    It holds the model's weights again at 8 bytes each (``weights``: their float32 bytes) and a
    batch of activations in float64 (twice the float32 ``activations`` per sample), with the
    batch's inputs cast up; the float32 run of the same batch is over by then.
    """
    return RunCost(f"a float64 copy of the model ({format_bytes(2 * weights)} of weights) on a batch of {batch:,}",
                   2 * weights + batch * (inputs + 2 * activations), "batch_size")


# -- allocation failures that still happen --------------------------------------------------------

_OOM_NAMES = ("ResourceExhaustedError", "_ArrayMemoryError", "OutOfMemoryError")
_OOM_TEXT = ("OOM when allocating", "Unable to allocate", "out of memory", "bad_alloc", "Failed to allocate")


def is_allocation_failure(e: BaseException) -> bool:
    """MemoryError, TensorFlow's ResourceExhaustedError, numpy's _ArrayMemoryError, or an error saying OOM."""
    if isinstance(e, MemoryError) or type(e).__name__ in _OOM_NAMES:
        return True
    text = str(e)[:2000]
    return any(t in text for t in _OOM_TEXT)


@contextmanager
def allocation_guard(fail: Callable[[str], NetspecError], stage: str) -> Iterator[None]:
    """Turn an allocation failure inside the block into ``fail(message)`` (a located NetspecError).

    Args:
        fail: makes the error from a message; it carries the location (the node, the target).
        stage: what was running ("building the model", "exporting"), for the message.
    """
    try:
        yield
    except NetspecError:
        raise
    except Exception as e:  # MemoryError and numpy's _ArrayMemoryError are Exceptions too
        if not is_allocation_failure(e):
            raise
        detail = " ".join(str(e).split())[:200] or type(e).__name__
        raise fail(f"ran out of memory while {stage} ({detail}); the budget is {_MEMORY}: "
                   "make the model or the batch smaller") from None
