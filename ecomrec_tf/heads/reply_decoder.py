"""A Transformer decoder that writes a reply token by token, cross-attending to the encoded conversation."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class ReplyDecoder(keras.layers.Layer):
    """keras-hub `TransformerDecoder` blocks (causal self-attention + cross-attention) over token embeddings.

    The token embeddings (and the output projection, its transpose) are the BERT encoder's own, so
    the decoder speaks the encoder's vocabulary; this layer adds positions and the blocks.

    Args:
        num_layers: decoder blocks.
        num_heads: attention heads per block.
        intermediate_dim: feed-forward width.
        max_length: most reply tokens (`[CLS]` start token included).
        dropout: dropout rate in the blocks and on the embeddings.

    Returns (from `call(token_embeddings, padding_mask, encoder_sequence, encoder_padding_mask)`):
        hidden states `(batch, length, hidden)`; position i sees tokens 0..i and the whole encoder sequence.

    Decoding runs one token at a time with key/value caches: `start_cache` once per batch (the
    encoder's keys and values for cross-attention), then `step` per position.
    """

    def __init__(
        self,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_dim: int = 1024,
        max_length: int = 64,
        dropout: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Layers ===
        self.position_embedding = keras_hub.layers.PositionEmbedding(max_length, name="position_embedding")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_layer_norm")
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.blocks = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim, num_heads, dropout=dropout, activation="gelu", name=f"decoder_block_{i}"
            )
            for i in range(num_layers)
        ]
        # === Config ===
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.max_length = max_length
        self.dropout = dropout

    def build(
        self,
        token_embeddings_shape,
        padding_mask_shape=None,
        encoder_sequence_shape=None,
        encoder_padding_mask_shape=None,
    ):
        self.position_embedding.build(token_embeddings_shape)
        self.norm.build(token_embeddings_shape)
        for block in self.blocks:
            block.build(token_embeddings_shape, encoder_sequence_shape)
        self.built = True

    def call(self, token_embeddings, padding_mask, encoder_sequence, encoder_padding_mask, training=None):
        x = token_embeddings + keras.ops.cast(
            self.position_embedding(token_embeddings), token_embeddings.dtype
        )
        x = self.dropout_layer(self.norm(x), training=training)
        for block in self.blocks:
            x = block(
                x,
                encoder_sequence,
                decoder_padding_mask=padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                training=training,
            )
        return x

    def start_cache(self, encoder_sequence, encoder_padding_mask, max_length: int):
        """Empty self-attention caches for `max_length` positions and the filled cross-attention
        caches, one pair per block: `(self_caches, cross_caches)` tuples of
        `(batch, 2, positions, heads, head_dim)` tensors."""
        batch, source = tf.shape(encoder_sequence)[0], tf.shape(encoder_sequence)[1]
        hidden = encoder_sequence.shape[-1]
        head_dim = hidden // self.num_heads
        x = tf.zeros([batch, 1, hidden], self.compute_dtype)
        empty = tf.zeros([batch, 2, max_length, self.num_heads, head_dim], self.compute_dtype)
        self_caches, cross_caches = [], []
        for block in self.blocks:
            # Update index 0 computes the whole cross-attention cache; x is a placeholder token.
            _, self_cache, cross_cache = block(
                x,
                encoder_sequence,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=empty,
                self_attention_cache_update_index=0,
                cross_attention_cache=tf.zeros(
                    [batch, 2, source, self.num_heads, head_dim], self.compute_dtype
                ),
                cross_attention_cache_update_index=0,
            )
            self_caches.append(self_cache)
            cross_caches.append(cross_cache)
        return tuple(self_caches), tuple(cross_caches)

    def step(
        self, token_embeddings, index, encoder_sequence, encoder_padding_mask, self_caches, cross_caches
    ):
        """Hidden state `(batch, 1, hidden)` of the token at position `index`, and the updated self caches."""
        x = token_embeddings + keras.ops.cast(
            self.position_embedding(token_embeddings, start_index=index), token_embeddings.dtype
        )
        x = self.norm(x)
        updated = []
        for block, self_cache, cross_cache in zip(self.blocks, self_caches, cross_caches):
            x, self_cache, _ = block(
                x,
                encoder_sequence,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
                cross_attention_cache_update_index=None,
            )
            updated.append(self_cache)
        return x, tuple(updated)

    def compute_output_spec(self, token_embeddings, *args, **kwargs):
        return keras.KerasTensor(token_embeddings.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "max_length": self.max_length,
            "dropout": self.dropout,
        }
