"""Intent head: encoder token states -> intent vector and class probabilities."""

from __future__ import annotations

import keras

from ecomrec_tf.heads.pooled_projection import PooledProjection


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class IntentHead(keras.layers.Layer):
    """Mean-pools token states into an L2-normalised intent vector and scores it against classes.

    Classes are scored by cosine similarity between the intent vector and one learned prototype per
    class, times a fixed `logit_scale`. So the vector itself carries the class geometry: two
    queries of the same intent have nearby vectors, which ranking uses later.

    Args:
        num_classes: number of intents.
        vector_dim: size of the intent vector.
        dropout: dropout on the pooled states while training.
        logit_scale: inverse softmax temperature applied to the cosine scores.

    Returns (from `call(sequence_output, padding_mask)`):
        Dict of `probabilities` `(batch, num_classes)` and `intent_vector` `(batch, vector_dim)`,
        both float32 whatever the compute dtype.
    """

    def __init__(
        self,
        num_classes: int,
        vector_dim: int = 128,
        dropout: float = 0.1,
        logit_scale: float = 20.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.vector_dim = vector_dim
        self.dropout = dropout
        self.logit_scale = logit_scale
        self.vector = PooledProjection(vector_dim, dropout, dtype=self.dtype_policy, name="intent_vector")

    def build(self, sequence_output_shape, padding_mask_shape=None):
        self.vector.build(sequence_output_shape)
        self.prototypes = self.add_weight(
            name="prototypes", shape=(self.vector_dim, self.num_classes), initializer="glorot_uniform"
        )

    def call(self, sequence_output, padding_mask, training=None):
        vector = self.vector(sequence_output, padding_mask, training=training)  # (B, D) unit vectors
        prototypes = keras.ops.normalize(keras.ops.cast(self.prototypes, "float32"), axis=0)
        logits = self.logit_scale * keras.ops.matmul(vector, prototypes)  # (B, C)
        return {"probabilities": keras.ops.softmax(logits), "intent_vector": vector}

    def compute_output_spec(self, sequence_output, padding_mask, training=None):
        batch = sequence_output.shape[0]
        return {
            "probabilities": keras.KerasTensor((batch, self.num_classes), dtype="float32"),
            "intent_vector": keras.KerasTensor((batch, self.vector_dim), dtype="float32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            vector_dim=self.vector_dim,
            dropout=self.dropout,
            logit_scale=self.logit_scale,
        )
        return config
