"""The end-to-end transfer learning model of the Keras guide "Transfer learning & fine-tuning".

A ``keras.Sequential`` of augmentation layers (RandomFlip, RandomRotation) runs inside the model,
then Rescaling to [-1, 1], a frozen base model called with ``training=False``, global pooling,
Dropout and a Dense logit. The guide's base is Xception with ImageNet weights; here it is a small
``keras.Sequential`` convolutional base (so the corpus stays small and needs no download).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/guides/transfer_learning/#an-endtoend-example-finetuning-an-image-classification-model-on-a-cats-vs-dogs-dataset"
SPEC = "tests/models/nested_sequential.yaml"


def build() -> keras.Model:
    data_augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)], name="data_augmentation")
    base_model = keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
        ],
        name="base_model",
    )
    base_model.trainable = False
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = data_augmentation(inputs)
    x = layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
    x = base_model(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name="transfer")
