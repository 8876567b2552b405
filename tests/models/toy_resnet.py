"""The toy ResNet of the Keras functional API guide ("A toy ResNet model").

Two convolutions and max pooling, two residual blocks of two same-padded convolutions joined by
``layers.add``, a last convolution, global pooling, a Dense, Dropout and the logits. Sizes are
small (16/32 filters instead of 32/64).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/guides/functional_api/#a-toy-resnet-model"
SPEC = "tests/models/toy_resnet.yaml"


def build() -> keras.Model:
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(16, 3, activation="relu")(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)

    x = layers.Conv2D(32, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])

    x = layers.Conv2D(32, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])

    x = layers.Conv2D(32, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")
