"""The autoencoder of the Keras functional API guide, "All models are callable, just like layers".

An ``encoder`` model (Conv2D x2, MaxPooling2D, Conv2D x2, GlobalMaxPooling2D) and a ``decoder``
model (Reshape, Conv2DTranspose x2, UpSampling2D, Conv2DTranspose x2), each a functional
``keras.Model``, called in turn inside a third model. The spec writes each nested model as a block.
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/guides/functional_api/#all-models-are-callable-just-like-layers"
SPEC = "tests/models/nested_functional.yaml"


def build() -> keras.Model:
    encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    encoder_output = layers.GlobalMaxPooling2D()(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")

    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    x = layers.Reshape((4, 4, 1))(decoder_input)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")

    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    return keras.Model(autoencoder_input, decoded_img, name="autoencoder")
