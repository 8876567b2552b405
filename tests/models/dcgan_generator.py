"""The DCGAN generator of "DCGAN to generate face images" (keras.io example by fchollet).

A ``keras.Sequential``: a latent vector, a Dense layer reshaped to a small feature map, three
strided Conv2DTranspose + LeakyReLU(0.2) upsamplings and a sigmoid Conv2D to RGB. Sizes are small
(a 32-d latent to 32x32 images instead of 128-d to 64x64).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/generative/dcgan_overriding_train_step/"
SPEC = "tests/models/dcgan_generator.yaml"

LATENT = 32


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(LATENT,), name="latent"),
            layers.Dense(4 * 4 * LATENT),
            layers.Reshape((4, 4, LATENT)),
            layers.Conv2DTranspose(16, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
