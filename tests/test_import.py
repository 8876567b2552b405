"""netspec import: Keras models to readable specs that compile back to the same architecture.

The round trip runs over every keras.applications model (weights=None), built symbolically on both
sides (no weight memory), and compares each layer's class, config, parameters, output shapes and
inputs. Small hand-made models check the rest: files loaded in safe mode, shared layers, nested
models, object arguments, operations as expressions (numerically), user layers and refusals.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import netspec
from netspec.cli import main
from netspec.importing.check import compare
from netspec.importing.importer import import_model, keras_app, keras_app_names, load_keras_file
from netspec.kerasapi import producer
from netspec.errors import ModelImportError

# keras.applications models a spec cannot express, and why (each is asserted below).
NOT_EXPRESSIBLE = {
    name: "LayerScale" for name in ("ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge")
}
# The biggest graphs run in the slow set (still part of `make test`).
SLOW = {"NASNetLarge", "NASNetMobile", "EfficientNetV2L", "EfficientNetV2M", "EfficientNetB7", "EfficientNetB6",
        "InceptionResNetV2", "DenseNet201", "DenseNet169", "ResNet152V2", "ResNet152", "EfficientNetB5",
        "ResNet101V2", "ResNet101", "EfficientNetV2S"}


def _apps():
    import keras  # noqa: F401  (session import; listing needs it)

    return keras_app_names()


APPS = _apps()


def test_every_application_is_listed():
    assert len(APPS) == 40 and "ResNet50" in APPS and "ConvNeXtXLarge" in APPS


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in APPS])
def test_keras_applications_round_trip(keras, name):
    source = keras_app(name)
    if name in NOT_EXPRESSIBLE:
        with pytest.raises(ModelImportError) as e:
            import_model(source)
        assert NOT_EXPRESSIBLE[name] in str(e.value) and "register" in (e.value.hint or "")
        return
    imported = import_model(source)
    spec = netspec.load(imported.text)  # validates: the schema, refs, params
    result = compare(source.model, imported, spec)
    assert result.ok, result.summary()
    assert result.spec_params == source.model.count_params()
    assert result.layers == imported.layers == len(source.model.operations) - len(source.model.inputs) \
        - sum(isinstance(op, keras.Model) for op in source.model.operations)
    if imported.layers > 100:  # the deep models fold: far fewer lines than layers
        assert imported.blocks and imported.lines < 0.65 * imported.layers, (imported.lines, imported.layers)


def test_resnet50_folds_like_the_hand_written_spec(keras):
    imported = import_model(keras_app("ResNet50"))
    text = imported.text
    spec = netspec.load(text)
    assert len(spec.graph.nodes) == 176 and imported.lines < 60
    # as written by hand: conv-bn units, bottlenecks (x4 expansion derived from filters), and stages of
    # one projecting bottleneck and `count` identity bottlenecks repeated
    assert '"${4 * filters}"' in text and "repeat: $count}" in text
    assert "{name: conv4, block: conv, filters: 256, count: 5}" in text
    assert {"conv_bn", "conv_bn_relu"} <= set(imported.blocks) and imported.blocks["conv"] == 4
    assert "conv1_pad" in text and "predictions" in text  # Keras names are kept where they can be


def test_mobilenet_v2_operations_and_residuals(keras):
    imported = import_model(keras_app("MobileNetV2"))
    spec = netspec.load(imported.text)
    assert sum(1 for n in spec.graph.nodes if n.type == "Add") == 10
    assert imported.lines < 70


# ---------------------------------------------------------------------------------------------
# Small models.


def _small(keras):
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=keras.initializers.HeNormal(seed=3),
                            kernel_regularizer=keras.regularizers.L2(1e-4), name="c1")(inp)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.ReLU(6.0, name="r")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="small")


def test_keras_file_to_spec_with_the_cli(keras, tmp_path, capsys):
    path = tmp_path / "small.keras"
    _small(keras).save(path)
    out = tmp_path / "specs" / "small.yaml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "verified: same architecture as the source" in said
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=")  # editors find the schema
    assert "kernel_initializer: {type: HeNormal, seed: 3}" in text
    assert "kernel_regularizer: {type: L2, l2: 0.0001}" in text
    assert "{name: r, type: ReLU, max_value: 6.0}" in text
    assert main(["validate", str(out)]) == 0
    spec = netspec.load(out)
    model = spec.build()
    assert model.count_params() == _small(keras).count_params()


def test_numerics_match_with_the_weights_copied(keras):
    """Same architecture means same function: copy the weights over by name, compare outputs."""
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    inp = keras.Input((6,), name="v")
    a = keras.layers.Dense(4, name="d1")(inp)
    b = keras.layers.Dense(4, name="d2")(inp)
    x = CustomScaleLayer(0.17, name="scale")([a, b])          # a weightless keras.applications layer
    y = keras.layers.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0)  # keras.ops operations (hard sigmoid)
    out = keras.layers.Dense(2, name="head")(-y)
    source = keras.Model(inp, out)
    imported = import_model(source)
    assert '"a + b * 0.17"' in imported.text and '"x + 3.0"' in imported.text and '"-x"' in imported.text
    ours = netspec.load(imported.text).build()
    for layer in source.layers:
        if layer.weights:
            ours.get_layer(imported.names[layer.name]).set_weights(layer.get_weights())
    data = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    np.testing.assert_allclose(ours.predict(data, verbose=0), source.predict(data, verbose=0), rtol=1e-6, atol=1e-6)
    assert compare(source, imported).ok


def test_shared_layers_become_share_nodes(keras):
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    embed = keras.layers.Dense(4, name="embed")
    out = keras.layers.Subtract(name="diff")([embed(left), embed(right)])
    source = keras.Model([left, right], out)
    imported = import_model(source)
    assert "{name: embed_1, share: embed, in: right}" in imported.text
    result = compare(source, imported)
    assert result.ok and result.spec_params == 24


def test_nested_model_called_once_is_a_block_used_once(keras):
    """A nested model called once becomes a block used once (tests/test_import_nested.py has the
    forms); its layers are named <model>_<layer>, as netspec names the layers of a block instance,
    so the built model imports back to the same spec."""
    inner = keras.Sequential([keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")], name="inner")
    inp = keras.Input((3,), name="x")
    source = keras.Model(inp, keras.layers.Dense(1, name="out")(inner(inp)))
    imported = import_model(source)
    assert "  inner:\n    nodes:\n      - {name: a, type: Dense" in imported.text
    assert "  - {name: inner, block: inner}\n" in imported.text
    assert [n.name for n in netspec.load(imported.text).graph.nodes] == ["inner_a", "inner_b", "out"]
    assert compare(source, imported).ok


def test_sequential_models(keras):
    source = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                               keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)], name="seq")
    imported = import_model(source)
    assert "repeat: 2" in imported.text  # two identical Dense in a chain
    assert compare(source, imported).ok


def test_user_layers_registered_with_netspec(keras):
    @netspec.register_layer(name="ImportedScale")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = keras.Input((3,), name="x")
    source = keras.Model(inp, Scale(3.0, name="s")(Scale(name="t")(inp)))
    imported = import_model(source)
    assert "{name: t, type: ImportedScale}" in imported.text
    assert "{name: s, type: ImportedScale, factor: 3.0}" in imported.text
    assert compare(source, imported).ok


@pytest.mark.parametrize("make, fragment", [
    (lambda k, x: k.layers.Lambda(lambda t: t * 2, name="double")(x), "'double' is a Lambda"),
    (lambda k, x: k.ops.sum(x, axis=1, keepdims=True), "keras.ops Sum"),
])
def test_layers_a_spec_cannot_express_are_named(keras, make, fragment):
    inp = keras.Input((4,), name="x")
    source = keras.Model(inp, keras.layers.Dense(2, name="d")(make(keras, inp)))
    with pytest.raises(ModelImportError) as e:
        import_model(source)
    assert fragment in str(e.value)


def test_unregistered_custom_layer_is_named_with_the_fix(keras):
    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x

    inp = keras.Input((4,), name="x")
    with pytest.raises(ModelImportError) as e:
        import_model(keras.Model(inp, Mystery(name="m")(inp)))
    assert "'m'" in str(e.value) and "Mystery" in str(e.value) and "register_layer" in e.value.hint


def test_a_user_object_named_like_a_keras_one_is_refused_not_swapped(keras):
    """A user regularizer registered as ``my>L2`` (computing another penalty) is not written as Keras's L2: the
    rebuilt model would train with a different loss while the architecture check still passed."""
    @keras.saving.register_keras_serializable(package="netspec_test")
    class L2(keras.regularizers.Regularizer):
        def __init__(self, l2=0.01):
            self.l2 = l2

        def __call__(self, x):
            return self.l2 * keras.ops.sum(keras.ops.abs(x))

        def get_config(self):
            return {"l2": self.l2}

    inp = keras.Input((4,), name="x")
    with pytest.raises(ModelImportError) as e:
        import_model(keras.Model(inp, keras.layers.Dense(2, name="d", kernel_regularizer=L2(0.5))(inp)))
    assert "layer 'd': kernel_regularizer: regularizer 'netspec_test>L2' is a user class, not Keras's own" in str(e.value)
    keras.saving.get_custom_objects().pop("netspec_test>L2")


def test_an_array_in_an_initializer_is_refused_with_the_layer(keras, tmp_path, capsys):
    """PointNet's T-net: Dense(bias_initializer=Constant(identity matrix)). A spec's Constant holds a number: the
    import refuses, naming the layer, instead of writing a spec that does not load (an internal error before)."""
    inp = keras.Input((4,), name="x")
    dense = keras.layers.Dense(4, name="tnet", bias_initializer=keras.initializers.Constant(np.eye(2).flatten()))
    path = tmp_path / "tnet.keras"
    keras.Model(inp, dense(inp)).save(path)
    assert main(["import", str(path), "-o", str(tmp_path / "x.yaml")]) == 1
    err = capsys.readouterr().err
    assert "layer 'tnet': bias_initializer: initializer Constant has value=" in err and "Traceback" not in err
    assert not (tmp_path / "x.yaml").exists()


def test_a_lookup_imports_its_written_vocabulary_and_refuses_an_adapted_one(keras):
    """IntegerLookup(vocabulary=[...]) imports (Keras's derived vocabulary_size is left out); an adapted
    vocabulary, which Keras keeps out of the config, is refused as that, not as a vocabulary_size argument."""
    inp = keras.Input((1,), name="x", dtype="int64")
    written = keras.layers.IntegerLookup(vocabulary=[0, 1, 2, 3, 4], output_mode="one_hot", name="lookup")
    imported = import_model(keras.Model(inp, written(inp)))
    assert "vocabulary: [0, 1, 2, 3, 4]" in imported.text and "vocabulary_size" not in imported.text
    adapted = keras.layers.IntegerLookup(output_mode="one_hot", name="learned")
    adapted.adapt(np.array([[3], [7], [7]]))
    with pytest.raises(ModelImportError) as e:
        import_model(keras.Model(inp, adapted(inp)))
    assert "layer 'learned': IntegerLookup has a vocabulary of 3 learned by adapt()" in str(e.value)


def test_an_adapted_discretization_is_refused_at_its_layer(keras):
    """Keras's config of an adapted Discretization holds both num_bins and bin_boundaries, which its constructor
    refuses together: a located refusal, not an internal error."""
    inp = keras.Input((1,), name="x")
    disc = keras.layers.Discretization(num_bins=5, name="disc")
    disc.adapt(np.random.default_rng(0).normal(size=(64, 1)).astype("float32"))
    with pytest.raises(ModelImportError) as e:
        import_model(keras.Model(inp, disc(inp)))
    assert "layer 'disc': Discretization does not rebuild from its own config's arguments" in str(e.value)


def test_a_regularizer_from_a_module_named_like_keras_is_a_user_class(keras):
    """Only keras and keras.* are Keras's own modules: a user L2 in a module 'keras_myregs' is not swapped."""
    import types

    module = types.ModuleType("keras_myregs")
    exec("import keras\n"
         "class L2(keras.regularizers.Regularizer):\n"
         "    def __init__(self, l2=0.01):\n        self.l2 = l2\n"
         "    def __call__(self, x):\n        return 100 * self.l2 * keras.ops.sum(keras.ops.abs(x))\n"
         "    def get_config(self):\n        return {'l2': self.l2}\n", module.__dict__)
    inp = keras.Input((4,), name="x")
    with pytest.raises(ModelImportError) as e:
        import_model(keras.Model(inp, keras.layers.Dense(2, name="d", kernel_regularizer=module.L2(0.5))(inp)))
    assert "regularizer 'L2' is a user class, not Keras's own" in str(e.value)


def test_keras_file_with_lambda_is_refused_by_safe_mode(keras, tmp_path, capsys):
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t + 1, name="plus")(inp))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelImportError) as e:
        load_keras_file(str(path))
    assert "safe mode" in str(e.value) and "expr" in e.value.hint and "safe_mode=False" not in str(e.value)
    assert main(["import", str(path), "-o", str(tmp_path / "x.yaml")]) == 1
    assert "safe mode" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_cli_keras_app_json_and_usage(keras, tmp_path, capsys):
    out = tmp_path / "vgg.yaml"
    assert main(["import", "--keras-app", "VGG16", "-o", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True and report["params"] == 138_357_544 and report["layers"] == 22
    assert main(["import", "--keras-app", "ResNet5O"]) == 1
    assert "did you mean 'ResNet50'?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["import", "--keras-app", "VGG16", "-o", str(tmp_path / "x.txt")])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["import"])


def test_flat_import_keeps_every_keras_name(keras):
    source = keras_app("MobileNet")
    imported = import_model(source, fold_blocks=False)
    spec = netspec.load(imported.text)
    source_names = {op.name for op in source.model.operations} - {producer(t).name for t in source.model.inputs}
    assert {n.name for n in spec.graph.nodes} == source_names


CONVNEXT_PLUGIN = '''"""Register keras.applications' ConvNeXt LayerScale as a netspec user layer."""
import netspec
from keras.src.applications.convnext import LayerScale

netspec.register_layer(LayerScale)
'''


@pytest.mark.slow
def test_convnext_imports_with_a_user_plugin(tmp_path):
    """ConvNeXt's LayerScale (a weight per channel) is no core layer; registered as a user layer by a
    plugin, the model imports and verifies. Run as a user would, in its own process: registering
    Keras's own class changes how Keras serializes it, which must not leak into the test session."""
    import subprocess
    import sys

    (tmp_path / "convnext_layers.py").write_text(CONVNEXT_PLUGIN)
    out = tmp_path / "convnext_tiny.yaml"
    run = subprocess.run([sys.executable, "-m", "netspec", "import", "--keras-app", "ConvNeXtTiny",
                          "--plugins", "convnext_layers.py", "-o", str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "verified: same architecture as the source: 156 layers, 28,589,128 parameters" in run.stdout
    text = out.read_text()
    assert "plugins: [convnext_layers.py]" in text and "type: LayerScale" in text
    check = subprocess.run([sys.executable, "-m", "netspec", "validate", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 1 and "--trust-plugins" in check.stderr  # the plugin runs only when trusted


# -- generated text is data: one emitter, no plugin trust ------------------------------------------

HOSTILE_TEXT = [
    ("newline-plugins", "m\nplugins: [evil.py]\n#.keras"),
    ("yaml-specials", "a: b &x *y !tag #c ---  '\"{[|>%@`"),
    ("unicode-breaks", "m\u2028x\x85y\ufeff\rz\u2029"),
    ("document-markers", "m\n---\nnetspec: 1\n...\n"),
    ("control", "\x00\x07\x1b[31m\x7f\x9f"),
    ("ambiguous", "no"),
    ("number-like", "0x1F"),
    ("dollar", "${__import__('os')}"),
    ("empty", ""),
    ("astral", "\U0001F600 tail "),
    ("long", "word " * 200),
]


@pytest.mark.parametrize("text", [t[1] for t in HOSTILE_TEXT], ids=[t[0] for t in HOSTILE_TEXT])
def test_every_emitted_string_reads_back_as_itself(text):
    from netspec.source.loader import load_yaml
    from netspec.importing.specwriter import quoted, scalar, text_entry

    doc = "\n".join(["a: " + quoted(text), "b: " + scalar(text), "c: " + scalar([text, {text: text}]),
                     *text_entry("d", text)]) + "\n"
    data = load_yaml(doc).data
    assert list(data) == ["a", "b", "c", "d"]
    assert data["a"] == data["b"] == data["d"] == text and data["c"] == [text, {text: text}]


def test_name_regexes_match_whole_strings():
    from netspec.importing.foldgraph import is_name, spec_name

    assert not is_name("relu\n") and not is_name("é") and is_name("relu_1")
    for raw in ["relu\n", "m\nplugins: [x]", "&a *b", "", "0", "é\u202e", "x" * 500]:
        assert is_name(spec_name(raw)) and len(spec_name(raw)) <= 64


def _tiny_named(tmp_path, name: str):
    from hostile_setups import importing as hostile

    (tmp_path / "evil.py").write_text("open('RAN', 'w').write('x')\n")
    path = hostile._archive(tmp_path / name, hostile._relu_model())
    return path


@pytest.mark.parametrize("name", [t[1] + ".keras" for t in HOSTILE_TEXT[:4]], ids=[t[0] for t in HOSTILE_TEXT[:4]])
def test_hostile_file_name_is_data_in_the_spec(keras, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    path = _tiny_named(tmp_path, name)
    out = tmp_path / "out.yaml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    assert not (tmp_path / "RAN").exists()
    spec = netspec.load(out)  # no trust needed: nothing was injected
    assert "plugins" not in spec.document.data
    assert spec.document.data["description"] == f"Imported by `netspec import` from {name} (1 layers)."


def test_import_self_check_loads_without_plugin_trust(keras, monkeypatch):
    import netspec.spec

    seen = []
    real = netspec.spec.load

    def spy(text, *a, trust_plugins=False, **k):
        seen.append(trust_plugins)
        return real(text, *a, trust_plugins=trust_plugins, **k)

    monkeypatch.setattr(netspec.spec, "load", spy)
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.ReLU(name="r")(inp))
    imported = import_model(model, plugins=["my_layers.py"])
    assert "plugins: [my_layers.py]" in imported.text
    assert seen and not any(seen)
    assert compare(model, imported).ok and not any(seen)


def test_generated_spec_with_other_plugins_is_refused():
    from netspec.importing.check import load_generated

    bare = "netspec: 1\nname: m\ninputs:\n  x: [4]\nnodes:\n  - {type: ReLU}\n"
    good = bare.replace("inputs:", "plugins: [a.py]\ninputs:")
    assert load_generated(good, ["a.py"], bare).name == "m"
    for text, plugins in [(good, []), (good.replace("[a.py]", "[a.py, evil.py]"), ["a.py"]),
                          (bare.replace("name: m", "name: m2"), [])]:
        with pytest.raises(ModelImportError, match="refusing to write the imported spec"):
            load_generated(text, plugins, bare)


def test_name_option_must_be_a_name(keras):
    inp = keras.Input((4,), name="x")
    with pytest.raises(ModelImportError, match="--name"):
        import_model(keras.Model(inp, keras.layers.ReLU()(inp)), name="x\nplugins: [e.py]")


def test_hostile_model_and_layer_names_become_valid_names(keras, tmp_path):
    from hostile_setups import importing as hostile

    for which in ("model", "input", "layer", "unicode", "empty"):
        path = hostile.hostile_model_names(tmp_path, tmp_path, which)
        imported = import_model(load_keras_file(str(path)))
        assert "plugins" not in netspec.load(imported.text).document.data  # valid names, nothing injected


# -- messages tell the truth: one loader for import and export -------------------------------------


def test_tampered_expression_shows_netspecs_reason_at_import(keras, tmp_path, capsys):
    import zipfile

    built = netspec.load(netspec_specs() / "gelu_mixer.yaml").build()
    src = tmp_path / "g.keras"
    built.save(src)
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    layer = next(lay for lay in config["config"]["layers"] if lay["class_name"] == "Expression")
    layer["config"]["expression"] = "__import__('os').system('true')"
    members["config.json"] = json.dumps(config).encode()
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    for command in (["import", str(bad), "-o", str(tmp_path / "x.yaml")],
                    ["export", str(bad), "--target", "onnx-cpu", "-o", str(tmp_path / "x.onnx")]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert f"refusing stored expression layer {layer['name']!r}" in err and "bad.keras" in err
        assert "Lambda" not in err and "expr:" not in err
    assert not (tmp_path / "x.yaml").exists()


def test_netspec_built_model_with_expressions_imports_back(keras, tmp_path):
    built = netspec.load(netspec_specs() / "gelu_mixer.yaml").build()
    path = tmp_path / "g.keras"
    built.save(path)
    source = load_keras_file(str(path))
    imported = import_model(source)
    assert "expr: " in imported.text and compare(source.model, imported).ok


def netspec_specs():
    from conftest import SPECS

    return SPECS


def test_output_names_never_hold_control_characters(keras, tmp_path):
    from netspec.cli.commands import file_stem

    path = _tiny_named(tmp_path, "m.keras")
    with pytest.raises(SystemExit) as e:
        main(["import", str(path), "-o", str(tmp_path / "a\nb.yaml")])
    assert e.value.code == 2 and [p.name for p in tmp_path.iterdir() if "\n" in p.name] == []
    assert file_stem("/x/m\nplugins: [e]\r#.keras") == "m_plugins:_[e]_#"


# ---------------------------------------------------------------------------------------------
# Names a build gives back: the folding names blocks and nodes so that importing netspec's own build
# of an imported spec names them the same way again.


@pytest.mark.parametrize("prefix, words", [
    ("conv2_block1", ["block"]),                       # a Keras hierarchy: its last level's word
    ("conv2", ["conv"]),
    ("block_3", ["block"]),                            # an instance netspec numbered after its block
    ("block_residual2", ["block"]),                    # a variant word and its number are not the block's
    ("stage_1_main_se", ["se", "main_se"]),            # an instance nested in a build: its parents' names
    ("layer_normalization_b_0", ["normalization", "layer_normalization"]),
    ("block_7", ["block"]),
    ("12", []),
])
def test_block_name_words_of_a_prefix(prefix, words):
    from netspec.importing.foldnames import stem_words

    assert stem_words(prefix.split("_")) == words


def test_taken_names_get_a_digit_not_a_token():
    """``relu_b`` would put the layers of node relu_b inside the name group of node relu."""
    from itertools import islice

    from netspec.importing.foldnames import pick_name, variants

    assert list(islice(variants("relu"), 2)) == ["relu2", "relu3"]
    assert list(islice(variants("conv1"), 2)) == ["conv1b", "conv1c"]
    assert pick_name(["relu"], None, {"relu", "relu2"}) == "relu3"
