"""DIN-style target attention: pools a user's history by its relevance to the candidate item."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class TargetAttention(keras.layers.Layer):
    """Weights each history item by a small MLP of `[h; t; h * t; h - t]` and sums the weighted items.

    As in Deep Interest Network (Zhou et al., 2018), the weights are not softmax-normalised: a user
    with many items like the candidate gets a larger pooled vector than one with a single such item,
    so the strength of an interest survives pooling. Masked (padding) items get weight 0; an empty
    history (a new user) pools to zeros.

    Args:
        hidden: units of the attention MLP's hidden layer.

    Returns (from `call(history, target, mask)`):
        `(pooled (batch, dim), weights (batch, items))` for history `(batch, items, dim)`,
        target `(batch, dim)` and boolean mask `(batch, items)`.
    """

    def __init__(self, hidden: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.score_hidden = keras.layers.Dense(hidden, activation="sigmoid", name="score_hidden")
        self.score = keras.layers.Dense(1, name="score")

    def build(self, history_shape, target_shape=None, mask_shape=None):
        dim = history_shape[-1]
        self.score_hidden.build((None, None, 4 * dim))
        self.score.build((None, None, self.hidden))

    def call(self, history, target, mask):
        target = ops.broadcast_to(ops.expand_dims(target, 1), ops.shape(history))  # (B, N, D)
        pairs = ops.concatenate([history, target, history * target, history - target], axis=-1)
        weights = ops.squeeze(self.score(self.score_hidden(pairs)), -1)  # (B, N)
        weights = ops.where(mask, weights, ops.zeros_like(weights))
        pooled = ops.sum(history * ops.expand_dims(weights, -1), axis=1)  # (B, D)
        return pooled, weights

    def compute_output_spec(self, history, target, mask):
        return (
            keras.KerasTensor((history.shape[0], history.shape[-1]), dtype=self.compute_dtype),
            keras.KerasTensor((history.shape[0], history.shape[1]), dtype=self.compute_dtype),
        )

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}
