"""The train section at validate time: whitelisted names with did-you-mean, per-output keys, monitors,
data files and keys, each reported at its YAML line and column, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import netspec
from netspec.cli import main
from netspec.train.config import train_config

from conftest import ROOT

DIGITS = ROOT / "data" / "digits.npz"


def spec_text(train: str, *, two_outputs: bool = False) -> str:
    head = textwrap.dedent("""\
        netspec: 1
        name: t
        inputs: {image: [8, 8, 1]}
        nodes:
          - {name: flat, type: Flatten}
          - {name: probs, type: Dense, units: 10, activation: softmax}
        """)
    if two_outputs:
        head += "  - {name: value, type: Dense, units: 1, in: flat}\noutputs: {probs: probs, value: value}\n"
    return head + "train:\n" + textwrap.indent(train.replace("DIGITS", str(DIGITS)), "  ")


OK = """\
data: {source: npz, path: DIGITS, x: images, y: labels, validation_split: 0.2}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
"""


def train_error(text: str) -> netspec.NetspecError:
    try:
        train_config(netspec.load(text))
    except netspec.NetspecError as e:
        return e
    raise AssertionError("expected a NetspecError")


def position(text: str, marker: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of ``marker`` in the train section."""
    start = text.index("train:")
    offset = text.index(marker, start)
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def replace(base: str, old: str, new: str) -> str:
    assert old in base
    return base.replace(old, new)


CASES = [
    # id, train section, marker of the expected location, message fragment, hint fragment
    ("optimizer_typo", OK + "optimizer: adamm\n", "adamm", "unknown optimizer 'adamm'", "'adam'"),
    ("optimizer_arg_typo", OK + "optimizer: {type: Adam, learning_rte: 0.1}\n", "learning_rte",
     "learning_rte", "learning_rate"),
    ("optimizer_bad_value", OK + "optimizer: {type: Adam, learning_rate: -1}\n", "-1", "learning_rate", None),
    ("schedule_typo", OK + "optimizer: {type: Adam, learning_rate: {type: CosineDecy, initial_learning_rate: 0.1, "
     "decay_steps: 10}}\n", "CosineDecy", "unknown learning-rate schedule", "CosineDecay"),
    ("loss_typo", replace(OK, "sparse_categorical_crossentropy", "sparse_categorical_crossentrop"),
     "sparse_categorical_crossentrop", "unknown loss", "sparse_categorical_crossentropy"),
    ("loss_missing", replace(OK, "loss: sparse_categorical_crossentropy\n", ""), "data", "train needs a loss", None),
    ("metric_typo", replace(OK, "[accuracy]", "[acuracy]"), "acuracy", "unknown metric 'acuracy'", "'accuracy'"),
    ("metric_class_as_string", replace(OK, "[accuracy]", "[AUC]"), "AUC", "{type: AUC}", None),
    ("metric_duplicate_name", replace(OK, "[accuracy]", "[accuracy, {type: SparseCategoricalAccuracy, name: accuracy}]"),
     "{type: Sparse", "logged as 'accuracy'", None),
    ("lambda_callback", OK + "callbacks: [{type: LambdaCallback}]\n", "LambdaCallback",
     "LambdaCallback cannot be used in a spec: it runs Python callables", None),
    ("remote_monitor", OK + "callbacks: [{type: RemoteMonitor}]\n", "RemoteMonitor", "over the network", None),
    ("model_checkpoint", OK + "callbacks: [{type: ModelCheckpoint}]\n", "ModelCheckpoint",
     "netspec train writes checkpoints", None),
    ("callback_typo", OK + "callbacks: [{type: EarlyStoping, patience: 2}]\n", "EarlyStoping", "unknown callback",
     "EarlyStopping"),
    ("callback_bad_patience", OK + "callbacks: [{type: EarlyStopping, patience: -1}]\n", "-1", "patience", None),
    ("callback_arg_typo", OK + "callbacks: [{type: EarlyStopping, patiense: 2}]\n", "patiense", "patiense",
     "patience"),
    ("monitor_typo", OK + "callbacks: [{type: EarlyStopping, monitor: val_acc}]\n", "val_acc",
     "monitor 'val_acc' is not a quantity this training logs", "val_accuracy"),
    ("monitor_needs_validation", replace(OK, ", validation_split: 0.2", "") + "checkpoint: {monitor: val_accuracy}\n",
     "val_accuracy", "needs validation data", None),
    ("early_stopping_without_validation", replace(OK, ", validation_split: 0.2", "")
     + "callbacks: [{type: EarlyStopping}]\n", "{type: Early", "monitors val_loss by default", None),
    ("missing_file", replace(OK, "DIGITS", "no/such/file.npz"), "no/such", "a spec given as text has no directory",
     None),
    ("npz_key_typo", replace(OK, "x: images", "x: imagez"), "imagez", "has no array 'imagez'", "'images'"),
    ("npz_default_key", replace(OK, "x: images, ", ""), "npz", "x defaults to 'x'", None),
    ("dataset_typo", replace(OK, "source: npz, path: DIGITS, x: images, y: labels", "source: dataset, name: digts"),
     "digts", "unknown dataset 'digts'", "'digits'"),
    ("dataset_no_path", replace(OK, "source: npz, path: DIGITS, x: images, y: labels",
                                "source: dataset, name: digits, path: x.npz"), "path: x", "'path' does not apply",
     None),
    ("both_validations", replace(OK, "validation_split: 0.2", "validation_split: 0.2, validation: {path: DIGITS}"),
     "validation:", "not both", None),
    ("split_out_of_range", replace(OK, "validation_split: 0.2", "validation_split: 1.5"), "1.5", "validation_split",
     None),
    ("no_data", "loss: mse\n", "loss", "train needs data", None),
    ("image_dir_not_a_dir", replace(OK, "source: npz, path: DIGITS, x: images, y: labels",
                                    "source: image_dir, path: DIGITS"), "/", "is a file, not a directory", None),
    ("image_dir_x", replace(OK, "source: npz, path: DIGITS, x: images, y: labels",
                            "source: image_dir, path: ., x: images"), "x: images",
     "'x' does not apply to source: image_dir", None),
    ("distribute_typo", OK + "distribute: multi_gpu\n", "multi_gpu", "multi_gpu", None),
    ("unknown_train_key", OK + "epoch: 3\n", "epoch", "epoch", "epochs"),
]


