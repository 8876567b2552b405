"""Artifacts and inputs from strangers against predict, evaluate and inspect: each defect a red team found,
refused with its message and location (or exit code), through the one mechanism every entry point uses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy_artifacts import ROOT, SPEC, artifacts
from netspec.cli import main
from netspec.contract import METADATA_KEY, Contract
from netspec.errors import ContractError, native_message

CONTRACT_AT = "$.metadata['netspec.contract']: "


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def digits_contract() -> dict:
    return json.loads(Contract.from_metadata(_onnx_props(artifacts().onnx)).to_json())  # type: ignore[union-attr]


def _onnx_props(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def restamped(dst: Path, contract: dict | None = None, raw: str | None = None, **props: str) -> Path:
    """The digits onnx-cpu export with its contract replaced (``raw``: as text) and other entries set."""
    import onnx

    proto = onnx.load(str(artifacts().onnx))
    values = {METADATA_KEY: raw if raw is not None else json.dumps(contract), **props}
    for p in proto.metadata_props:
        if p.key in values:
            p.value = values.pop(p.key)
    for key, value in values.items():
        e = proto.metadata_props.add()
        e.key, e.value = key, value
    onnx.save(proto, str(dst))
    return dst


def _edit(change) -> dict:
    c = digits_contract()
    change(c)
    return c


def _pre(c: dict) -> dict:
    return c["inputs"]["image"]["preprocess"]


# -- 1. control characters in labels and names; the terminal-safe reporter -----------------------------


@pytest.mark.parametrize("label", ["\x1b[2J\x1b[31mPWN", "two\nlines", "bell\x07", "c1\x85", "rtl\u202eexe.png"])
def test_contract_refuses_a_label_with_a_control_character(label, tmp_path, capsys):
    path = restamped(tmp_path / "l.onnx", _edit(lambda c: c["outputs"]["probs"]["labels"].__setitem__(3, label)))
    want = (f"{CONTRACT_AT}the contract in {path}: outputs.probs.labels[3] (label 4) holds a control character; "
            f"labels are printable text. Received: {label!r}")
    for command in (("predict", str(path), str(ROOT / "data" / "digits-samples" / "0.png")), ("inspect", str(path))):
        rc, out, err = cli(capsys, *command)
        assert (rc, out) == (1, "") and err.splitlines()[0] == want.replace("\x1b", "\\x1b").replace("\x85", "\\x85") \
            .replace("\u202e", "\\u202e").replace("\x07", "\\x07")
        assert "\x1b" not in err and "\x85" not in err


def test_contract_refuses_an_input_name_with_a_control_character(tmp_path, capsys):
    path = restamped(tmp_path / "n.onnx", _edit(lambda c: c["inputs"].__setitem__("im\x1b[0mage", c["inputs"].pop("image"))))
    rc, _, err = cli(capsys, "inspect", str(path))
    assert rc == 1 and err == (f"{CONTRACT_AT}the contract in {path}: inputs must be names of printable characters "
                               "(at most 200). Received: 'im\\x1b[0mage'\n")


def test_spec_labels_with_a_control_character_are_located(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("netspec: 1\nname: s\ninputs: {x: [4]}\nnodes:\n  - {name: p, type: Dense, units: 2}\n"
                    "outputs:\n  - {from: p, labels: [cat, \"\\e[31mdog\"]}\n")
    rc, _, err = cli(capsys, "validate", str(spec))
    assert rc == 1 and err.startswith(f"{spec}:7:29: $.outputs[0].labels[1]: label 2 must be a non-empty printable")
    (tmp_path / "labels.txt").write_text("cat\ndo\x1bg\n")
    spec.write_text(spec.read_text().replace('[cat, "\\e[31mdog"]', "labels.txt"))
    rc, _, err = cli(capsys, "validate", str(spec))
    assert rc == 1 and err.startswith(f"{spec}:7:23: $.outputs[0].labels: label 2 (line 2 of 'labels.txt') must be")


def test_the_reporter_escapes_what_it_does_not_own(capsys):
    from netspec.cli.output import Reporter, terminal_safe

    assert terminal_safe("a\tb\nc") == "a\tb\nc"  # the command's own layout stays
    assert terminal_safe("x\x1b[31my\rz\x9b\u202e é") == "x\\x1b[31my\\rz\\x9b\\u202e é"
    Reporter().result("name \x1b]0;title\x07 done", {})
    Reporter().error(ContractError("bad \x1b[2J"))
    out = capsys.readouterr()
    assert out.out == "name \\x1b]0;title\\x07 done\n" and out.err == "bad \\x1b[2J\n"


# -- 2. the stamped contract against the artifact's own inputs --------------------------------------


CONTRACT_VS_GRAPH = [  # (id, change to the digits contract, the message after the file name)
    ("renamed input", lambda c: c["inputs"].__setitem__("other", c["inputs"].pop("image")),
     "its contract names inputs ('other') but the model's inputs are ('image'); input 'other' is not in the model "
     "(the contract or the graph was changed after export)"),
    ("renamed output", lambda c: c["outputs"].__setitem__("p", c["outputs"].pop("probs")),
     "its contract names outputs ('p') but the model's outputs are ('probs'); output 'p' is not in the model "
     "(the contract or the graph was changed after export)"),
    ("shape", lambda c: c["inputs"]["image"].__setitem__("shape", [28, 28, 3]),
     "its contract gives input 'image' shape (28, 28, 3) but the model takes (8, 8, 1)"),
    ("rank", lambda c: c["inputs"]["image"].__setitem__("shape", []),
     "its contract gives input 'image' shape () but the model takes (8, 8, 1)"),
    ("mean per channel", lambda c: _pre(c).update(mean=[0.5, 0.5, 0.5]),
     "its contract gives input 'image' 3 mean values but the model's input has 1 channel"),
    ("std per channel", lambda c: _pre(c).update(std=[1.0] * 4096),
     "its contract gives input 'image' 4096 std values but the model's input has 1 channel"),
    ("included on a float input", lambda c: _pre(c).update(included=True),
     "its contract says input 'image' takes raw uint8 values (preprocessing included in the graph) but the "
     "model's input is float32"),
]


@pytest.mark.parametrize("change, message", [c[1:] for c in CONTRACT_VS_GRAPH], ids=[c[0] for c in CONTRACT_VS_GRAPH])
def test_a_contract_that_contradicts_the_graph_is_refused(change, message, tmp_path, capsys):
    path = restamped(tmp_path / "c.onnx", _edit(change))
    for command in (("predict", str(path), str(ROOT / "data" / "digits-samples" / "0.png")), ("inspect", str(path))):
        rc, out, err = cli(capsys, *command, "--format", "json")
        error = json.loads(out)["error"]
        assert rc == 1 and error["kind"] == "contract" and error["path"] == "$.metadata['netspec.contract']"
        assert error["message"] == f"{path}: {message}"


def test_the_contract_is_checked_on_every_runtime(tmp_path):
    """Each opener goes through runtimes.contract_of; a folded contract on a float LiteRT file is refused too."""
    from netspec.deploy.runtimes import contract_of
    from netspec.deploy.inputs import Port

    stamped = {METADATA_KEY: json.dumps(_edit(lambda c: _pre(c).update(included=True)))}
    with pytest.raises(ContractError, match="the model's input is float32"):
        contract_of(stamped, [Port("image", (8, 8, 1), "float32")], ["probs"], "x.tflite")
    ok = contract_of(stamped, [Port("image", (8, 8, 1), "uint8")], ["probs"], "x.tflite")
    assert ok.inputs["image"].preprocess.included  # type: ignore[union-attr]


# -- 3. evaluate: a stamped spec's data paths -------------------------------------------------------


def _spec_with_data(path: str) -> dict[str, str]:
    meta = _onnx_props(artifacts().onnx)
    resolved = json.loads(meta["netspec.spec"])
    resolved["spec"]["train"]["data"]["path"] = path
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return {"netspec.spec": text, "netspec.spec_sha256": hashlib.sha256(text.encode()).hexdigest()}


def test_evaluate_reads_a_stamped_specs_data_beside_the_artifact_never_at_its_recorded_source(tmp_path, capsys):
    digits = np.load(ROOT / "data" / "digits.npz")
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir(), here.mkdir()
    np.savez(elsewhere / "d.npz", images=digits["images"], labels=digits["labels"])
    (elsewhere / "spec.yaml").write_text("not read\n")
    path = restamped(here / "m.onnx", digits_contract(), **_spec_with_data("d.npz"),
                     **{"netspec.source": str(elsewhere / "spec.yaml")})
    rc, _, err = cli(capsys, "evaluate", str(path))
    assert rc == 1 and "$.train.data.path: data file 'd.npz' does not exist" in err
    assert f"hint: the data paths of a spec stored in an artifact start in the artifact's directory ({here})" in err
    rc, out, _ = cli(capsys, "evaluate", str(path), "--data-root", str(elsewhere), "--format", "json")
    assert rc == 0 and json.loads(out)["samples"] == 359
    np.savez(here / "d.npz", images=digits["images"], labels=digits["labels"])
    rc, out, _ = cli(capsys, "evaluate", str(path), "--format", "json")
    assert rc == 0 and json.loads(out)["samples"] == 359
    leak = restamped(here / "leak.onnx", digits_contract(), **_spec_with_data("../elsewhere/d.npz"))
    rc, _, err = cli(capsys, "evaluate", str(leak))
    assert rc == 1 and "data path '../elsewhere/d.npz' leads outside" in err


# -- 4, 5. inputs: 16-bit images, integers out of the raw dtype's range -------------------------------


def test_a_16_bit_png_is_refused_for_an_8_bit_contract_and_read_whole_for_a_16_bit_one(tmp_path, capsys):
    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(values).save(tmp_path / "deep.png")
    rc, _, err = cli(capsys, "predict", str(artifacts().onnx), str(tmp_path / "deep.png"))
    assert rc == 1 and err.startswith(f"image {tmp_path / 'deep.png'} is 16-bit (Pillow mode I;16) but the contract "
                                      "of input 'image' of shape (8, 8, 1) float32 takes raw uint8 grayscale images")
    wide = restamped(tmp_path / "wide.onnx", _edit(lambda c: _pre(c).update(dtype="uint16", scale=16 / 65535)))
    rc, out, _ = cli(capsys, "predict", str(wide), str(tmp_path / "deep.png"), "--raw", "--format", "json")
    assert rc == 0
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifacts().onnx), providers=["CPUExecutionProvider"])
    x = (values.astype(np.float32) * np.float32(16 / 65535))[None, :, :, None]
    want = session.run(None, {"image": x})[0][0]
    assert np.allclose(json.loads(out)["predictions"][0]["outputs"]["probs"]["values"], want, atol=1e-6)


@pytest.mark.parametrize("dtype, value, shown", [("int64", 2**62, "4611686018427387904"), ("int16", -3, "-3"),
                                                 ("float32", 300.0, "300")])
def test_raw_values_outside_the_raw_dtype_are_refused(dtype, value, shown, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.full((8, 8, 1), value, dtype))
    rc, _, err = cli(capsys, "predict", str(artifacts().onnx), str(tmp_path / "x.npy"))
    assert rc == 1 and err == (f"the samples of {tmp_path / 'x.npy'} for input 'image' of shape (8, 8, 1) float32 hold "
                               "values that are not in the range of uint8 (0..255); it takes raw uint8 values. "
                               f"Received: {dtype} values from {shown} to {shown}\n")


# -- 6. messages: native runtimes, EPIPE ------------------------------------------------------------


NATIVE = [  # (what the runtime said, what the user reads)
    ("[ONNXRuntimeError] : 1 : FAIL : /onnxruntime_src/onnxruntime/core/graph/model.cc:256 onnxruntime::Model::Model("
     "onnx::ModelProto&&, const onnxruntime::PathString&, const onnxruntime::logging::Logger&) Unsupported model IR "
     "version: 14, max supported IR version: 13\n", "Unsupported model IR version: 14, max supported IR version: 13"),
    ("[ONNXRuntimeError] : 1 : FAIL : Node (n) Op (Reshape) /onnxruntime_src/core/graph/graph.cc:2810 virtual const "
     "onnx::TensorProto* onnxruntime::InferenceContextImpl::getInputData(size_t) const [ONNXRuntimeError] : 1 : FAIL : "
     "tensorprotoutils.cc:1512 ValidateEmbeddedTensorProtoDataSizeAndShape Initializer 'w' declares a size of 8 bytes",
     "Node (n) Op (Reshape) Initializer 'w' declares a size of 8 bytes"),
    ("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'is_valid_weights_range(size, offset, size)' failed at "
     "src/core/xml_util/src/xml_deserialize_util.cpp:900:\nIncorrect weights in bin file!\n\n",
     "Incorrect weights in bin file!"),
    ("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'x' failed at src/a.hpp:307:\nWhile validating node "
     "'opset1::Convolution C' with friendly_name 'C':\nData batch channel count (1000) does not match (1).\n",
     "Data batch channel count (1000) does not match (1)."),
    (f"cannot open {os.path.join(__import__('tempfile').gettempdir(), 'tmpab12/model.xml')} for reading",
     "cannot open <temporary file> for reading"),
]


@pytest.mark.parametrize("said, shown", NATIVE)
def test_native_messages_are_cut_to_their_meaningful_line(said, shown):
    assert native_message(RuntimeError(said)) == shown
    assert len(native_message("x" * 1000)) == 200


def test_a_garbage_xml_prints_one_located_line_and_no_native_noise(tmp_path):
    (tmp_path / "g.xml").write_text("\x00\x01garbage<<<")
    (tmp_path / "g.bin").write_bytes(b"\0" * 16)
    run = subprocess.run([sys.executable, "-m", "netspec", "predict", "g.xml", "x.npy"], cwd=tmp_path,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == "g.xml:1:1: not an OpenVINO IR file OpenVINO can read: not well-formed (invalid token)\n"


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    big = restamped(tmp_path / "m.onnx", digits_contract())
    proc = subprocess.Popen([sys.executable, "-m", "netspec", "inspect", str(big), "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before netspec writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


# -- 7. duplicate keys --------------------------------------------------------------------------------


def test_duplicate_keys_in_the_contract_json_are_refused(tmp_path, capsys):
    text = json.dumps(digits_contract())
    path = restamped(tmp_path / "d.onnx", raw=text[:-1] + ', "version": 1}')
    rc, _, err = cli(capsys, "predict", str(path), str(ROOT / "data" / "digits-samples" / "0.png"))
    assert rc == 1 and err == (f"{CONTRACT_AT}the contract in {path} holds key 'version' twice in one object "
                               "(which one is meant?)\n")


def _ir_copy(tmp_path: Path, name: str, edit) -> Path:
    src = artifacts().openvino
    (tmp_path / f"{name}.bin").write_bytes(src.with_suffix(".bin").read_bytes())
    xml = tmp_path / f"{name}.xml"
    xml.write_text(edit(src.read_text()))
    return xml


def test_duplicate_rt_info_keys_and_entity_declarations_are_refused(tmp_path, capsys):
    xml = _ir_copy(tmp_path, "dup", lambda t: t.replace("<netspec>", '<netspec>\n<netspec.contract value="{}" />', 1))
    lines = xml.read_text().splitlines()
    second = [i for i, text in enumerate(lines) if "<netspec.contract " in text][1]  # the one the export wrote
    at = f"{second + 1}:{lines[second].index('<') + 1}"
    for command in ("predict", "inspect"):
        rc, _, err = cli(capsys, command, str(xml), *(["x.npy"] if command == "predict" else []))
        assert rc == 1 and err == f"{xml}:{at}: its rt_info holds 'netspec.contract' twice (which one is meant?)\n"
    lol = '<!DOCTYPE net [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    xml = _ir_copy(tmp_path, "lol", lambda t: t.replace("?>\n", "?>\n" + lol, 1))
    rc, _, err = cli(capsys, "inspect", str(xml))
    assert rc == 1 and err == f"{xml}:2:27: it declares XML entities (<!ENTITY a ...>); an OpenVINO IR has none\n"


# -- 8. inspect --spec ------------------------------------------------------------------------------


def test_inspect_spec_writes_like_every_output_option(tmp_path, capsys):
    """One rule for every file netspec writes (build -o, export -o, inspect --spec): missing directories are
    made; a directory, or a file where a directory must be, is refused and nothing is written."""
    out = tmp_path / "new" / "dir" / "s.yaml"
    rc, _, err = cli(capsys, "inspect", str(artifacts().onnx), "--spec", str(out))
    assert rc == 0 and out.read_text().startswith("# written by netspec inspect")
    (tmp_path / "afile").write_text("x")
    rc, _, err = cli(capsys, "inspect", str(artifacts().onnx), "--spec", str(tmp_path / "afile" / "s.yaml"))
    assert rc == 1 and err == f"{tmp_path / 'afile' / 's.yaml'}: {tmp_path / 'afile'} is a file, not a directory. Nothing written\n"
    (tmp_path / "d.yaml").mkdir()
    rc, _, err = cli(capsys, "inspect", str(artifacts().onnx), "--spec", str(tmp_path / "d.yaml"))
    assert rc == 1 and err == f"{tmp_path / 'd.yaml'}: is a directory; give a file name to write. Nothing written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "d.yaml", "new"]


def test_an_output_the_file_system_refuses_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """A name over NAME_MAX is refused when -o is read (an export used to run 27 s, then crash with a traceback)."""
    import time

    long = tmp_path / "at" / ("a" * 300 + ".onnx")
    started = time.perf_counter()
    rc, _, err = cli(capsys, "export", str(ROOT / "specs" / "digits.yaml"), "--target", "onnx-cpu", "-o", str(long))
    assert rc == 1 and err.endswith(": a name in it is longer than the file system takes (255 bytes). Nothing written\n")
    assert time.perf_counter() - started < 5 and not (tmp_path / "at").exists()


def test_standard_output_on_a_full_disk_is_one_line_not_a_traceback(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "netspec", "inspect", str(artifacts().onnx)], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.returncode == 1 and proc.stderr == "netspec: cannot write standard output: No space left on device\n"


# -- 9, 10. the IR's .bin, and one reader of its ports --------------------------------------------------


def test_an_ir_bin_may_be_a_symlink_inside_its_directory_only(tmp_path, capsys):
    src = artifacts().openvino
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "real.bin").write_bytes(src.with_suffix(".bin").read_bytes())
    (tmp_path / "m.xml").write_bytes(src.read_bytes())
    (tmp_path / "m.bin").symlink_to(tmp_path / "weights" / "real.bin")
    rc, out, _ = cli(capsys, "inspect", str(tmp_path / "m.xml"), "--format", "json")
    assert rc == 0 and json.loads(out)["inputs"] == {"image": {"shape": [None, 8, 8, 1], "dtype": "float32"}}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "n.xml").write_bytes(src.read_bytes())
    (outside / "n.bin").symlink_to(tmp_path / "weights" / "real.bin")
    rc, _, err = cli(capsys, "predict", str(outside / "n.xml"), "x.npy")
    assert rc == 1 and err == (f"{outside / 'n.xml'}: its weights n.bin are a symlink that leads outside the directory "
                               "of the .xml; netspec follows a model's symlinks only within its own directory tree\n")
    (tmp_path / "f.xml").write_bytes(src.read_bytes())
    os.mkfifo(tmp_path / "f.bin")
    rc, _, err = cli(capsys, "inspect", str(tmp_path / "f.xml"))
    assert rc == 1 and err == f"{tmp_path / 'f.xml'}: its weights f.bin is a FIFO, not a regular file\n"


def test_inspect_and_the_runtime_read_the_same_ports_without_inspect_compiling(monkeypatch, capsys):
    from netspec.deploy.runtimes import open_artifact
    from netspec.export import openvino as ir

    opened = open_artifact(str(artifacts().openvino))
    monkeypatch.setattr(ir, "_compiled", lambda *a, **k: pytest.fail("inspect compiled the model"))
    rc, out, _ = cli(capsys, "inspect", str(artifacts().openvino), "--format", "json")
    shown = json.loads(out)
    assert rc == 0 and {k: (v["shape"][1:], v["dtype"]) for k, v in shown["inputs"].items()} == \
        {p.name: (list(p.shape), p.dtype) for p in opened.inputs}
    assert list(shown["outputs"]) == opened.outputs


def test_an_onnx_file_onnxruntime_refuses_gets_one_short_line(tmp_path, capsys):
    import onnx

    proto = onnx.load(str(artifacts().onnx))
    proto.ir_version = 99
    onnx.save(proto, str(tmp_path / "v.onnx"))
    rc, _, err = cli(capsys, "predict", str(tmp_path / "v.onnx"), "x.npy")
    assert rc == 1 and err.startswith(f"{tmp_path / 'v.onnx'}: onnxruntime cannot load it: Unsupported model IR "
                                      "version: 99, max supported IR version: ")
    assert "onnxruntime_src" not in err and "::" not in err and len(err.splitlines()) == 1
