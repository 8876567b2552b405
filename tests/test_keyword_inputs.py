"""Issue 14: keyword inputs take lists (``initial_state: [enc.1, enc.2]``), bare refs bind as lists,
RNN ``initial_state`` is counted at ``check``, and ``check`` proves the model runs its first batch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import netspec
from conftest import ROOT, SPECS, error_for

HEAD = """\
netspec: 1
name: k
inputs:
  a: {shape: [null, 8]}
  b: {shape: [null, 8]}
nodes:
"""


def spec_text(nodes: str, head: str = HEAD) -> str:
    return head + textwrap.indent(textwrap.dedent(nodes), "  ")


# -- the seq2seq example against a hand-written Keras model -----------------------------------------


def keras_seq2seq(keras):
    """The Keras "character-level recurrent sequence-to-sequence" example's training model
    (keras.io/examples/nlp/lstm_seq2seq), at the sizes of specs/seq2seq_lstm.yaml."""
    encoder_inputs = keras.Input(shape=(None, 32), name="encoder_inputs")
    _, state_h, state_c = keras.layers.LSTM(64, return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, 40), name="decoder_inputs")
    decoder = keras.layers.LSTM(64, return_sequences=True, name="decoder")
    out = decoder(decoder_inputs, initial_state=[state_h, state_c])
    out = keras.layers.Dense(40, activation="softmax", name="decoder_dense")(out)
    return keras.Model([encoder_inputs, decoder_inputs], out)


def test_seq2seq_spec_is_the_keras_example(keras):
    spec = netspec.load(SPECS / "seq2seq_lstm.yaml")
    model, reference = spec.build(), keras_seq2seq(keras)
    assert model.count_params() == reference.count_params() == 54_312
    assert [tuple(w.shape) for w in model.weights] == [tuple(w.shape) for w in reference.weights]
    reference.set_weights(model.get_weights())
    rng = np.random.default_rng(1)
    feeds = [rng.standard_normal((2, 5, 32)).astype("float32"), rng.standard_normal((2, 7, 40)).astype("float32")]
    ours, theirs = model.predict(feeds, verbose=0), reference.predict(feeds, verbose=0)
    assert ours.shape == (2, 7, 40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# -- binding -----------------------------------------------------------------------------------------

BLOCK_STATES = """\
netspec: 1
name: k
inputs:
  a: {shape: [null, 8]}
  b: {shape: [null, 8]}
blocks:
  enc:
    nodes:
      - {name: lstm, type: LSTM, units: 16, return_state: true}
    outputs: {h: lstm.1, c: lstm.2}
