"""Image similarity with a Siamese network and a contrastive loss (keras.io example by Mehdi).

One embedding network (a functional ``keras.Model``: BatchNormalization, two tanh Conv2D +
AveragePooling2D, Flatten, BatchNormalization, a tanh Dense) is applied to both images, with
shared weights; the Euclidean distance of the two embeddings (the example's ``Lambda``, here an
expression layer) goes through BatchNormalization to a sigmoid Dense.
"""

from __future__ import annotations

import keras
from keras import layers

from _common import expr

SOURCE = "https://keras.io/examples/vision/siamese_contrastive/"
SPEC = "tests/models/siamese.yaml"


def euclidean_distance(x, y):
    # the example: ops.sqrt(ops.maximum(ops.sum(ops.square(x - y), axis=1, keepdims=True), epsilon()))
    return expr("ops.sqrt(ops.maximum(ops.sum(ops.square(x - y), axis=1, keepdims=True), 1e-07))",
                {"x": x, "y": y}, name="distance")


def build() -> keras.Model:
    inputs = layers.Input((28, 28, 1))
    x = layers.BatchNormalization()(inputs)
    x = layers.Conv2D(4, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(16, (5, 5), activation="tanh")(x)
    x = layers.AveragePooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(10, activation="tanh")(x)
    embedding_network = keras.Model(inputs, x, name="embedding")

    input_1 = layers.Input((28, 28, 1), name="left")
    input_2 = layers.Input((28, 28, 1), name="right")
    tower_1 = embedding_network(input_1)
    tower_2 = embedding_network(input_2)
    merge_layer = euclidean_distance(tower_1, tower_2)
    normal_layer = layers.BatchNormalization()(merge_layer)
    output_layer = layers.Dense(1, activation="sigmoid")(normal_layer)
    return keras.Model(inputs=[input_1, input_2], outputs=output_layer, name="siamese")
