"""Sizes for unknown input dimensions: where the gate, calibration and the export's cost get them, proven by building.

A dimension that is null in the model (``(None, None, 3)`` images, ``(None,)`` token ids) must be
fed at some size. netspec takes the sizes a user would feed, in this order:

1. ``input_shape:`` in the export target, or ``--input-shape``: these also fix the dimensions in
   the exported file (the spec's data, when it has any, must have that shape);
2. the spec's data: the shape of its samples;
3. ``example_shape:`` on the input in ``inputs:``.

Every dimension left unknown in the exported file is proven at two sizes: the one found and a
second plausible one (224 -> 160; a size on the same grid: a multiple of the largest power of
two, up to 32, that divides the first). Every size is checked by building the model symbolically
at it first (Keras refuses what the network cannot take: a strided stack that shrinks to
nothing), so no size the network cannot take is ever fed. When nothing gives a size, or the
network takes no second size, the export is refused, naming the options.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ExportError

if TYPE_CHECKING:
    from .quantize import InputInfo
    from .targets import Target

ONLY_INPUT = "*"  # the key of an input_shape given without a name (the model has one input)
OPTIONS = "--input-shape (or input_shape: in an export target), or example_shape: on the input in inputs:"


@dataclass(frozen=True)
class Sized:
    """The shapes (without batch) one input is fed at, and where the first came from.

    Args:
        name: the input's name.
        shapes: the proven shapes; ``shapes[0]`` feeds calibration, latency and the first gate batches.
        source: where ``shapes[0]`` came from; None when the input has no unknown dimension.
        fixed: the exported file has these dimensions fixed (``input_shape`` / ``--input-shape``).
    """

    name: str
    shapes: tuple[tuple[int, ...], ...]
    source: str | None = None
    fixed: bool = False

    @property
    def dynamic(self) -> bool:
        """Whether the exported file keeps unknown dimensions for this input (proven at several sizes)."""
        return self.source is not None and not self.fixed


def unknown_axes(shape: tuple) -> list[int]:
    """Positions of the null dimensions of a shape without batch."""
    return [i for i, d in enumerate(shape) if d is None]


def parse_input_shapes(texts: list[str]) -> dict[str, tuple[int, ...]]:
    """``--input-shape`` values: ``224,224,3`` (the only input) or ``image=224,224,3`` (one per input).

    Raises:
        ValueError: a value is not a comma-separated list of positive integers (the message says so).
    """
    out: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, _, dims = text.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if not shape or any(d < 1 for d in shape):
            raise ValueError("--input-shape expects positive integers separated by commas, optionally after "
                             f"an input name: 224,224,3 or image=224,224,3. Received: {text!r}")
        out[name.strip() or ONLY_INPUT] = shape
    return out


def shape_problem(declared: tuple, given: tuple) -> str | None:
    """Why ``given`` cannot be a concrete shape of an input declared ``declared`` (both without batch), or None."""
    if len(given) != len(declared):
        return f"has {len(given)} dimensions, the input {len(declared)}"
    for i, (d, g) in enumerate(zip(declared, given)):
        if d is not None and d != g:
            return f"has {g} at dimension {i + 1}, where the input has {d}"
    return None


def shape_text(shape: tuple) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def second_sizes(size: int) -> list[int]:
    """Plausible other sizes for a dimension found at ``size``, preferred first: smaller, then larger.

    On the grid the first size is on (the largest power of two up to 32 dividing it), about 5/7
    and 9/7 of it (224 -> 160 and 288; 32 -> 64; 50 -> 36 and 64).
    """
    grid = gcd(size, 32)
    out = []
    for factor in (5 / 7, 9 / 7):
        v = round(size * factor / grid) * grid
        if v >= 1 and v != size and v not in out:
            out.append(v)
    if size + grid not in out:
        out.append(size + grid)
    return out


def fixed_shapes(target: Target, inputs: list[InputInfo]) -> dict[str, tuple[int, ...]]:
    """The target's ``input_shape`` by input name (checked against the model's inputs), {} when it has none.

    Raises:
        ExportError: a name the model has no input for, a bare shape for several inputs, or a shape
            that does not fit the input.
    """
    given = dict(target.input_shape or {})
    if not given:
        return {}
    names = [i.name for i in inputs]
    if ONLY_INPUT in given:
        if len(names) != 1:
            raise ExportError(f"the model has {len(names)} inputs ({', '.join(names)}): give input_shape per input "
                              f"(--input-shape {names[0]}=...)")
        given[names[0]] = given.pop(ONLY_INPUT)
    out = {}
    for info in inputs:
        if info.name in given:
            problem = shape_problem(info.shape, given[info.name])
            if problem:
                raise ExportError(f"input_shape {shape_text(given[info.name])} of input {info.name!r} {problem} "
                                  f"{shape_text(info.shape)}")
            out[info.name] = tuple(given.pop(info.name))
    if given:
        raise ExportError(f"input_shape names {', '.join(map(repr, given))}, which the model has no input for; "
                          f"inputs: {', '.join(names)}")
    return out


# -- the plan ----------------------------------------------------------------------------------------


def plan(model, inputs: list[InputInfo], target: Target, spec, real: Mapping[str, Any] | None,
         target_error: Callable[[str | None, str], ExportError]) -> list[Sized]:
    """The shapes every input is fed and proven at (see the module docstring).

    Args:
        model: the Keras model (checked symbolically at every size).
        inputs: its inputs (:func:`netspec.export.quantize.describe_inputs`).
        target: the target (its ``input_shape``).
        spec: the spec (its inputs' ``example_shape``), or None for a ``.keras`` file.
        real: samples of the spec's data by input name, or None.
        target_error: ``(field, message) -> ExportError`` located at the target's field.

    Raises:
        ExportError: located at the input (or the target's ``input_shape``) when no size can be
            found, the network cannot take it, or it takes no second size.
    """
    try:
        fixed = fixed_shapes(target, inputs)
    except ExportError as e:
        raise target_error("input_shape", e.message) from None
    decls = {d.name: d for d in spec.graph.inputs} if spec is not None else {}
    first: dict[str, tuple[int, ...]] = {}
    sources: dict[str, str] = {}
    for info in inputs:
        data = real.get(info.name) if real is not None else None
        data_shape = tuple(int(d) for d in data.shape[1:]) if data is not None else None
        example = getattr(decls.get(info.name), "example_shape", None)
        if info.name in fixed:
            first[info.name], sources[info.name] = fixed[info.name], _fixed_source(target, spec)
            if data_shape is not None and data_shape != fixed[info.name]:
                raise target_error("input_shape", f"input_shape fixes input {info.name!r} at "
                                   f"{shape_text(fixed[info.name])}, but the spec's data has samples of "
                                   f"{shape_text(data_shape)}")
        elif not unknown_axes(info.shape):
            first[info.name] = tuple(info.shape)
        elif data_shape is not None and shape_problem(info.shape, data_shape) is None:
            first[info.name], sources[info.name] = data_shape, "the spec's data"
        elif example is not None:
            first[info.name], sources[info.name] = tuple(example), "example_shape:"
        else:
            raise _input_error(spec, info, f"input {info.name!r} has unknown dimensions {shape_text(info.shape)} and "
                               f"nothing gives a size to feed and prove them at: give one with {OPTIONS}"
                               + ("; --input-shape also fixes them in the exported file" if spec is None else ""))
    problem = build_problem(model, first)
    if problem is not None:
        where = next((n for n in first if n in sources), None)
        text = (f"the network cannot take {_describe(first, sources)}: {problem}; give a size it takes with "
                f"{OPTIONS}")
        if where is not None and where in fixed:
            raise target_error("input_shape", text)
        raise _input_error(spec, next(i for i in inputs if i.name == where) if where else inputs[0], text,
                           "example_shape" if where and sources[where] == "example_shape:" else None)
    out = {n: [s] for n, s in first.items()}
    dynamic = [i for i in inputs if unknown_axes(i.shape) and i.name not in fixed]
    if dynamic:
        second, tried = _second(model, first, dynamic)
        if second is None:
            info = dynamic[0]
            raise _input_error(spec, info, f"input {info.name!r} has unknown dimensions, but the network takes "
                               f"{shape_text(first[info.name])} and none of {', '.join(tried)}: its dimensions are "
                               f"not really dynamic; fix them with {OPTIONS.split(', or')[0]}")
        for info in dynamic:
            out[info.name].append(second[info.name])
    return [Sized(i.name, tuple(out[i.name]), sources.get(i.name), i.name in fixed) for i in inputs]


def _second(model, first: dict[str, tuple], dynamic: list[InputInfo]) -> tuple[dict | None, list[str]]:
    """A second shape set the network takes (every unknown dimension at another size), and what was tried."""
    tried = []
    for k in range(3):
        candidate = dict(first)
        for info in dynamic:
            shape = list(first[info.name])
            for axis in unknown_axes(info.shape):
                options = second_sizes(shape[axis])
                shape[axis] = options[min(k, len(options) - 1)]
            candidate[info.name] = tuple(shape)
        text = " ".join(shape_text(candidate[i.name]) for i in dynamic)
        if text in tried:
            continue
        tried.append(text)
        if build_problem(model, candidate) is None:
            return candidate, tried
    return None, tried


def _fixed_source(target: Target, spec) -> str:
    written = ((spec.section("export") or {}).get(target.name) or {}).get("input_shape") \
        if spec is not None and hasattr(spec, "section") and not target.builtin else None
    return f"input_shape: of target {target.name!r}" if written is not None else "--input-shape"


def _describe(shapes: dict[str, tuple], sources: dict[str, str]) -> str:
    return ", ".join(f"input {n!r} at {shape_text(s)} (from {sources[n]})" for n, s in shapes.items() if n in sources)


def _input_error(spec, info: InputInfo, message: str, key: str | None = None) -> ExportError:
    """An error located at the spec's input (its ``example_shape``/``shape``), unlocated for a ``.keras`` file."""
    decl = next((d for d in spec.graph.inputs if d.name == info.name), None) if spec is not None else None
    if decl is None:
        return ExportError(message)
    src = spec.document.source
    raw = (spec.data.get("inputs") or {}).get(info.name)
    path = decl.path
    if isinstance(raw, dict):
        path += (key,) if key is not None and key in raw else ("shape",)
    return ExportError(message, path=path, location=src.value(path))


# -- building at a size ---------------------------------------------------------------------------


def _symbolic_inputs(model, shapes: Mapping[str, tuple], make: Callable[[Any, tuple], Any]):
    import keras

    return keras.tree.map_structure(lambda t: make(t, shapes.get(t.name, tuple(t.shape)[1:])), model.input)


def build_problem(model, shapes: Mapping[str, tuple]) -> str | None:
    """Why the model cannot be built with its inputs at ``shapes`` (Keras's shape inference), or None."""
    import keras

    from .verify import exception_text

    try:
        model.compute_output_spec(_symbolic_inputs(model, shapes, lambda t, s: keras.KerasTensor(
            (None, *s), dtype=t.dtype, sparse=getattr(t, "sparse", False))))
    except Exception as e:
        return exception_text(e)
    return None


def traced_at(model, shapes: Mapping[str, tuple]):
    """The model's graph rebuilt with its inputs at ``shapes`` (weights never allocated), or None if it cannot be.

    For costing layer outputs at the sizes fed: the clone's symbolic tensors have concrete shapes.
    """
    import keras

    from ..kerasapi import symbolic_build

    try:
        with symbolic_build():
            new = _symbolic_inputs(model, shapes, lambda t, s: keras.Input(s, dtype=t.dtype, name=t.name))
            return keras.models.clone_model(model, input_tensors=new)
    except Exception:  # a layer that cannot be cloned from its config: cost by scaling instead
        return None


def feeds(inputs: list[InputInfo], sized: list[Sized], k: int) -> list[InputInfo]:
    """``inputs`` with concrete shapes: the ``k``-th proven shape of each (its last when it has fewer)."""
    from dataclasses import replace

    by_name = {s.name: s for s in sized}
    return [replace(i, shape=by_name[i.name].shapes[min(k, len(by_name[i.name].shapes) - 1)]) for i in inputs]


def size_sets(sized: list[Sized]) -> int:
    """How many shape sets are proven (2 when some dimension is unknown in the exported file, else 1)."""
    return max((len(s.shapes) for s in sized), default=1)


def describe(sized: list[Sized]) -> str | None:
    """The report's line on proven sizes, None when no input had unknown dimensions."""
    parts = []
    for s in sized:
        if s.fixed:
            parts.append(f"input {s.name} fixed at {shape_text(s.shapes[0])} by {s.source}")
        elif s.source is not None:
            parts.append(f"unknown dimensions of {s.name} proven at " + " and ".join(shape_text(x) for x in s.shapes)
                         + f" (from {s.source})")
    return "; ".join(parts) or None
