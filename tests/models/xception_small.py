"""The small Xception of "Image classification from scratch" (keras.io example by fchollet).

Rescaling, a strided entry convolution, then for each size a block of ReLU + SeparableConv2D +
BatchNormalization twice and a strided max pool, added to a strided 1x1 projection of the previous
block's output (the residual); a last SeparableConv2D, pooling, Dropout and a logit. Sizes are
small (32 px, sizes 16/32/48 instead of 256/512/728).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/vision/image_classification_from_scratch/"
SPEC = "tests/models/xception_small.yaml"

SIZES, ENTRY, EXIT = [16, 32, 48], 16, 64


def build() -> keras.Model:
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(ENTRY, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x  # Set aside residual
    for size in SIZES:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        # Project residual
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])  # Add back residual
        previous_block_activation = x  # Set aside next residual
    x = layers.SeparableConv2D(EXIT, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1, activation=None)(x)
    return keras.Model(inputs, outputs, name="xception_small")
