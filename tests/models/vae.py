"""The whole model of the keras.io "Variational AutoEncoder" example (fchollet): its encoder and
decoder models, each a nested functional model.

The example builds ``encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z])`` (two strided
Conv2D, Flatten, Dense, the ``z_mean``/``z_log_var`` heads and a ``Sampling`` layer) and
``decoder = keras.Model(latent_inputs, decoder_outputs)`` (Dense, Reshape, Conv2DTranspose up to the
image), then trains them in a ``keras.Model`` subclass whose ``train_step`` calls
``decoder(encoder(data)[2])``. A subclass's graph is code, so here the two models are composed
functionally, returning the reconstruction and both heads (what the KL term reads). The example's
``Sampling`` class is the seed plugin's (specs/seed_layers.py), with a fixed seed so two builds draw
the same noise. Sizes are small (16x16 images). The encoder is a block with one input and three
outputs; the decoder reads its third.
"""

from __future__ import annotations

import keras
from keras import layers

from _common import SEED_PLUGIN, seed_layer

SOURCE = "https://keras.io/examples/generative/vae/"
SPEC = "tests/models/vae.yaml"
PLUGINS = [SEED_PLUGIN]

LATENT = 2


def build() -> keras.Model:
    sampling = seed_layer("Sampling")
    encoder_inputs = keras.Input(shape=(16, 16, 1), name="encoder_image")
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same", name="conv_1")(encoder_inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same", name="conv_2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = sampling(seed=1337, name="z")([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(LATENT,), name="z_sampling")
    x = layers.Dense(4 * 4 * 16, activation="relu", name="expand")(latent_inputs)
    x = layers.Reshape((4, 4, 16), name="unflatten")(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu", strides=2, padding="same", name="up_1")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", strides=2, padding="same", name="up_2")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same", name="image_out")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    image = keras.Input(shape=(16, 16, 1), name="image")
    z_mean, z_log_var, z = encoder(image)
    return keras.Model(image, [decoder(z), z_mean, z_log_var], name="vae")