nodes:
"""

WORKING = [  # (case, head, nodes): each checks (its first batch runs) and builds
    ("list of two refs", HEAD, """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: [enc.1, enc.2]}}
        """),
    ("bare ref to a two-output block", BLOCK_STATES, """\
        - {name: enc, block: enc, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: enc}}
        """),
    ("named outputs of a block in a list", BLOCK_STATES, """\
        - {name: enc, block: enc, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: [enc.h, enc.c]}}
        """),
    ("GRU state as a list of one", HEAD, """\
        - {name: enc, type: GRU, units: 16, return_state: true, in: a}
        - {name: dec, type: GRU, units: 16, in: {sequences: b, initial_state: [enc.1]}}
        """),
    ("GRU state as one ref", HEAD, """\
        - {name: enc, type: GRU, units: 16, return_state: true, in: a}
        - {name: dec, type: GRU, units: 16, in: {sequences: b, initial_state: enc.1}}
        """),
    ("Bidirectional takes forward then backward states", HEAD, """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - name: dec
          type: Bidirectional
          layer: {type: LSTM, units: 16}
          in: {sequences: b, initial_state: [enc.1, enc.2, enc.1, enc.2]}
        """),
]


@pytest.mark.parametrize("case,head,nodes", WORKING, ids=[c[0] for c in WORKING])
def test_keyword_lists_build_and_run(keras, case, head, nodes):
    spec = netspec.load(spec_text(nodes, head))
    result = spec.check()
    assert result.warnings == []
    model = spec.build()
    feeds = [np.ones((2, 3, 8), "float32"), np.ones((2, 4, 8), "float32")]
    assert model.predict(feeds, verbose=0).shape[0] == 2


WRONG_COUNT = [  # (case, nodes, expected text, hint text or None)
    ("bare ref to an LSTM with return_state", """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: enc}}
        """, "LSTM takes 2 state tensors (h, c) as initial_state; received 3 (enc)",
     "initial_state: [enc.1, enc.2]"),
    ("one state for an LSTM", """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: [enc.1]}}
        """, "LSTM takes 2 state tensors (h, c) as initial_state; received 1 (enc.1)", None),
    ("two states for a GRU", """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: GRU, units: 16, in: {sequences: b, initial_state: [enc.1, enc.2]}}
        """, "GRU takes 1 state tensor (h) as initial_state; received 2 (enc.1, enc.2)", None),
    ("two states for a Bidirectional LSTM", """\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: Bidirectional, layer: {type: LSTM, units: 16}, in: {sequences: b, initial_state: [enc.1, enc.2]}}
        """, "Bidirectional takes 4 state tensors (h, c, forward then backward) as initial_state; received 2", None),
]


@pytest.mark.parametrize("stage", ["check", "build"])
@pytest.mark.parametrize("case,nodes,text,hint", WRONG_COUNT, ids=[c[0] for c in WRONG_COUNT])
def test_wrong_state_count_is_located(keras, case, nodes, text, hint, stage):
    err = error_for(spec_text(nodes), stage=stage)
    assert text in err.message and "node 'dec'" in err.message
    assert err.path == ("nodes", 1, "in", "initial_state")
    assert err.line == 8 and err.column > 1
    assert (hint is None and err.hint is None) or (hint is not None and hint in err.hint)


def test_list_bound_to_an_expression_variable_is_located():
    err = error_for(spec_text("""\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: e, expr: "x * 2", in: {x: [enc.1, enc.2]}}
        """))
    assert err.path == ("nodes", 1, "in", "x") and err.line == 8
    assert "expression variable 'x' names 2 tensors" in err.message


def test_list_with_an_unknown_ref_is_located_at_its_item():
    err = error_for(spec_text("""\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: [enc.1, encx]}}
        """))
    assert err.path == ("nodes", 1, "in", "initial_state", 1) and "unknown ref 'encx'" in err.message


def test_schema_accepts_lists_only_as_mapping_values():
    err = error_for(spec_text("""\
        - {name: dec, type: LSTM, units: 16, in: [[a, b]]}
        """))
    assert err.kind == "schema" and err.path[:3] == ("nodes", 0, "in")


# -- the first batch ---------------------------------------------------------------------------------

RAISES_ON_VALUES = """\
netspec: 1
name: k
inputs: {x: [4]}
nodes:
  - {name: d, type: Dense, units: 4}
  - {name: boom, type: RaisesOnValues}
  - {name: out, type: Dense, units: 2}
