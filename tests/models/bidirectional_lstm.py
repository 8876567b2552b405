"""Bidirectional LSTM on IMDB (keras.io example by fchollet): two stacked Bidirectional LSTMs."""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/nlp/bidirectional_lstm_imdb/"
SPEC = "tests/models/bidirectional_lstm.yaml"

MAX_FEATURES, EMBED, UNITS = 500, 16, 8


def build() -> keras.Model:
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(MAX_FEATURES, EMBED)(inputs)
    x = layers.Bidirectional(layers.LSTM(UNITS, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(UNITS))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="bidirectional_lstm")
