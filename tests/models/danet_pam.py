"""A small DANet-style segmenter made of the seed article layers (specs/seed_layers.py).

The position attention module (PAM) of DANet (Fu et al. 2019) and the per-channel ``Scale`` from
the blog post "keras自定义层" (seed 003), and ``ConvBnReLU`` from the TF 2.0 LeNet-5 post, built on
a ConvBnReLU backbone with a 1x1 classifier and bilinear upsampling. The spec is the showcase
specs/danet_pam.yaml; the layers are the seed plugin's, which this module loads.
"""

from __future__ import annotations

import keras
from keras import layers

from _common import SEED_PLUGIN, seed_layer

SOURCE = "https://keras.io/guides/making_new_layers_and_models_via_subclassing/"
SPEC = "specs/danet_pam.yaml"
PLUGINS = [SEED_PLUGIN]

WIDTH, CLASSES = 16, 4


def build() -> keras.Model:
    conv_bn_relu, pam, scale = seed_layer("ConvBnReLU"), seed_layer("PAM"), seed_layer("Scale")
    image = keras.Input(shape=(32, 32, 3), name="image")
    x = conv_bn_relu(WIDTH, 3, strides=2)(image)
    x = conv_bn_relu(WIDTH * 2, 3, strides=2)(x)
    x = pam()(x)
    x = scale()(x)
    x = conv_bn_relu(WIDTH, 3)(x)
    x = layers.Conv2D(CLASSES, 1)(x)
    x = layers.UpSampling2D(4, interpolation="bilinear")(x)
    return keras.Model(image, layers.Softmax()(x), name="danet_pam")
