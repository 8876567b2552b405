"""Simple MNIST convnet (keras.io example by fchollet): a ``keras.Sequential`` classifier.

Two Conv2D + MaxPooling2D, Flatten, Dropout(0.5) and a softmax Dense. Sizes are small (8/16 filters).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/vision/mnist_convnet/"
SPEC = "tests/models/mnist_convnet.yaml"


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1), name="image"),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_convnet",
    )
