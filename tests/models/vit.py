"""Image classification with a Vision Transformer (keras.io example by Khalid Salama).

``Patches`` cuts the image with ``keras.ops.image.extract_patches`` and reshapes the result to
``(batch, patches, patch_size * patch_size * channels)``; ``PatchEncoder`` adds a Dense projection
and an Embedding of the position ids ``ops.arange(0, num_patches)``. Then Transformer blocks
(LayerNormalization, MultiHeadAttention(x1, x1), residual, LayerNormalization, a gelu MLP,
residual), a LayerNormalization, Flatten, Dropout, an MLP head and the logits. The weightless steps
are expression layers; the example's data augmentation (which needs ``adapt``) is left to the data
pipeline. Sizes are small: 32 px images, 8 px patches, 2 blocks.
"""

from __future__ import annotations

import keras
from keras import layers

from _common import expr

SOURCE = "https://keras.io/examples/vision/image_classification_with_vision_transformer/"
SPEC = "specs/vit.yaml"

IMAGE, PATCH, PROJECTION, HEADS, LAYERS, CLASSES = 32, 8, 16, 2, 2, 10
NUM_PATCHES = (IMAGE // PATCH) ** 2
TRANSFORMER_UNITS = [PROJECTION * 2, PROJECTION]
MLP_HEAD_UNITS = [32, 16]


def mlp(x, hidden_units, dropout_rate):
    for units in hidden_units:
        x = layers.Dense(units, activation=keras.activations.gelu)(x)
        x = layers.Dropout(dropout_rate)(x)
    return x


def build() -> keras.Model:
    inputs = keras.Input(shape=(IMAGE, IMAGE, 3), name="image")
    patches = expr("ops.reshape(ops.image.extract_patches(x, size), [-1, n, size * size * 3])", {"x": inputs},
                   size=PATCH, n=NUM_PATCHES)
    positions = expr("ops.arange(n)", {"x": patches}, n=NUM_PATCHES)
    projected = layers.Dense(units=PROJECTION)(patches)
    encoded_patches = projected + layers.Embedding(input_dim=NUM_PATCHES, output_dim=PROJECTION)(positions)
    for _ in range(LAYERS):
        x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
        attention_output = layers.MultiHeadAttention(num_heads=HEADS, key_dim=PROJECTION, dropout=0.1)(x1, x1)
        x2 = layers.Add()([attention_output, encoded_patches])
        x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
        x3 = mlp(x3, hidden_units=TRANSFORMER_UNITS, dropout_rate=0.1)
        encoded_patches = layers.Add()([x3, x2])
    representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
    representation = layers.Flatten()(representation)
    representation = layers.Dropout(0.5)(representation)
    features = mlp(representation, hidden_units=MLP_HEAD_UNITS, dropout_rate=0.5)
    logits = layers.Dense(CLASSES)(features)
    return keras.Model(inputs=inputs, outputs=logits, name="vit")
