"""Open an artifact in its own runtime: a spec (with ``--weights``), ``.keras``, ``.onnx``, ``.tflite`` (``.xml``: OpenVINO).

:func:`open_artifact` gives an :class:`Artifact`: its inputs (name, shape, the dtype it is fed), its
outputs, the metadata stamped in it, its deployment contract (stamped, the spec's, or shapes only),
whether the preprocessing is folded into its graph (its contract marks the preprocess
``included``: :attr:`netspec.contract.Preprocess.included`, the one flag export stamps), and ``run`` in batches. The runtimes are the
ones the export gate proves the files on (:mod:`netspec.export.verify`): Keras through
:func:`netspec.load_model` (the safe ``.keras`` gate), onnxruntime, the LiteRT interpreter.
Every file is untrusted: sizes are checked before loading, every failure is a located error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from ..contract import Contract, InputContract, OutputContract, Preprocess
from ..errors import DataError, ArtifactError, NetspecError, format_bytes, native_message, short
from ..source.kerasfile import display as shown
from .inputs import Port

Kind = Literal["spec", "keras", "onnx", "litert", "openvino"]
Runner = Callable[[dict], dict]
MAX_ARTIFACT_BYTES = 2 << 30  # protobuf's own limit for an ONNX file without external data
SPEC_SUFFIXES = (".yaml", ".yml")
KIND_BY_SUFFIX: dict[str, Kind] = {".keras": "keras", ".onnx": "onnx", ".tflite": "litert", ".xml": "openvino"}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
               "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(uint16)": "uint16",
               "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


@dataclass
class Artifact:
    """A model ready to run, whatever file it came from.

    Args:
        path: the file as given.
        kind: what it is.
        runtime: the runtime that runs it, with its version (``onnxruntime 1.31.1``).
        inputs: the inputs in call order (shapes without the batch axis; dtype as fed).
        outputs: the output names in order.
        metadata: the ``netspec.*`` keys stamped in it (empty for a spec or an unstamped file).
        contract: its contract (stamped, the spec's, or shapes only with no preprocessing or labels).
        batch: the fixed batch size the file was exported with (None: any).
        spec: the :class:`netspec.Spec` for a spec artifact (None otherwise).
    """

    path: str
    kind: Kind
    runtime: str
    inputs: list[Port]
    outputs: list[str]
    metadata: dict[str, str]
    contract: Contract
    batch: int | None
    runner: Runner = field(repr=False)
    spec: Any = None

    @property
    def shown(self) -> str:
        return shown(self.path)

    @property
    def folded(self) -> bool:
        """The preprocessing is in the graph (an export with ``include_preprocess``): some input takes raw
        values, as its stamped contract says (its preprocess is ``included``)."""
        return any(i.preprocess is not None and i.preprocess.included for i in self.contract.inputs.values())

    def preprocess(self, name: str) -> Preprocess | None:
        """The contract's preprocessing of input ``name`` (None: it takes the model's domain as it is)."""
        entry = self.contract.inputs.get(name)
        return entry.preprocess if entry is not None else None

    def run(self, x: dict[str, np.ndarray], batch_size: int = 64,
            progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
        """Outputs by name for samples ``x`` (input name -> ``(n, ...)``), fed ``batch_size`` at a time.

        A file with a fixed batch is fed exactly that many (the last batch padded, its padding dropped).

        Raises:
            DataError: the runtime fails on the inputs (its message, bounded).
        """
        n = len(next(iter(x.values())))
        step = self.batch or batch_size
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, step):
            chunk = {k: v[start:start + step] for k, v in x.items()}
            m = len(next(iter(chunk.values())))
            if self.batch and m < self.batch:
                chunk = {k: np.concatenate([v, np.zeros((self.batch - m, *v.shape[1:]), v.dtype)])
                         for k, v in chunk.items()}
            try:
                got = self.runner(chunk)
            except NetspecError:
                raise
            except Exception as e:
                raise DataError(f"{self.shown} ({self.runtime}) failed to run on samples {start}..{start + m - 1}: "
                                f"{native_message(e)}") from None
            for name in self.outputs:
                parts.setdefault(name, []).append(np.asarray(got[name])[:m])
            if progress is not None:
                progress(start + m, n)
        return {k: np.concatenate(v) for k, v in parts.items()}


def kind_of(path: str) -> Kind | None:
    """The artifact kind a file name says (None: not one netspec runs)."""
    if path.lower().endswith(SPEC_SUFFIXES):
        return "spec"
    return next((k for s, k in KIND_BY_SUFFIX.items() if path.lower().endswith(s)), None)


def open_artifact(path: str, *, weights: str | None = None, data_root: str | None = None,
                  trust_plugins: bool = False) -> Artifact:
    """Load ``path`` in its runtime.

    Args:
        path: a spec (``.yaml``), ``.keras``, ``.onnx``, ``.tflite`` or OpenVINO ``.xml`` file.
        weights: trained weights (``.keras`` or ``.weights.h5``) for a spec.
        data_root: ``--data-root`` for a spec's data paths.
        trust_plugins: run a spec's ``plugins:`` (the user named the spec; stored specs never run theirs).

    Raises:
        ArtifactError: the file is missing, over the size cap, of an unknown kind, or its runtime
            cannot load it; ContractError: its stamped contract is malformed.
    """
    kind = kind_of(path)
    if kind is None:
        raise ArtifactError(f"{shown(path)}: netspec runs specs (.yaml), .keras, .onnx, .tflite and OpenVINO .xml files. "
                             f"Received: {shown(Path(path).name)}")
    if weights and kind != "spec":
        raise ArtifactError(f"--weights applies to a spec; {shown(path)} has its own weights")
    if kind != "spec":
        _check_file(path)
    if kind in ("keras", "spec"):
        for model_file in (path if kind == "keras" else None, weights):
            if model_file and model_file.endswith(".keras"):
                from ..build.saving import check_model_file

                check_model_file(model_file)  # archive, config and cost, before TensorFlow starts
    if kind == "spec":
        return _open_spec(path, weights, data_root, trust_plugins)
    return OPENERS[kind](path, weights, data_root)


def _check_file(path: str) -> None:
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise ArtifactError(f"{shown(path)} cannot be read ({e.strerror or e})") from None
    if not Path(path).is_file():
        raise ArtifactError(f"{shown(path)} is not a regular file")
    if size > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"{shown(path)} is {format_bytes(size)}; netspec reads artifacts of at most "
                             f"{format_bytes(MAX_ARTIFACT_BYTES)}")


def read_stamps(path: str) -> dict[str, str]:
    """The ``netspec.*`` metadata stamped in an artifact (:func:`netspec.deploy.stamps.read_metadata`)."""
    from .stamps import read_metadata

    return dict(read_metadata(path))


def contract_of(metadata: dict[str, str], ports: list[Port], outputs: list[str], where: str) -> Contract:
    """The stamped contract, checked against the runtime's own inputs and outputs
    (:meth:`~netspec.contract.Contract.check_ports`), or one that says only the shapes (no preprocessing,
    no labels). Every opener goes through here, so no artifact runs with a contract its graph contradicts."""
    stamped = Contract.from_metadata(metadata, where)
    if stamped is not None:
        stamped.check_ports(ports, outputs, where)
        return stamped
    return Contract(inputs={p.name: InputContract(p.shape, p.dtype if p.dtype != "int64" else "int32")
                            for p in ports},
                    outputs={name: OutputContract() for name in outputs})


# -- Keras: a spec or a .keras file ---------------------------------------------------------------


def _open_spec(path: str, weights: str | None, data_root: str | None, trust_plugins: bool = False) -> Artifact:
    from ..spec import load

    spec = load(path, data_root=data_root, trust_plugins=trust_plugins)
    return _keras_artifact(path, "spec", spec, weights, spec.metadata())


def _open_keras(path: str, weights: str | None, data_root: str | None) -> Artifact:
    return _keras_artifact(path, "keras", None, None, read_stamps(path))


def _keras_artifact(path: str, kind: Kind, spec: Any, weights: str | None, metadata: dict[str, str]) -> Artifact:
    """Keras (the caller started TensorFlow quietly): the spec's model with ``weights``, or the file's."""
    import keras

    from ..export.signature import io_names
    from ..export.pipeline import keras_function, load_model

    model, _ = load_model(spec if spec is not None else path, weights)
    names = io_names(model, spec.graph if spec is not None else None)
    for n, t in zip(names.inputs, model.inputs):
        if str(t.dtype) == "string":  # keras.io's structured data: a StringLookup on a string Input
            raise ArtifactError(f"{shown(path)}: input {n!r} takes strings; netspec predict and evaluate feed "
                                "numbers (arrays, images, CSV rows)",
                                hint="look the strings up before the model (the StringLookup's vocabulary), and "
                                     "feed the indices to a model that starts after it")
    ports = [Port(n, tuple(t.shape[1:]), _dtype_name(t.dtype)) for n, t in zip(names.inputs, model.inputs)]
    outputs = list(names.outputs)
    if spec is not None:
        contract = spec_contract(spec, ports, outputs)
    else:
        contract = contract_of(metadata, ports, outputs, shown(path))
    return Artifact(path, kind, f"Keras {keras.__version__}", ports, outputs, metadata, contract,
                    batch=None, runner=keras_function(model, names), spec=spec)


def spec_contract(spec: Any, ports: list[Port], outputs: list[str]) -> Contract:
    """The contract a spec declares (``preprocess:``, ``labels:``), or shapes only."""
    return contract_of(spec.metadata(), ports, outputs, shown(spec.path or "<spec>"))


def _dtype_name(dtype: Any) -> str:
    return str(np.dtype(str(dtype)))


# -- ONNX: onnxruntime ------------------------------------------------------------------------------


def _open_onnx(path: str, weights: str | None, data_root: str | None) -> Artifact:
    import onnxruntime as ort

    from ..errors import ExportError
    from ..export.verify import ort_runner, ort_session

    from .stamps import load_onnx, onnx_metadata

    proto = load_onnx(path, shown(path))  # parsed once, with stamps' size bounds: metadata and the check below
    _refuse_external_data(proto, path)
    metadata = onnx_metadata(proto, shown(path))
    try:
        session = ort_session(proto.SerializeToString())
    except ExportError as e:  # verify raises it "from None": onnxruntime's own error is still its context
        said = e.__context__ if e.__context__ is not None else e.message.split(": ", 1)[-1]
        raise ArtifactError(f"{shown(path)}: onnxruntime cannot load it: {native_message(said)}") from None
    ports, batches = [], set()
    for i in session.get_inputs():
        if i.type not in _ORT_DTYPES:
            raise ArtifactError(f"{shown(path)}: input {i.name!r} has type {i.type}; netspec feeds numbers")
        dims = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
        batches.add(dims[0] if dims else None)
        ports.append(Port(i.name, tuple(dims[1:]), _ORT_DTYPES[i.type]))
    outputs = [o.name for o in session.get_outputs()]
    batch = batches.pop() if len(batches) == 1 else None
    return Artifact(path, "onnx", f"onnxruntime {ort.__version__}", ports, outputs, metadata,
                    contract_of(metadata, ports, outputs, shown(path)), batch,
                    runner=ort_runner(session))


def _refuse_external_data(proto, path: str) -> None:
    """Refuse an ONNX model whose tensors live in other files. Loaded from bytes, onnxruntime would read a
    relative ``location`` from the current directory, not the model's: a file from a stranger could feed
    any file of the user's working tree into the graph (and out through its outputs)."""
    from onnx.external_data_helper import uses_external_data

    graphs, external = [proto.graph], list[str]()
    while graphs and not external:  # initializers, and tensors in attributes, of the graph and its subgraphs
        g = graphs.pop()
        tensors = list(g.initializer) + [s.values for s in g.sparse_initializer]
        for node in g.node:
            for a in node.attribute:
                tensors += ([a.t] if a.HasField("t") else []) + list(a.tensors)
                graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)
        external = [t.name for t in tensors if uses_external_data(t)]
    if external:
        raise ArtifactError(f"{shown(path)} keeps tensor {short(external[0], 60)} in an external file; netspec runs "
                            "self-contained ONNX files only (netspec export writes them so)")


