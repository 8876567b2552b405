"""The multi-input, multi-output model of the Keras functional API guide (fchollet).

Ranks customer issue tickets by priority and routes them to a department: three inputs (a title
and a body as token ids, binary tag vectors), an Embedding and an LSTM per text, a concatenation
with the tags, and two named outputs (``priority``, ``department``). Sizes are small.
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/guides/functional_api/#models-with-multiple-inputs-and-outputs"
SPEC = "tests/models/ticket_priority.yaml"

NUM_TAGS, NUM_WORDS, NUM_DEPARTMENTS = 12, 500, 4


def build() -> keras.Model:
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(NUM_TAGS,), name="tags")
    title_features = layers.Embedding(NUM_WORDS, 16)(title_input)
    body_features = layers.Embedding(NUM_WORDS, 16)(body_input)
    title_features = layers.LSTM(32)(title_features)
    body_features = layers.LSTM(8)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(NUM_DEPARTMENTS, name="department")(x)
    return keras.Model(inputs=[title_input, body_input, tags_input],
                       outputs={"priority": priority_pred, "department": department_pred}, name="ticket_priority")
