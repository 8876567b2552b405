"""A U-Net with concatenate skips, in plain Keras: the same model as specs/unet.yaml.

Modelled on the down_block/up_block U-Net of AureliiiieP/Keras-WaveletTransform (models/unet.py):
a down block is two 3x3 ReLU convolutions whose output is both the skip and the input of a 2x2
max pooling; the bottom is two 3x3 convolutions; an up block upsamples by 2, concatenates the skip
in front, and applies two 3x3 convolutions; a 1x1 convolution makes the output. Four levels, at
small widths (8, 16, 32, 64; 128 at the bottom) on a 64x64x1 input, so tests are fast.
"""

from __future__ import annotations

import keras

SOURCE = "https://github.com/AureliiiieP/Keras-WaveletTransform/blob/master/models/unet.py"
SPEC = "specs/unet.yaml"

LEVELS, WIDTH, CLASSES = 4, 8, 1


def _conv(filters: int) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu")


def build() -> keras.Model:
    """The reference U-Net."""
    inputs = keras.Input(shape=(64, 64, 1), name="image")
    x, skips = inputs, []
    for level in range(LEVELS):
        skip = _conv(WIDTH * 2**level)(_conv(WIDTH * 2**level)(x))
        skips.append(skip)
        x = keras.layers.MaxPooling2D(2)(skip)
    x = _conv(WIDTH * 2**LEVELS)(_conv(WIDTH * 2**LEVELS)(x))
    for level in reversed(range(LEVELS)):
        x = keras.layers.UpSampling2D(2)(x)
        x = keras.layers.Concatenate(axis=-1)([skips[level], x])
        x = _conv(WIDTH * 2**level)(_conv(WIDTH * 2**level)(x))
    outputs = keras.layers.Conv2D(CLASSES, 1, padding="same")(x)
    return keras.Model(inputs, outputs)