# -- LiteRT: the ai-edge-litert interpreter ---------------------------------------------------------


def _open_litert(path: str, weights: str | None, data_root: str | None) -> Artifact:
    from ai_edge_litert.interpreter import Interpreter

    from ..export.convert import quiet_native_stderr
    from ..export.verify import litert_version

    try:
        with quiet_native_stderr():  # the interpreter announces its delegates from C++
            interpreter = Interpreter(model_content=Path(path).read_bytes())
            keys = list(interpreter.get_signature_list())
            runner = interpreter.get_signature_runner("serving_default" if "serving_default" in keys else keys[0])
    except Exception as e:
        raise ArtifactError(f"the LiteRT interpreter cannot load {shown(path)}: {native_message(e)}") from None
    ports, batches = [], set()
    for name, d in runner.get_input_details().items():
        sig = [int(v) for v in d.get("shape_signature", d["shape"])]
        dims = [v if v > 0 else None for v in sig]
        batches.add(dims[0] if dims else None)
        ports.append(Port(name, tuple(dims[1:]), np.dtype(d["dtype"]).name))
    outputs = list(runner.get_output_details())
    metadata = read_stamps(path)

    def run(x: dict) -> dict:
        with quiet_native_stderr():  # the first call creates the XNNPACK delegate, which prints
            return {k: np.array(v) for k, v in runner(**x).items()}

    batch = batches.pop() if len(batches) == 1 else None
    return Artifact(path, "litert", f"LiteRT (ai-edge-litert {litert_version()})", ports, outputs, metadata,
                    contract_of(metadata, ports, outputs, shown(path)), batch, runner=run)


# -- OpenVINO ---------------------------------------------------------------------------------------


def _open_openvino(path: str, weights: str | None, data_root: str | None) -> Artifact:
    import openvino as ov

    from ..errors import ExportError
    from ..export import openvino as ir

    try:
        model = ir.open_model(path)  # the .bin, rt_info and native stderr checked by its one reader, ir.read_ir
    except ExportError as e:
        raise ArtifactError(e.message, location=e.location) from None
    ports, batches = [], set()
    for name, port in model.inputs.items():
        dims = list(port["shape"])
        batches.add(dims[0] if dims else None)
        ports.append(Port(name, tuple(dims[1:]), str(port["dtype"])))
    outputs = list(model.outputs)
    metadata = dict(model.metadata)
    batch = batches.pop() if len(batches) == 1 else None
    return Artifact(path, "openvino", f"OpenVINO {ov.__version__}", ports, outputs, metadata,
                    contract_of(metadata, ports, outputs, shown(path)), batch,
                    runner=model.run)


OPENERS: dict[Kind, Callable[[str, str | None, str | None], Artifact]] = {
    "spec": _open_spec, "keras": _open_keras, "onnx": _open_onnx, "litert": _open_litert,
    "openvino": _open_openvino,
}
