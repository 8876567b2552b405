"""Text classification with a Transformer encoder (keras.io example by Apoorv Nandan).

The example's ``TokenAndPositionEmbedding`` adds a token embedding and an embedding of the position
ids ``ops.arange(0, maxlen)``; its ``TransformerBlock`` is self-attention (``MultiHeadAttention``
called as ``att(inputs, inputs)``), dropout, a residual LayerNormalization, a two-layer feed-forward
network and a second residual LayerNormalization. Both classes are written here as the functional
calls their ``call`` makes; the position ids are an expression layer. Sizes are small.
"""

from __future__ import annotations

import keras
from keras import layers

from _common import expr

SOURCE = "https://keras.io/examples/nlp/text_classification_with_transformer/"
SPEC = "tests/models/transformer_text.yaml"

VOCAB, MAXLEN, EMBED, HEADS, FF = 200, 32, 16, 2, 16


def transformer_block(inputs, embed_dim, num_heads, ff_dim, rate=0.1):
    attn_output = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)(inputs, inputs)
    attn_output = layers.Dropout(rate)(attn_output)
    out1 = layers.LayerNormalization(epsilon=1e-6)(inputs + attn_output)
    ffn_output = layers.Dense(ff_dim, activation="relu")(out1)
    ffn_output = layers.Dense(embed_dim)(ffn_output)
    ffn_output = layers.Dropout(rate)(ffn_output)
    return layers.LayerNormalization(epsilon=1e-6)(out1 + ffn_output)


def build() -> keras.Model:
    inputs = keras.Input(shape=(MAXLEN,), dtype="int32", name="tokens")
    tokens = layers.Embedding(VOCAB, EMBED)(inputs)
    positions = expr("ops.arange(maxlen)", {"x": inputs}, maxlen=MAXLEN)
    x = tokens + layers.Embedding(MAXLEN, EMBED)(positions)
    x = transformer_block(x, EMBED, HEADS, FF)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="transformer_text")
