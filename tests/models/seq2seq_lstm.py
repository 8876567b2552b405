"""Character-level sequence to sequence with LSTMs (keras.io example by fchollet).

The encoder LSTM returns its states (``return_state=True``); the decoder LSTM starts from them
(``initial_state=[state_h, state_c]``) and a softmax Dense reads its sequence. The spec is the
showcase specs/seq2seq_lstm.yaml (the same sizes: 32 input tokens, 40 output tokens, 64 units).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/nlp/lstm_seq2seq/"
SPEC = "specs/seq2seq_lstm.yaml"

LATENT, IN_TOKENS, OUT_TOKENS = 64, 32, 40


def build() -> keras.Model:
    encoder_inputs = keras.Input(shape=(None, IN_TOKENS), name="encoder_inputs")
    encoder = layers.LSTM(LATENT, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, OUT_TOKENS), name="decoder_inputs")
    decoder_lstm = layers.LSTM(LATENT, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_outputs = layers.Dense(OUT_TOKENS, activation="softmax")(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], decoder_outputs, name="seq2seq_lstm")
