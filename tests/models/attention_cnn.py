"""The CNN with query-value attention of the ``keras.layers.Attention`` API example.

One Embedding and one Conv1D are shared by the query and the value token sequences; ``Attention``
takes ``[query_seq_encoding, value_seq_encoding]``; both the query encoding and the attention
result are averaged over time and concatenated. Sizes are small (vocabulary 1000, 16 dims, 16 filters).
"""

from __future__ import annotations

import keras
from keras import layers

SOURCE = "https://keras.io/api/layers/attention_layers/attention/"
SPEC = "tests/models/attention_cnn.yaml"


def build() -> keras.Model:
    query_input = keras.Input(shape=(None,), dtype="int32", name="query")
    value_input = keras.Input(shape=(None,), dtype="int32", name="value")
    token_embedding = layers.Embedding(input_dim=1000, output_dim=16)
    query_embeddings = token_embedding(query_input)
    value_embeddings = token_embedding(value_input)
    cnn_layer = layers.Conv1D(filters=16, kernel_size=4, padding="same")
    query_seq_encoding = cnn_layer(query_embeddings)
    value_seq_encoding = cnn_layer(value_embeddings)
    query_value_attention_seq = layers.Attention()([query_seq_encoding, value_seq_encoding])
    query_encoding = layers.GlobalAveragePooling1D()(query_seq_encoding)
    query_value_attention = layers.GlobalAveragePooling1D()(query_value_attention_seq)
    input_layer = layers.Concatenate()([query_encoding, query_value_attention])
    return keras.Model([query_input, value_input], input_layer, name="attention_cnn")
