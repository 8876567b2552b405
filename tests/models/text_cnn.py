"""Text classification from scratch (keras.io example by Mark Omernick and fchollet): a 1D convnet.

Embedding, Dropout, two strided Conv1D(7), GlobalMaxPooling1D, a hidden Dense, Dropout and a
sigmoid ``predictions`` layer. Sizes are small (vocabulary 500, 32 tokens, 16 filters).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/nlp/text_classification_from_scratch/"
SPEC = "tests/models/text_cnn.yaml"

MAX_FEATURES, EMBEDDING_DIM, LENGTH = 500, 16, 32


def build() -> keras.Model:
    inputs = keras.Input(shape=(LENGTH,), dtype="int64", name="tokens")
    x = layers.Embedding(MAX_FEATURES, EMBEDDING_DIM)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(16, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(16, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    return keras.Model(inputs, predictions, name="text_cnn")
