"""Every ``${...}`` result is re-checked against the schema of its location (netspec.schema.recheck), and the
state a metric or an export target would allocate is paid for first (trainnames.metric_state,
targets.feed_problem)."""

from __future__ import annotations

import textwrap

import pytest

import netspec
from netspec.schema import recheck
from netspec.train import names as trainnames
from netspec.errors import ExportError, NetspecError
from netspec.export.targets import MAX_BATCH_SIZE, Calibration, Target, feed_problem, sample_bytes, \
    with_overrides

HEAD = """\
netspec: 1
name: t
params: {n: 8, text: "$$x"}
inputs:
  x: {shape: [8]}
nodes:
  - {name: d, type: Dense, units: 2}
"""
TRAIN = """\
train:
  data: {source: npz, path: d.npz, x: x, y: y}
  loss: mse
"""


def error_for(text: str, *, validate: bool = False) -> NetspecError:
    with pytest.raises(NetspecError) as info:
        spec = netspec.load(textwrap.dedent(text))
        if validate:
            spec.validate()
    return info.value


# (id, YAML after the head, message fragment, line, column): line 8 is the first line after HEAD; a column
# of None is the column of the line's first `$` text (its opening quote when quoted).
CASES = [
    ("train_source", 'train:\n  data: {source: "${\'evil\'}", path: d.npz}\n  loss: mse\n',
     "\"${'evil'}\" evaluated to 'evil'; expected one of 'csv', 'dataset', 'image_dir', 'npz'", 9, None),
    ("train_delimiter", 'train:\n  data: {source: csv, path: d.csv, delimiter: "${\'ab\'}"}\n  loss: mse\n',
     "evaluated to 'ab'; expected a string of exactly 1 character", 9, None),
    ("train_batch_size", TRAIN + '  batch_size: "${-5}"\n',
     "'${-5}' evaluated to -5; expected an integer >= 1. Received: batch_size=-5", 11, None),
    ("train_epochs", TRAIN + '  epochs: "${\'3\'}"\n', "evaluated to '3'; expected an integer >= 1", 11, None),
    ("train_steps", TRAIN + '  steps_per_epoch: "${0}"\n', "evaluated to 0; expected an integer >= 1", 11, None),
    ("train_seed", TRAIN + '  seed: "${-1}"\n', "evaluated to -1; expected an integer >= 0", 11, None),
    ("train_distribute", TRAIN + '  distribute: "${\'everywhere\'}"\n', "evaluated to 'everywhere'", 11, None),
    ("train_optimizer_arg", TRAIN + '  optimizer: {type: SGD, momentum: "${\'fast\'}"}\n',
     "evaluated to 'fast'", 11, None),
    ("train_metric_arg", TRAIN + '  metrics: [{type: TopKCategoricalAccuracy, k: "${0}"}]\n',
     "evaluated to 0; expected an integer >= 1", 11, None),
    ("train_checkpoint_mode", TRAIN + '  checkpoint: {mode: "${\'up\'}"}\n', "evaluated to 'up'", 11, None),
    ("train_dollar_text", 'train:\n  data: {source: $text, path: d.npz}\n  loss: mse\n',
     "'$text' evaluated to '$x'; expected one of 'csv'", 9, None),
    ("train_validation_source", TRAIN.replace("y: y}", "y: y, validation: {source: \"${'ftp'}\"}}"),
     "evaluated to 'ftp'", 9, None),
    ("export_format", 'export:\n  t: {format: "${\'pickle\'}"}\n', "evaluated to 'pickle'", 9, None),
    ("export_precision", 'export:\n  t: {format: onnx, precision: "${\'int4\'}"}\n', "evaluated to 'int4'", 9, None),
    ("export_batch", 'export:\n  t: {format: onnx, batch_size: "${10 ** 7}"}\n',
     "evaluated to 10000000; expected an integer between 1 and 4096", 9, None),
    ("export_samples", 'export:\n  t: {format: onnx, precision: int8, calibration: {samples: "${0}"}}\n',
     "evaluated to 0; expected an integer between 1 and 10000", 9, None),
]


