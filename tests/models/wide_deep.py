"""Wide & Deep (keras.io example "Structured data learning with Wide, Deep, and Cross networks", Khalid Salama).

The wide part is every feature encoded sparsely (numbers as they are, categories one-hot) and batch
normalized; the deep part embeds each category (``output_dim = int(sqrt(vocabulary_size))``),
concatenates the numbers, and runs Dense + BatchNormalization + ReLU + Dropout blocks; both are
concatenated into a softmax. The example's string lookups are left to the data pipeline: the
categorical inputs here are integer ids (shape ``()``, as in the example). Sizes are small.
"""

from __future__ import annotations

import math

import keras
from keras import layers

SOURCE = "https://keras.io/examples/structured_data/wide_deep_cross_networks/"
SPEC = "tests/models/wide_deep.yaml"

NUMERIC = ["elevation", "slope"]
CATEGORICAL = {"soil_type": 16, "wilderness_area": 10}
HIDDEN_UNITS, DROPOUT, CLASSES = [16, 16], 0.5, 7


def create_model_inputs():
    inputs = {name: layers.Input(name=name, shape=(), dtype="float32") for name in NUMERIC}
    inputs.update({name: layers.Input(name=name, shape=(), dtype="int32") for name in CATEGORICAL})
    return inputs


def encode_inputs(inputs, use_embedding=False):
    encoded = []
    for name, tensor in inputs.items():
        if name in CATEGORICAL:
            vocabulary_size = CATEGORICAL[name]
            if use_embedding:
                embedding_dims = int(math.sqrt(vocabulary_size))
                encoded.append(layers.Embedding(input_dim=vocabulary_size, output_dim=embedding_dims)(tensor))
            else:
                encoded.append(layers.CategoryEncoding(num_tokens=vocabulary_size, output_mode="one_hot")(tensor))
        else:
            encoded.append(layers.Reshape((1,))(tensor))
    return layers.concatenate(encoded)


def build() -> keras.Model:
    inputs = create_model_inputs()
    wide = encode_inputs(inputs)
    wide = layers.BatchNormalization()(wide)
    deep = encode_inputs(inputs, use_embedding=True)
    for units in HIDDEN_UNITS:
        deep = layers.Dense(units)(deep)
        deep = layers.BatchNormalization()(deep)
        deep = layers.ReLU()(deep)
        deep = layers.Dropout(DROPOUT)(deep)
    merged = layers.concatenate([wide, deep])
    outputs = layers.Dense(units=CLASSES, activation="softmax")(merged)
    return keras.Model(inputs=list(inputs.values()), outputs=outputs, name="wide_deep")