@pytest.mark.parametrize("train, marker, fragment, hint", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_train_section_error(train: str, marker: str, fragment: str, hint: str | None):
    text = spec_text(train)
    err = train_error(text)
    assert fragment in err.message, str(err)
    assert (err.line, err.column) == position(text, marker), str(err)
    if hint:
        assert err.hint and hint in err.hint, str(err)


MULTI = """\
data: {source: npz, path: DIGITS, x: images, y: {probs: labels, value: labels}}
"""

MULTI_CASES = [
    ("loss_key_typo", MULTI + "loss: {prob: sparse_categorical_crossentropy, value: mse}\n", "prob:",
     "'prob' is not an output of the model", "'probs'"),
    ("metrics_key_typo", MULTI + "loss: mse\nmetrics: {valu: [mae]}\n", "valu: [", "'valu' is not an output", "'value'"),
    ("loss_weights_length", MULTI + "loss: mse\nloss_weights: [1.0]\n", "[1.0]", "1 entries for 2 outputs", None),
    ("y_key_typo", replace(MULTI, "value: labels", "valeu: labels") + "loss: mse\n", "valeu",
     "'valeu' is not an output", "'value'"),
    ("y_not_a_mapping", replace(MULTI, "y: {probs: labels, value: labels}", "y: labels") + "loss: mse\n",
     "labels}", "give y as a mapping", None),
]


@pytest.mark.parametrize("train, marker, fragment, hint", [c[1:] for c in MULTI_CASES],
                         ids=[c[0] for c in MULTI_CASES])
def test_multi_output_error(train, marker, fragment, hint):
    text = spec_text(train, two_outputs=True)
    err = train_error(text)
    assert fragment in err.message, str(err)
    assert (err.line, err.column) == position(text, marker), str(err)
    if hint:
        assert err.hint and hint in err.hint, str(err)


def test_defaults_and_log_names():
    text = spec_text(MULTI + "loss: {probs: sparse_categorical_crossentropy, value: mse}\n"
                     "metrics: {probs: [accuracy, {type: SparseTopKCategoricalAccuracy, k: 3}], value: mae}\n"
                     "checkpoint: {monitor: probs_accuracy}\n", two_outputs=True)
    config = train_config(netspec.load(text))
    assert config.batch_size == 32 and config.epochs == 1 and config.distribute == "none"
    assert config.optimizer.name == "adam"
    assert config.monitor == "probs_accuracy" and config.monitor_mode == "max"
    assert config.log_names == {"loss", "probs_loss", "value_loss", "probs_accuracy",
                                "probs_sparse_top_k_categorical_accuracy", "value_mae"}


def test_paths_are_relative_to_the_spec(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.npz").write_bytes(DIGITS.read_bytes())
    spec = tmp_path / "sub" / "s.yaml"
    spec.write_text(spec_text(replace(OK, "DIGITS", "d.npz")), encoding="utf-8")
    config = train_config(netspec.load(spec))
    assert config.data.path == (tmp_path / "sub" / "d.npz").resolve()


def test_cli_validate_reports_train_errors(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    text = spec_text(OK + "optimizer: adamm\n")
    bad.write_text(text, encoding="utf-8")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    line, col = position(text, "adamm")
    assert err.startswith(f"{bad}:{line}:{col}: $.train.optimizer: unknown optimizer 'adamm'")
    assert "did you mean 'adam'?" in err


def test_validate_with_train_section_imports_no_tensorflow():
    code = textwrap.dedent("""
        import sys
        from netspec.cli import main
        rc = main(["validate", "specs/digits.yaml"])
        heavy = sorted(m for m in ("tensorflow", "keras", "numpy") if m in sys.modules)
        print("HEAVY", heavy)
        sys.exit(rc)
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_every_whitelisted_name_builds(keras):
    """The whitelists name real Keras objects, and string identifiers resolve to what compile takes."""
    from netspec.train import names as N
    from netspec.train.config import Obj
    from netspec.train.session import build_object

    for name in N.OPTIMIZERS:
        assert isinstance(build_object(Obj("optimizer", name, {}, (), True)), keras.optimizers.Optimizer)
    for name in N.OPTIMIZER_STRINGS:
        assert isinstance(build_object(Obj("optimizer", name, {}, (), False)), keras.optimizers.Optimizer)
    for name in N.LOSSES:
        assert isinstance(build_object(Obj("loss", name, {}, (), True)), keras.losses.Loss)
    for name, cls in N.LOSS_STRINGS.items():
        keras.losses.get(name)  # Keras knows the identifier
        assert type(build_object(Obj("loss", name, {}, (), False), reduction="none")).__name__ == cls
    for name in N.METRIC_STRINGS:
        if name not in ("accuracy", "acc"):
            keras.metrics.get(name)
    for name in N.CALLBACKS:
        assert isinstance(build_object(Obj("callback", name, {}, (), True)), keras.callbacks.Callback)
    for name in N.REFUSED_CALLBACKS:
        assert name not in N.CALLBACKS


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_names = st.sampled_from(["adam", "Adam", "mse", "accuracy", "probs", "value", "EarlyStopping", "LambdaCallback",
                          "val_loss", "npz", "csv", "image_dir", "dataset", "digits", "images", "labels", "x", ""])
_scalars = st.one_of(_names, st.integers(-3, 100), st.floats(-1, 2, allow_nan=False), st.booleans(), st.none())
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_names, inner, max_size=3)), max_leaves=8)
_keys = st.sampled_from(["data", "loss", "metrics", "optimizer", "callbacks", "checkpoint", "loss_weights",
                         "batch_size", "epochs", "seed", "distribute", "mixed_precision", "source", "path", "x", "y",
                         "type", "monitor", "validation_split", "validation", "name", "learning_rate"])
_sections = st.dictionaries(_keys, st.one_of(_values, st.dictionaries(_keys, _values, max_size=4)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sections)
def test_random_train_sections_fail_only_with_netspec_errors(section):
    import yaml

    text = spec_text("") + textwrap.indent(yaml.safe_dump(section, default_flow_style=True, width=10 ** 6), "  ") \
        if section else spec_text("").replace("train:\n", "")
    try:
        train_config(netspec.load(text))
    except netspec.NetspecError:
        pass