@pytest.mark.parametrize("snippet,fragment,line,column", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_sections_are_rechecked(snippet, fragment, line, column):
    err = error_for(HEAD + snippet)
    assert fragment in err.message, str(err)
    assert err.kind == "schema"
    assert (err.line, err.column) == (line, column or dollar_column(HEAD + snippet, line)), str(err)


def dollar_column(text: str, line: int) -> int:
    row = textwrap.dedent(text).splitlines()[line - 1]
    k = row.index("$")
    return k if row[k - 1] in "\"'" else k + 1


# Whole specs: the inputs, input_spec and output_shape sections.
SPECS = [
    ("inputs_dtype", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8], dtype: "${'bogus'}"}
        nodes:
          - {type: Dense, units: 2}
        """, "\"${'bogus'}\" evaluated to 'bogus'", 4, None),
    ("inputs_optional", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8], optional: "${1}"}
        nodes:
          - {type: Dense, units: 2}
        """, "evaluated to 1; expected a boolean", 4, None),
    ("inputs_param_mapping", """\
        netspec: 1
        name: t
        params:
          spec: {shape: [8], batch_size: 0}
        inputs:
          x: $spec
        nodes:
          - {type: Dense, units: 2}
        """, "'$spec' evaluated to {'shape': [8], 'batch_size': 0}; expected an integer >= 1", 6, None),
    ("inputs_scalar", """\
        netspec: 1
        name: t
        inputs:
          x: "${None}"
        nodes:
          - {type: Dense, units: 2}
        """, "'${None}' evaluated to None; expected a list or a mapping", 4, None),
    ("inputs_shorthand", """\
        netspec: 1
        name: t
        inputs:
          x: "${[8, -1]}"
        nodes:
          - {type: Dense, units: 2}
        """, "evaluated to [8, -1]; expected an integer >= 1. Received: x[1]=-1", 4, None),
    ("input_spec_ndim", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8]}
        nodes:
          - {type: Dense, units: 2, input_spec: {max_ndim: "${-2}"}}
        """, "evaluated to -2; expected an integer >= 0", 6, None),
    ("input_spec_axes", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8]}
        nodes:
          - {type: Dense, units: 2, input_spec: {axes: {"-1": "${0}"}}}
        """, "evaluated to 0; expected an integer >= 1", 6, None),
    ("input_spec_block_note", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8]}
        blocks:
          b:
            params: {d: required}
            nodes:
              - {type: Dense, units: 2, input_spec: {dtype: $d}}
        nodes:
          - {name: one, block: b, d: nope}
        """, "'$d' evaluated to 'nope'", 9, None),
    ("output_shape", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8]}
        nodes:
          - {expr: "x + 1", output_shape: "${[8, 0]}"}
        """, "evaluated to [8, 0]; expected an integer >= 1. Received: output_shape[1]=0", 6, None),
    ("layer_arg_dollar_text", """\
        netspec: 1
        name: t
        inputs:
          x: {shape: [8]}
        nodes:
          - {type: Dense, units: "${'$u'}"}
        """, "expected an integer >= 1. Received: units='$u'", 6, None),
]


@pytest.mark.parametrize("text,fragment,line,column", [pytest.param(*c[1:], id=c[0]) for c in SPECS])
def test_graph_sections_are_rechecked(text, fragment, line, column):
    err = error_for(text)
    assert fragment in err.message, str(err)
    assert (err.line, err.column) == (line, column or dollar_column(text, line)), str(err)


def test_block_instance_is_named():
    err = error_for(dict((c[0], c[1]) for c in SPECS)["input_spec_block_note"])
    assert "in block 'b', instance 'one'" in err.message


LEGAL = """\
netspec: 1
name: t
params: {n: 8, bs: 16, fmt: onnx}
inputs:
  x: {shape: ["$n"], dtype: "${'float32'}", sparse: "${False}"}
nodes:
  - {name: d, type: Dense, units: "${n // 2}", input_spec: {ndim: "${2}"}}
train:
  data: {source: dataset, name: digits, shuffle: "${True}", validation_split: "${1 / 5}"}
  batch_size: $bs
  epochs: "${n / 2}"
  optimizer: {type: Adam, learning_rate: {type: CosineDecay, initial_learning_rate: 0.1, decay_steps: "${n / 4}"}}
  loss: mse
  metrics: [{type: MeanIoU, num_classes: "${n / 2}"}]
export:
  t: {format: $fmt, batch_size: "${bs}", opset: "${30 / 2}"}
"""


def test_legal_interpolations_still_pass():
    spec = netspec.load(LEGAL)
    spec.validate()
    assert spec.section("train")["batch_size"] == 16
    assert spec.section("export")["t"]["batch_size"] == 16


def test_integral_floats_reach_keras_as_ints():
    """JSON Schema's integer includes 4.0; what netspec hands on is an int."""
    from netspec.export.targets import spec_targets
    from netspec.train.config import train_config

    spec = netspec.load(LEGAL)
    config = train_config(spec)
    assert type(config.epochs) is int and config.epochs == 4
    assert type(config.metrics["d"][0].args["num_classes"]) is int
    assert type(config.optimizer.args["learning_rate"]["decay_steps"]) is int
    assert type(spec_targets(spec)["t"].opset) is int


def test_strict_schema_drops_interp_alternatives():
    from netspec.schema.catalog import load_schema

    strict = recheck.strict_schema(load_schema())
    assert strict["$defs"]["interp"] is False
    assert recheck.INTERP_REF not in strict["$defs"]["train"]["properties"]["batch_size"]["anyOf"]
    assert recheck.INTERP_REF in load_schema()["$defs"]["train"]["properties"]["batch_size"]["anyOf"]
    assert recheck.strict_validator() is recheck.strict_validator(load_schema())


