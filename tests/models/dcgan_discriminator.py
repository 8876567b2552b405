"""The DCGAN discriminator of "DCGAN to generate face images" (keras.io example by fchollet).

A ``keras.Sequential``: three strided Conv2D + LeakyReLU(0.2), Flatten, Dropout(0.2) and a sigmoid
Dense. Sizes are small (32x32 images, 16/32/32 filters instead of 64x64 and 64/128/128).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/generative/dcgan_overriding_train_step/"
SPEC = "tests/models/dcgan_discriminator.yaml"


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3), name="image"),
            layers.Conv2D(16, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )
