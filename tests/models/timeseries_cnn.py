"""Timeseries classification from scratch (keras.io example by hfawaz): a fully convolutional network.

Three Conv1D(64, 3, same) + BatchNormalization + ReLU blocks, GlobalAveragePooling1D and a softmax
Dense. Sizes are small (32 steps, 16 filters instead of 500 steps and 64).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/timeseries/timeseries_classification_from_scratch/"
SPEC = "tests/models/timeseries_cnn.yaml"

STEPS, FILTERS, CLASSES = 32, 16, 2


def build() -> keras.Model:
    input_layer = keras.Input((STEPS, 1), name="series")
    conv1 = layers.Conv1D(filters=FILTERS, kernel_size=3, padding="same")(input_layer)
    conv1 = layers.BatchNormalization()(conv1)
    conv1 = layers.ReLU()(conv1)
    conv2 = layers.Conv1D(filters=FILTERS, kernel_size=3, padding="same")(conv1)
    conv2 = layers.BatchNormalization()(conv2)
    conv2 = layers.ReLU()(conv2)
    conv3 = layers.Conv1D(filters=FILTERS, kernel_size=3, padding="same")(conv2)
    conv3 = layers.BatchNormalization()(conv3)
    conv3 = layers.ReLU()(conv3)
    gap = layers.GlobalAveragePooling1D()(conv3)
    output_layer = layers.Dense(CLASSES, activation="softmax")(gap)
    return keras.Model(inputs=input_layer, outputs=output_layer, name="timeseries_cnn")
