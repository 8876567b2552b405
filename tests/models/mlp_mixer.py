"""MLP-Mixer from "Image classification with modern MLP models" (keras.io example by Khalid Salama).

Patches (``extract_patches``, an expression layer here), a Dense patch embedding, then Mixer
blocks: one LayerNormalization (applied twice: the example's ``self.normalize``, a shared layer),
a token-mixing MLP over the transposed patches and a channel-mixing MLP, each a nested
``keras.Sequential`` of Dense(gelu), Dense and Dropout, each with a residual. The example's
``ops.transpose(x, axes=(0, 2, 1))`` is ``Permute((2, 1))``. Sizes are small (16 px, 4 px patches).
"""

from __future__ import annotations

import keras
from keras import layers

from _common import expr

SOURCE = "https://keras.io/examples/vision/mlp_image_classification/"
SPEC = "tests/models/mlp_mixer.yaml"

IMAGE, PATCH, EMBED, BLOCKS, CLASSES = 16, 4, 16, 2, 10
NUM_PATCHES = (IMAGE // PATCH) ** 2


def mlp_mixer_layer(inputs, num_patches, hidden_units, dropout_rate):
    mlp1 = keras.Sequential([layers.Dense(units=num_patches, activation="gelu"),
                             layers.Dense(units=num_patches), layers.Dropout(rate=dropout_rate)])
    mlp2 = keras.Sequential([layers.Dense(units=num_patches, activation="gelu"),
                             layers.Dense(units=hidden_units), layers.Dropout(rate=dropout_rate)])
    normalize = layers.LayerNormalization(epsilon=1e-6)
    x = normalize(inputs)
    x_channels = layers.Permute((2, 1))(x)
    mlp1_outputs = layers.Permute((2, 1))(mlp1(x_channels))
    x = layers.Add()([mlp1_outputs, inputs])
    x_patches = normalize(x)
    mlp2_outputs = mlp2(x_patches)
    return layers.Add()([x, mlp2_outputs])


def build() -> keras.Model:
    inputs = layers.Input(shape=(IMAGE, IMAGE, 3), name="image")
    patches = expr("ops.reshape(ops.image.extract_patches(x, size), [-1, n, size * size * 3])", {"x": inputs},
                   size=PATCH, n=NUM_PATCHES)
    x = layers.Dense(units=EMBED)(patches)
    for _ in range(BLOCKS):
        x = mlp_mixer_layer(x, NUM_PATCHES, EMBED, 0.2)
    representation = layers.GlobalAveragePooling1D()(x)
    representation = layers.Dropout(rate=0.2)(representation)
    logits = layers.Dense(CLASSES)(representation)
    return keras.Model(inputs=inputs, outputs=logits, name="mlp_mixer")
