"""Token vectors -> one unit vector per text: the sentence vector every retrieval and intent head uses."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class PooledProjection(keras.layers.Layer):
    """Masked mean over the tokens, dropout, a linear projection, then an L2-normalised float32 vector.

    Mean pooling is how sentence-transformers checkpoints (MiniLM) were trained to be used; the unit
    vector makes dot products cosines (intent prototypes, context-reply similarity).

    Args:
        units: the vector's width.
        dropout: dropout on the pooled vector while training.
        kernel_initializer: the projection's; `"identity"` (units equal to the encoder's width) starts
            from the encoder's own sentence similarity.

    Call: `(sequence_output (B, T, H), padding_mask (B, T)) -> (B, units)` float32 unit vectors.
    """

    def __init__(self, units: int, dropout: float = 0.0, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout, self.kernel_initializer = units, dropout, kernel_initializer
        self.pooling = keras.layers.GlobalAveragePooling1D(dtype=self.dtype_policy)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.projection = keras.layers.Dense(
            units, kernel_initializer=kernel_initializer, dtype=self.dtype_policy, name="projection"
        )

    def build(self, sequence_output_shape, padding_mask_shape=None):
        self.projection.build((None, sequence_output_shape[-1]))

    def call(self, sequence_output, padding_mask, training=None):
        pooled = self.pooling(sequence_output, mask=padding_mask)  # (B, H)
        projected = self.projection(self.dropout_layer(pooled, training=training))  # (B, D)
        return keras.ops.normalize(keras.ops.cast(projected, "float32"), axis=-1)

    def compute_output_spec(self, sequence_output, padding_mask, training=None):
        return keras.KerasTensor((sequence_output.shape[0], self.units), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "dropout": self.dropout,
            "kernel_initializer": self.kernel_initializer,
        }
