"""The docs are true: every Keras/spec pair in docs/from-keras.md compiles to the same model."""

from __future__ import annotations

import re

import pytest

import netspec

from conftest import ROOT

FENCE = re.compile(r"```(python|yaml)\n(.*?)```", re.S)


def pairs(path):
    """(python, yaml) for each python block that builds ``model`` and the yaml block after it."""
    blocks = FENCE.findall(path.read_text(encoding="utf-8"))
    out = []
    for (lang, code), (next_lang, spec) in zip(blocks, blocks[1:]):
        if lang == "python" and next_lang == "yaml" and re.search(r"^model = ", code, re.M):
            out.append((code, spec))
    return out


FROM_KERAS = pairs(ROOT / "docs" / "from-keras.md")
IDS = [re.search(r"^name: (\w+)", spec, re.M).group(1) for _, spec in FROM_KERAS]


def test_the_guide_has_its_examples():
    assert len(FROM_KERAS) >= 7


@pytest.mark.parametrize("code, spec_text", FROM_KERAS, ids=IDS)
def test_keras_code_and_spec_agree(code, spec_text, keras, tmp_path, monkeypatch):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(spec_text)
    trust = "plugins:" in spec_text
    if trust:
        # The plugin file is the class part of the example; netspec registers it when it loads the
        # spec. The Keras side runs the same code with registration off, so the name is not taken twice.
        (tmp_path / "my_layers.py").write_text(code.split("\ninputs = ")[0])
        monkeypatch.setattr(netspec, "register_layer", lambda cls: cls)
    scope: dict = {"keras": keras}
    exec(compile(code, "docs/from-keras.md", "exec"), scope)  # the doc's own code, trusted
    monkeypatch.undo()
    reference = scope["model"]
    built = netspec.load(spec_file, trust_plugins=trust).build()
    assert built.count_params() == reference.count_params()
    structure = getattr(reference, "_outputs_struct", None)  # a Sequential has none
    if isinstance(structure, dict):
        assert list(built.output) == list(structure)
    assert [tuple(t.shape) for t in built.outputs] == [tuple(t.shape) for t in reference.outputs]


def test_layer_catalogue_is_up_to_date():
    from netspec.devtools.docgen import DEFAULT_OUTPUT, render

    assert DEFAULT_OUTPUT.read_text(encoding="utf-8") == render(), "docs/layers.md is stale: run `make docs`"


def test_layer_catalogue_lists_every_layer_and_required_argument():
    from netspec.schema.catalog import Catalog
    from netspec.devtools.docgen import render

    catalog = Catalog()
    text = render(catalog)
    for name in catalog.core:
        assert f"\n### {name}\n" in text
    assert "| **units** | an integer >= 1 |" in text and "| **filters** |" in text
    assert "Lambda](#lambda)" not in text


def test_cli_reference_is_up_to_date():
    from netspec.devtools.docgen import CLI_OUTPUT, render_cli

    assert CLI_OUTPUT.read_text(encoding="utf-8") == render_cli(), "docs/cli.md is stale: run `make docs`"