"""


@pytest.fixture(scope="module")
def raises_on_values(keras):
    """A user layer whose symbolic build uses compute_output_shape (never its call), and whose call raises."""
    from netspec.schema import registry

    @netspec.register_layer(name="RaisesOnValues")
    class RaisesOnValues(keras.layers.Layer):
        def call(self, x):
            raise ValueError("the values are wrong")

        def compute_output_shape(self, input_shape):
            return input_shape

    yield RaisesOnValues
    registry.LAYERS.pop("RaisesOnValues", None)


def test_first_batch_failure_is_located_at_the_node(raises_on_values):
    spec = netspec.load(RAISES_ON_VALUES)
    spec.build()  # the symbolic build accepts it
    with pytest.raises(netspec.NetspecError) as info:
        spec.check()
    err = info.value
    assert err.path == ("nodes", 1) and err.line == 6
    assert "node 'boom': builds but fails on the first batch: the values are wrong" in err.message
    assert "--no-run" in err.hint


def test_first_batch_opt_out(raises_on_values):
    result = netspec.load(RAISES_ON_VALUES).check(run=False)
    assert result.total_params == 4 * 4 + 4 + 4 * 2 + 2


def test_first_batch_catches_the_initial_state_crash(keras, monkeypatch):
    """Without the state count (the crash of issue 14), the first batch still refuses the model, located."""
    from netspec.build import recurrent

    monkeypatch.setattr(recurrent, "state_count", lambda layer: None)
    text = spec_text("""\
        - {name: enc, type: LSTM, units: 16, return_state: true, in: a}
        - {name: dec, type: LSTM, units: 16, in: {sequences: b, initial_state: enc}}
        """)
    netspec.load(text).build()  # Keras's symbolic trace accepts it
    err = error_for(text, stage="check")
    assert err.line == 8 and err.path == ("nodes", 1)
    assert "node 'dec': builds but fails on the first batch" in err.message


def test_first_batch_over_the_budget_is_refused_before_it_runs(keras):
    from netspec.budget import Budget

    spec = netspec.load(spec_text("- {name: d, type: Dense, units: 4, in: a}\n"))
    tight = Budget(max_activation_bytes=10**9, batch=10**6)
    with pytest.raises(netspec.NetspecError) as info:
        spec.check(tight)
    assert "first batch" in info.value.message and "--no-run" in info.value.hint


def test_unknown_dims_the_model_cannot_take_are_noted_not_run(keras):
    text = textwrap.dedent("""\
        netspec: 1
        name: k
        inputs: {x: [null, null, 3]}
        nodes:
          - {type: Conv2D, filters: 4, kernel_size: 9}
          - {type: GlobalAveragePooling2D}
        """)
    result = netspec.load(text).check()
    assert any("first batch was not run" in w and "example_shape" in w for w in result.warnings)
    with_example = text.replace("{x: [null, null, 3]}", "{x: {shape: [null, null, 3], example_shape: [16, 16, 3]}}")
    assert netspec.load(with_example).check().warnings == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_cli_check_no_run(tmp_path, raises_on_values):
    plugin = tmp_path / "layers.py"
    plugin.write_text(textwrap.dedent("""\
        import keras
        import netspec

        @netspec.register_layer(name="RaisesOnValues")
        class RaisesOnValues(keras.layers.Layer):
            def call(self, x):
                raise ValueError("the values are wrong")

            def compute_output_shape(self, input_shape):
                return input_shape
        """))
    spec = tmp_path / "s.yaml"
    spec.write_text(RAISES_ON_VALUES.replace("inputs:", "plugins: [layers.py]\ninputs:"))
    failed = run_cli("check", str(spec), "--trust-plugins")
    assert failed.returncode != 0 and f"{spec}:7:" in failed.stderr and "first batch" in failed.stderr
    ok = run_cli("check", str(spec), "--trust-plugins", "--no-run", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True


def test_first_batch_generates_every_numeric_dtype(keras):
    result = netspec.load(textwrap.dedent("""\
        netspec: 1
        name: dtypes
        inputs:
          ids: {shape: [null], dtype: int32}
          h: {shape: [4], dtype: bfloat16}
          m: {shape: [4], dtype: bool}
        nodes:
          - {name: emb, type: Embedding, input_dim: 10, output_dim: 4, in: ids}
          - {name: pool, type: GlobalAveragePooling1D}
          - {name: hf, expr: "ops.cast(h, 'float32') + ops.cast(m, 'float32')", in: {h: h, m: m}}
          - {name: s, type: Add, in: [pool, hf]}
        """)).check()
    assert result.warnings == [] and result.total_params == 40


def test_lists_bind_block_inputs_and_other_keywords(keras):
    result = netspec.load(textwrap.dedent("""\
        netspec: 1
        name: lists
        inputs:
          a: {shape: [4]}
          b: {shape: [4]}
        blocks:
          cat:
            inputs: [x]
            nodes:
              - {type: Concatenate}
        nodes:
          - {name: c, block: cat, in: {x: [a, b]}}
          - {name: c2, type: Concatenate, in: {inputs: [a, b]}}
          - {type: Add, in: [c, c2]}
        """)).check()
    assert result.rows[-1].shape == [8]
