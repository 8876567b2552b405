"""A CNN-RNN video classifier after keras.io "Video Classification with a CNN-RNN Architecture" (Sayak Paul).

The example extracts frame features with a pretrained CNN outside the model, then runs
``GRU(16, return_sequences=True)(frame_features, mask=mask_input)``, ``GRU(8)``, Dropout, a Dense and
a softmax, with a boolean frame mask as a second input. Here the frame features come from a small
convolutional feature extractor inside the model, applied to every frame by ``TimeDistributed``
(as in the ``TimeDistributed`` API example). Sizes are small (8 frames of 16x16).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/examples/vision/video_classification/"
SPEC = "tests/models/video_classifier.yaml"

FRAMES, SIZE, CLASSES = 8, 16, 5


def build() -> keras.Model:
    frames = keras.Input((FRAMES, SIZE, SIZE, 3), name="frames")
    mask_input = keras.Input((FRAMES,), dtype="bool", name="mask")
    x = layers.TimeDistributed(layers.Conv2D(8, 3, strides=2, activation="relu"))(frames)
    frame_features = layers.TimeDistributed(layers.GlobalAveragePooling2D())(x)
    x = layers.GRU(16, return_sequences=True)(frame_features, mask=mask_input)
    x = layers.GRU(8)(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Dense(8, activation="relu")(x)
    output = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model([frames, mask_input], output, name="video_classifier")
