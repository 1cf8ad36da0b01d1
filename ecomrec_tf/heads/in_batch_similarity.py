"""Scaled cosine similarities of every context with every reply in a batch: in-batch negatives."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class InBatchSimilarity(keras.layers.Layer):
    """Logits `(batch, batch)`: row i scores context i against every reply of the batch.

    Trained with softmax cross-entropy against the diagonal, every other reply in the batch is a
    negative. The temperature is learned (`scale = exp(log_scale)`, capped at 100 as in CLIP). A
    reply text that appears twice in a batch (vetted replies repeat) is not a negative for its
    twin: those entries are masked out of the softmax.

    Args:
        initial_scale: starting inverse temperature.

    Returns (from `call(context_vectors, reply_vectors, replies)`):
        float32 logits `(batch, batch)`.
    """

    def __init__(self, initial_scale: float = 20.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_scale = initial_scale

    def build(self, context_vectors_shape=None, reply_vectors_shape=None, replies_shape=None):
        self.log_scale = self.add_weight(
            name="log_scale", shape=(), initializer=keras.initializers.Constant(math.log(self.initial_scale))
        )

    @property
    def scale(self):
        return tf.minimum(tf.exp(tf.cast(self.log_scale, tf.float32)), 100.0)

    def call(self, context_vectors, reply_vectors, replies):
        # float32 whatever the compute dtype (mixed precision): a softmax over the batch, cheap
        context_vectors, reply_vectors = (
            tf.cast(context_vectors, tf.float32),
            tf.cast(reply_vectors, tf.float32),
        )
        logits = self.scale * tf.matmul(context_vectors, reply_vectors, transpose_b=True)  # (B, B)
        twins = tf.equal(replies[:, None], replies[None, :])
        twins = tf.logical_and(twins, tf.logical_not(tf.eye(tf.shape(replies)[0], dtype=tf.bool)))
        return tf.where(twins, tf.constant(-1e9, tf.float32), logits)

    def compute_output_spec(self, context_vectors, reply_vectors, replies):
        return keras.KerasTensor((context_vectors.shape[0], reply_vectors.shape[0]), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale}
