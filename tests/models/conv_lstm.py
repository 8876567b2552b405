"""Next-frame video prediction with convolutional LSTMs (keras.io example by Amogh Joshi).

Three ConvLSTM2D layers (5x5, 3x3, 1x1; relu; returning sequences) with BatchNormalization between
them, and a sigmoid Conv3D over time and space. Sizes are small (16x16 frames, 8 filters).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/vision/conv_lstm/"
SPEC = "tests/models/conv_lstm.yaml"
UNKNOWN_DIM = 4  # frames in the test batch


def build() -> keras.Model:
    inp = layers.Input(shape=(None, 16, 16, 1), name="frames")
    x = layers.ConvLSTM2D(filters=8, kernel_size=(5, 5), padding="same", return_sequences=True,
                          activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=8, kernel_size=(3, 3), padding="same", return_sequences=True,
                          activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=8, kernel_size=(1, 1), padding="same", return_sequences=True,
                          activation="relu")(x)
    x = layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid", padding="same")(x)
    return keras.models.Model(inp, x, name="conv_lstm")