def test_interpolated_list_of_many_bad_items_is_bounded():
    err = error_for(HEAD + 'export:\n  t: {format: onnx}\n'.replace("{format: onnx}", '{format: "${[1] * 5000}"}'))
    assert "evaluated to [1, 1, 1" in err.message and len(err.message) < 400


def test_train_command_writes_no_run_directory(tmp_path, monkeypatch):
    from netspec.cli import main

    spec = tmp_path / "t.yaml"
    spec.write_text(HEAD + TRAIN + '  batch_size: "${-5}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(spec)]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


# -- metric state ------------------------------------------------------------------------------

STATE = [
    ("MeanIoU", {"num_classes": 100_000}, 100_000 ** 2 * 4, "num_classes=100000"),
    ("IoU", {"num_classes": 10, "target_class_ids": [0]}, 400, "num_classes=10"),
    ("OneHotMeanIoU", {"num_classes": 4000, "dtype": "float64"}, 4000 ** 2 * 8, "num_classes=4000"),
    ("AUC", {}, 4 * 200 * 4, "num_thresholds=200"),
    ("AUC", {"num_thresholds": 1000, "multi_label": True, "num_labels": 50}, 4 * 1000 * 50 * 4,
     "num_thresholds=1000 with num_labels=50"),
    ("AUC", {"num_thresholds": 1000, "num_labels": 50}, 4 * 1000 * 4, "num_thresholds=1000"),
    ("AUC", {"thresholds": [0.5, 0.6]}, 4 * 4 * 4, "thresholds (a list of 2)"),
    ("RecallAtPrecision", {"precision": 0.5, "num_thresholds": 10 ** 8}, 4 * 10 ** 8 * 4, "num_thresholds"),
    ("Precision", {"thresholds": [0.1] * 10}, 2 * 10 * 4, "thresholds (a list of 10)"),
    ("Precision", {}, None, None),
    ("SparseTopKCategoricalAccuracy", {"k": 10 ** 9}, None, None),
]


@pytest.mark.parametrize("name,args,size,arg", STATE, ids=[f"{s[0]}-{i}" for i, s in enumerate(STATE)])
def test_metric_state(name, args, size, arg):
    found = trainnames.metric_state(name, args)
    if size is None:
        assert found is None
    else:
        assert found[0] == size and found[1].startswith(arg)


def test_metric_state_error_is_located(tmp_path):
    err = error_for(HEAD.replace("[8]", "[8, 8, 1]") + 'train:\n  data: {source: dataset, name: digits}\n'
                    '  loss: mse\n  metrics: [{type: MeanIoU, num_classes: "${2 ** 14}"}]\n', validate=True)
    assert err.kind == "train"
    assert "MeanIoU with num_classes=16384 keeps a 16384 x 16384 confusion matrix (1.0 GiB of state)" in err.message
    assert (err.line, err.column) == (11, 42)


# -- export feeds --------------------------------------------------------------------------------


class _Decl:
    def __init__(self, shape, dtype="float32"):
        self.shape, self.dtype = shape, dtype


def test_sample_bytes_uses_generated_size_for_null_dims():
    from netspec.export.quantize import UNKNOWN_DIM
    from netspec.export.targets import GENERATED_UNKNOWN_DIM

    assert GENERATED_UNKNOWN_DIM == UNKNOWN_DIM
    assert sample_bytes([_Decl((None, 4)), _Decl((3,), "int64")]) == 8 * 4 * 4 + 3 * 8


FEEDS = [
    (Target("t", "onnx", batch_size=4096), (224, 224, 3), ("batch_size",)),
    (Target("t", "onnx", batch_size=64), (224, 224, 3), None),
    (Target("t", "onnx", "int8", calibration=Calibration(samples=10_000)), (224, 224, 3), ("calibration", "samples")),
    (Target("t", "onnx", "fp32", calibration=Calibration(samples=10_000)), (224, 224, 3), None),
    (Target("t", "litert", "int8"), (224, 224, 3), None),
]


@pytest.mark.parametrize("target,shape,key", FEEDS)
def test_feed_problem(target, shape, key):
    found = feed_problem(target, [_Decl(shape)])
    assert (found[0] if found else None) == key


def test_export_batch_size_override_is_capped():
    with pytest.raises(ExportError, match="--batch-size must be 1-4096"):
        with_overrides(Target("t", "onnx"), batch_size=MAX_BATCH_SIZE + 1)
    assert with_overrides(Target("t", "onnx"), batch_size=MAX_BATCH_SIZE).batch_size == MAX_BATCH_SIZE


def test_export_target_bytes_error_is_located():
    err = error_for(HEAD.replace("[8]", "[1024, 1024, 3]") + "export:\n  q: {format: onnx, precision: int8}\n",
                    validate=True)
    assert err.kind == "export"
    assert "calibration with 128 samples of 12.0 MiB is 1.5 GiB of input" in err.message
    assert err.path == ("export", "q", "precision")
