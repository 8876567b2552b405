"""netspec.load_model: safe_mode loading with errors users can act on; atomic saving.

Untrusted ``.keras`` files: the archive is checked and the config costed before Keras builds
anything (netspec.source.kerasfile, netspec.source.kerascost). The cost model is held to Keras's own parameter
counts on small real models, and every hostile archive of the corpus's setup module is refused
here too, in milliseconds and without TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile

import pytest

import netspec
from netspec.build.compiler import DEFAULT_BUDGET
from netspec.source.kerascost import cost_config
from netspec.errors import ModelFileError
from netspec.source.kerasfile import open_archive
from netspec.build.saving import atomic_path, check_model_file

from conftest import SPECS
from hostile_setups import importing as hostile

# one worker runs this module: its module-scoped fixtures are costly to make twice (make test: pytest -n 2)
pytestmark = pytest.mark.xdist_group("test_saving")


@pytest.fixture(scope="module")
def pam_file(keras, tmp_path_factory):
    path = tmp_path_factory.mktemp("pam") / "pam.keras"
    netspec.load(SPECS / "danet_pam.yaml", trust_plugins=True).build().save(path)
    return path


def test_user_layers_need_their_plugin(pam_file):
    with pytest.raises(netspec.NetspecError) as info:
        # A fresh Keras name table would be needed to see the miss; the registry is process-wide,
        # so hide the classes the plugin registered.
        import keras

        saved = keras.saving.get_custom_objects().copy()
        keras.saving.get_custom_objects().clear()
        try:
            netspec.load_model(pam_file)
        finally:
            keras.saving.get_custom_objects().update(saved)
    assert "which is not registered" in info.value.message
    assert "plugins" in info.value.hint


def test_loads_with_plugins(pam_file):
    model = netspec.load_model(pam_file, plugins=(str(SPECS / "seed_layers.py"),))
    assert model.count_params() == 11_317


@pytest.mark.parametrize("name, fragment", [
    ("missing.keras", "no such model file"),
    ("spec.yaml", "expected a .keras model file"),
    ("garbage.keras", "not a .keras archive"),
])
def test_bad_files(keras, tmp_path, name, fragment):
    path = tmp_path / name
    if name != "missing.keras":
        path.write_bytes(b"not a zip archive")
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load_model(path)
    assert fragment in info.value.message


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.keras"]


def test_atomic_path_gives_plain_file_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


# -- hostile archives: refused before Keras, fast, naming the file ---------------------------------

HOSTILE = [
    ("dense-14gb", lambda t: hostile.huge_layer(t, None, "dense", "yes"), "layer 'big' ('Dense') has 3,600,060,000"),
    ("dense-lying-shapes", lambda t: hostile.huge_layer(t, None, "dense", "no"), "over the parameter budget"),
    ("conv", lambda t: hostile.huge_layer(t, None, "conv", "no"), "('Conv2D') has 22,500,050,000"),
    ("embedding", lambda t: hostile.huge_layer(t, None, "embedding", "yes"), "('Embedding') has 64,000,000,000"),
    ("lstm", lambda t: hostile.huge_layer(t, None, "lstm", "no"), "('LSTM') has"),
    ("bidirectional", lambda t: hostile.huge_layer(t, None, "bidirectional", "yes"), "over the parameter budget"),
    ("flatten", lambda t: hostile.huge_layer(t, None, "flatten"), "('Dense') has 5,000,005,000"),
    ("sum", lambda t: hostile.huge_layer(t, None, "sum"), "the model reaches"),
    ("nested", lambda t: hostile.huge_layer(t, None, "nested"), "over the parameter budget"),
    ("sequential", lambda t: hostile.huge_layer(t, None, "sequential"), "over the parameter budget"),
    ("fake-weights", lambda t: hostile.fake_weights(t, None), "but its weights member holds only"),
    ("weights-bomb", lambda t: hostile.bomb(t, None, "model.weights.h5", "64"), "compression bomb"),
    ("config-declared", lambda t: hostile.declared_size(t, None), "config.json declares 209,715,200 bytes"),
    ("traversal", lambda t: hostile.bad_members(t, None, "traversal"), "has a '..' component"),
    ("absolute", lambda t: hostile.bad_members(t, None, "absolute"), "has an absolute path"),
    ("backslash", lambda t: hostile.bad_members(t, None, "backslash"), "has a backslash"),
    ("control", lambda t: hostile.bad_members(t, None, "control"), "has a control character"),
    ("many", lambda t: hostile.bad_members(t, None, "many"), "members; a .keras file has a handful"),
    ("duplicate", lambda t: hostile.bad_members(t, None, "duplicate"), "appears twice"),
    ("nested-json", lambda t: hostile.bad_config(t, None, "nested"), "nested too deeply"),
    ("garbage-json", lambda t: hostile.bad_config(t, None, "garbage"), "is not valid JSON"),
    ("array-json", lambda t: hostile.bad_config(t, None, "array"), "is not a JSON object"),
    ("bigint-json", lambda t: hostile.bad_config(t, None, "bigint"), "is not valid JSON"),
    ("not-a-zip", lambda t: hostile.not_a_zip(t, None), "not a .keras archive"),
]


@pytest.mark.parametrize("make, fragment", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_archives_are_refused_before_keras(tmp_path, make, fragment):
    path = make(tmp_path)
    start = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        check_model_file(path)
    assert time.perf_counter() - start < 1.0
    assert fragment in info.value.message and path.name in info.value.message


def test_the_checks_run_without_tensorflow(tmp_path):
    path = hostile.huge_layer(tmp_path, None, "dense", "yes")
    code = ("import sys; from netspec.build.saving import check_model_file\n"
            "try:\n    check_model_file(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60).stdout
    assert out.split() == ["ModelFileError", "False", "False"]


@pytest.mark.parametrize("make, fragment, hint", [
    (lambda t: hostile.lambda_layer(t, None, "layer"), "layer 'plus' is a 'Lambda' layer", True),
    (lambda t: hostile.lambda_layer(t, None, "initializer"), "layer 'd' ('Dense') holds a 'Lambda' object", False),
    (lambda t: hostile.foreign_class(t, None, "os"), "from module 'os'", False),
    (lambda t: hostile.tampered_expression(t, None, "code"), "refusing stored expression layer 'scaled'", False),
    (lambda t: hostile.tampered_expression(t, None, "dtype"), "refusing stored expression layer 'scaled': dtype",
     False),
], ids=["lambda", "lambda-nested", "foreign-module", "tampered-code", "tampered-dtype"])
def test_refusals_say_why_and_hint_expr_only_for_lambda(keras, tmp_path, make, fragment, hint):
    path = make(tmp_path)
    with pytest.raises(netspec.NetspecError) as info:
        netspec.load_model(path)
    assert fragment in info.value.message and path.name in info.value.message
    assert ("expr:" in (info.value.hint or "")) is hint


def test_clean_hand_written_expression_model_loads(keras, tmp_path):
    model = netspec.load_model(hostile.tampered_expression(tmp_path, None, "clean"))
    assert model.count_params() == 0


def test_weights_file_of_export_goes_through_the_same_checks(keras, tmp_path):
    from netspec.export.pipeline import load_model as export_load

    spec = netspec.load("netspec: 1\nname: s\ninputs:\n  x: [4]\nnodes:\n  - {type: Dense, units: 2}\n")
    path = hostile.huge_layer(tmp_path, None, "dense", "no")
    with pytest.raises(ModelFileError, match="over the parameter budget"):
        export_load(spec, str(path))


# -- the cost model against Keras's own parameter counts ------------------------------------------


def _models(keras):
    L = keras.layers
    x = keras.Input((16, 16, 3), name="img")
    y = L.Conv2D(8, 3, strides=2, padding="same")(x)
    y = L.BatchNormalization()(y)
    y = L.SeparableConv2D(12, 3)(y)
    y = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(y)
    y = L.MaxPooling2D()(y)
    y = L.Conv2DTranspose(4, 3, strides=2)(y)
    y = L.Flatten()(y)
    y = L.Dense(10)(y)
    conv = keras.Model(x, y)
    t = keras.Input((7,), dtype="int32", name="tok")
    e = L.Embedding(50, 8)(t)
    a = L.LSTM(6, return_sequences=True)(e)
    b = L.Bidirectional(L.GRU(3))(a)
    m = L.MultiHeadAttention(2, 4)(e, e)
    g = L.GlobalAveragePooling1D()(L.LayerNormalization()(m))
    c = L.Concatenate()([b, g, L.SimpleRNN(5)(e)])
    rnn = keras.Model(t, L.Dense(3)(c))
    inner = keras.Sequential([keras.Input((6,)), L.Dense(5), L.Dense(4)], name="inner")
    z = keras.Input((6,))
    nested = keras.Model(z, L.Dense(2)(inner(z)))
    seq = keras.Sequential([keras.Input((20,)), L.Dense(8), L.Dropout(0.1), L.Dense(1)])
    return {"conv": conv, "rnn": rnn, "nested": nested, "sequential": seq}


def test_cost_model_matches_keras_parameter_counts(keras, tmp_path):
    for name, model in _models(keras).items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        archive = open_archive(path)
        cost = cost_config(archive.config, path.name, DEFAULT_BUDGET.max_params)
        assert cost.params == model.count_params(), name


def test_budget_is_the_compilers(keras, tmp_path):
    path = tmp_path / "m.keras"
    _models(keras)["sequential"].save(path)
    check_model_file(path)  # under the default budget
    with pytest.raises(ModelFileError, match="over the parameter budget of 100"):
        check_model_file(path, max_params=100)


def test_saved_netspec_models_pass_the_checks(keras, tmp_path):
    for spec in ("gelu_mixer.yaml", "lenet5.yaml", "two_heads.yaml"):
        path = tmp_path / spec.replace(".yaml", ".keras")
        built = netspec.load(SPECS / spec).build()
        built.save(path)
        _, cost = check_model_file(path)
        assert cost.params == built.count_params(), spec
        assert netspec.load_model(path).count_params() == built.count_params()


def test_archive_members_are_read_under_a_cap(tmp_path):
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", b"")
    archive = open_archive(path)
    assert archive.sizes == {"metadata.json": 2, "config.json": archive.sizes["config.json"], "model.weights.h5": 0}


@pytest.mark.parametrize("name", ["ResNet50", "EfficientNetB0", "InceptionV3", "DenseNet121"])
def test_cost_model_matches_keras_applications(keras, name):
    from netspec.importing.importer import keras_app

    model = keras_app(name).model  # symbolic: no weight memory
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    start = time.perf_counter()
    assert cost_config(config, name, DEFAULT_BUDGET.max_params).params == model.count_params()
    assert time.perf_counter() - start < 0.5


def test_mutated_configs_fail_only_as_model_file_errors():
    """Random values dropped anywhere into real-shaped configs: the walkers never crash."""
    import copy
    import random

    from netspec.source.kerascost import check_objects

    bases = [hostile._relu_model(), hostile._functional([hostile._input("x", [4]), hostile._expression("e", "x", [4])],
                                                         "x", "e"),
             json.loads(json.dumps(hostile._functional(
                 [hostile._input("x", [8]), hostile._layer("Dense", "d", {"units": 3}, "x", [8])], "x", "d")))]
    values = [None, True, -1, 0, 10 ** 40, 1.5, "x", [], {}, [None], [-5, 3], {"class_name": "Lambda"},
              [[1, 2], [3]], ["a", 0, 0], [10 ** 9] * 3, {"class_name": "Sequential", "config": {"layers": 3}}]

    def paths(o, path=()):
        yield path
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in items:
            yield from paths(v, path + (k,))

    rnd = random.Random(11)
    for _ in range(1500):
        config = copy.deepcopy(rnd.choice(bases))
        for _ in range(rnd.randint(1, 4)):
            *head, last = rnd.choice([p for p in paths(config) if p])
            target = config
            for k in head:
                target = target[k]
            target[last] = copy.deepcopy(rnd.choice(values))
        try:
            cost_config(config, "f", 10 ** 9)
            check_objects(config, "f", lambda *_: False)
        except ModelFileError:
            pass


def test_export_and_predict_of_a_keras_file_take_its_plugins(pam_file, tmp_path):
    """A .keras file with user layers exports when the command line names the plugin that registers them (as
    ``netspec import --plugins`` does); without it, the refusal's hint names that option, which those commands
    now have (they had none, and the hint named one they refused)."""
    out = tmp_path / "pam.onnx"
    argv = [sys.executable, "-m", "netspec", "export", str(pam_file), "--target", "onnx-cpu", "-o", str(out),
            "--no-latency"]
    refused = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert "which is not registered" in refused.stderr and "export, predict and evaluate: --plugins" in refused.stderr
    assert not out.exists()
    done = subprocess.run(argv + ["--plugins", str(SPECS / "seed_layers.py")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0 and "gate: passed" in done.stdout, done.stderr[-2000:]
    assert out.is_file()
