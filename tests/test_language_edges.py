"""Language edges found by writing public Keras examples as specs (issue 14): each case failed before."""

from __future__ import annotations

import textwrap

import pytest

import netspec

from conftest import error_for


def spec_text(body: str) -> str:
    return "netspec: 1\nname: edge\n" + textwrap.dedent(body)


# -- integer `axes` keys --------------------------------------------------------------------------------

@pytest.mark.parametrize("axes", ["{-1: 64}", "{2: 64}", '{"-1": 64}', "{-1: 64, 1: 8}"])
def test_input_spec_axes_take_integer_keys(keras, axes):
    spec = netspec.load(spec_text(f"""\
        inputs: {{x: [8, 64]}}
        nodes:
          - {{name: d, type: Dense, units: 4, input_spec: {{axes: {axes}}}}}
        """))
    assert spec.build().get_layer("d").input_spec is not None


def test_integer_axes_key_is_checked_with_its_location(keras):
    err = error_for(spec_text("""\
        inputs: {x: [8, 64]}
        nodes:
          - {name: d, type: Dense, units: 4, input_spec: {axes: {-1: 32}}}
        """), stage="check")
    assert err.kind == "shape" and err.json_path == "$.nodes[0].input_spec"
    assert "expected axis -1 of input shape to have value 32" in err.message


@pytest.mark.parametrize("text, needle", [
    ("{-1: 8, '-1': 8}", "duplicate key '-1'"),
    ("{x: 8}", "invalid key"),
])
def test_bad_axes_keys_still_refused(text, needle):
    err = error_for(spec_text(f"""\
        inputs: {{x: [8, 64]}}
        nodes:
          - {{name: d, type: Dense, units: 4, input_spec: {{axes: {text}}}}}
        """))
    assert needle in err.message and err.line == 5


def test_integer_keys_elsewhere_still_refused():
    err = error_for(spec_text("""\
        inputs: {x: [8]}
        nodes:
          - {name: d, type: Dense, units: 4, 1: 2}
        """))
    assert "keys must be strings" in err.message
