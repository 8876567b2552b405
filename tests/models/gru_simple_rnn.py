"""The first Sequential RNN of the Keras guide "Working with RNNs".

A ``keras.Sequential``: Embedding, a GRU returning its sequence, a SimpleRNN, and a Dense. Sizes
are small (vocabulary 1000, 16 dimensions, 16 and 8 units instead of 64, 256 and 128).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/guides/working_with_rnns/#builtin-rnn-layers-a-simple-example"
SPEC = "tests/models/gru_simple_rnn.yaml"


def build() -> keras.Model:
    model = keras.Sequential(name="gru_simple_rnn")
    model.add(keras.Input(shape=(None,), dtype="int32", name="tokens"))
    model.add(layers.Embedding(input_dim=1000, output_dim=16))
    model.add(layers.GRU(16, return_sequences=True))
    model.add(layers.SimpleRNN(8))
    model.add(layers.Dense(10))
    return model
