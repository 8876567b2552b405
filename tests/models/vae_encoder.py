"""The encoder of the keras.io "Variational AutoEncoder" example (fchollet).

Two strided Conv2D, Flatten, a Dense, then ``z_mean`` and ``z_log_var`` Dense heads and a
``Sampling`` layer (the reparameterisation trick) drawing ``z``; the model returns all three. The
example's ``Sampling`` class is the seed plugin's (specs/seed_layers.py, which also adds the KL
term), with a fixed seed so two builds draw the same noise. Sizes are small (16x16 images).
"""

from __future__ import annotations

import keras
from keras import layers

from _common import SEED_PLUGIN, seed_layer

SOURCE = "https://keras.io/examples/generative/vae/"
SPEC = "tests/models/vae_encoder.yaml"
PLUGINS = [SEED_PLUGIN]

LATENT = 2


def build() -> keras.Model:
    sampling = seed_layer("Sampling")
    encoder_inputs = keras.Input(shape=(16, 16, 1), name="image")
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = sampling(seed=1337, name="z")([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
