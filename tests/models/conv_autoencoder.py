"""Convolutional autoencoder for image denoising (keras.io example by Santiago L. Valdarrama).

Encoder: two Conv2D(relu, same) + MaxPooling2D(same); decoder: two strided Conv2DTranspose(relu)
and a sigmoid Conv2D back to one channel. Sizes are small (16x16 images, 8 filters instead of
28x28 and 32).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/vision/autoencoder/"
SPEC = "tests/models/conv_autoencoder.yaml"

FILTERS = 8


def build() -> keras.Model:
    inputs = keras.Input(shape=(16, 16, 1), name="image")
    # Encoder
    x = layers.Conv2D(FILTERS, (3, 3), activation="relu", padding="same")(inputs)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(FILTERS, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    # Decoder
    x = layers.Conv2DTranspose(FILTERS, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(FILTERS, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)
    return keras.Model(inputs, x, name="autoencoder")
