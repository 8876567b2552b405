"""The command line: exit codes, text and JSON output, no TensorFlow for validate, atomic builds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from netspec.cli import main

from conftest import ROOT, SPECS

TYPO = textwrap.dedent("""\
    netspec: 1
    name: typo
    inputs: {x: [8]}
    nodes:
      - {name: d, type: Dense, units: 4}
      - {name: e, type: Dense, unit: 4}
    """)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_validate_imports_no_tensorflow():
    code = textwrap.dedent("""
        import sys
        from netspec.cli import main
        rc = main(["validate", "specs/resnet50.yaml"])
        heavy = sorted(m for m in ("tensorflow", "keras", "jsonschema", "numpy") if m in sys.modules)
        print("HEAVY", heavy)
        sys.exit(rc)
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert "specs/resnet50.yaml: ok (resnet50:" in proc.stdout


def test_spec_error_exits_1_with_location_and_no_traceback(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    proc = run_cli("validate", str(path))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:6:28: $.nodes[1].unit: unknown key 'unit'")
    assert "did you mean 'units'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_json_error(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    assert main(["validate", str(path), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["error"] | {} == out["error"]
    assert (out["error"]["line"], out["error"]["column"], out["error"]["path"]) == (6, 28, "$.nodes[1].unit")
    assert out["error"]["hint"] == "did you mean 'units'?"


def test_usage_errors_exit_2():
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("validate").returncode == 2
    proc = run_cli("validate", "specs/lenet5.yaml", "--set", "novalue")
    assert proc.returncode == 2 and "--set expects name=value" in proc.stderr


def test_missing_file_is_a_spec_error():
    proc = run_cli("validate", "specs/nope.yaml")
    assert proc.returncode == 1 and "specs/nope.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_json_and_set(capsys):
    assert main(["validate", str(SPECS / "lenet5.yaml"), "--set", "classes=3", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["name"] == "lenet5" and out["outputs"] == ["probs"]


def test_check_table_and_json(keras, capsys):
    assert main(["check", str(SPECS / "lenet5.yaml")]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["node", "type", "output", "shape", "params", "line"]
    assert any(l.split()[:2] == ["c1", "Conv2D"] and "(None, 28, 28, 6)" in l and l.split()[-2:] == ["156", "11"]
               for l in lines)
    assert lines[-2:] == ["outputs: probs", "total params: 61,706 (trainable: 61,706, non-trainable: 0)"]
    assert main(["check", str(SPECS / "lenet5.yaml"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_params"] == 61706
    assert out["nodes"][1] == {"name": "c1", "type": "Conv2D", "output_shape": [None, 28, 28, 6], "params": 156,
                               "line": 11, "scope": [], "shared": False}


def test_build_writes_a_model_that_loads_in_safe_mode(keras, tmp_path, capsys):
    out = tmp_path / "sub" / "m.keras"
    assert main(["build", str(SPECS / "two_heads.yaml"), "-o", str(out)]) == 0
    model = keras.saving.load_model(out, safe_mode=True)
    assert model.name == "two_heads"
    assert [t.name for t in model.inputs] == ["image", "meta"]
    assert sorted(tmp_path.joinpath("sub").iterdir()) == [out]


def test_failed_build_leaves_no_file(keras, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("netspec: 1\nname: bad\ninputs: {x: [8]}\nnodes:\n  - {type: Conv2D, filters: 2, kernel_size: 3}\n")
    out = tmp_path / "m.keras"
    assert main(["build", str(bad), "-o", str(out)]) == 1
    assert list(tmp_path.iterdir()) == [bad]


def test_schema_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "layer.Conv2D" in schema["$defs"]


@pytest.mark.parametrize("argv, plugins", [
    (["export", "--plugins", "layers.py", "m.keras", "--target", "onnx-cpu"], ["layers.py"]),
    (["predict", "--plugins", "a.py,pkg.layers", "m.keras", "x.npy"], ["a.py", "pkg.layers"]),
    (["evaluate", "m.keras", "--plugins", "a.py", "--plugins", "b.py"], ["a.py", "b.py"]),
    (["import", "--plugins", "a.py", "m.keras", "-o", "m.yaml"], ["a.py"]),
])
def test_plugins_take_one_value_per_flag_and_leave_the_positional_alone(argv, plugins):
    """``--plugins layers.py model.keras`` read the model as a second plugin (and then asked for a model)."""
    from netspec.cli.app import commands, make_parser, parse

    table = commands()
    args = parse(make_parser(table), table, argv)
    assert args.plugins == plugins
    assert "m.keras" in vars(args).values() or ["m.keras"] in vars(args).values()


def test_an_empty_plugin_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["export", "m.keras", "--plugins", "a.py,", "--target", "onnx-cpu"])
    assert exit.value.code == 2 and "an empty name in 'a.py,'" in capsys.readouterr().err
