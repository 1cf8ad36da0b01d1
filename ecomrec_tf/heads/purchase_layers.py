"""The purchase model's layers: towers and scorer (feed-forward stacks), the encoder's own text
similarities, and the Platt calibration folded into the model."""

from __future__ import annotations

import keras
from keras import ops


def feed_forward(hidden, units: int, dropout: float, name: str) -> list[keras.layers.Layer]:
    """Dense-GELU-dropout layers then a linear `units` layer, applied to the last axis of any rank."""
    layers = []
    for i, width in enumerate(hidden):
        layers += [
            keras.layers.Dense(width, activation="gelu", name=f"{name}_{i}"),
            keras.layers.Dropout(dropout),
        ]
    return layers + [keras.layers.Dense(units, name=f"{name}_out")]


def text_similarities(vectors):
    """Cosines of the encoder's own vectors: query-item (0 without a query), and the candidate's
    max and mean over the history (0 for a new user). `(batch, 3)`: relevance the frozen encoder
    already knows, which the towers need not relearn."""
    item = ops.normalize(vectors["item"], axis=-1)
    query = ops.sum(ops.normalize(vectors["query"], axis=-1) * item, axis=-1)
    query = query * ops.cast(vectors["has_query"], "float32")
    history = history_cosines(vectors["history"], vectors["item"], vectors["history_mask"])
    return ops.concatenate([ops.expand_dims(query, -1), history], axis=-1)


def image_similarities(vectors):
    """The candidate image's cosine with the history's images, max and mean, `(batch, 2)`: 0 where the
    candidate, or every history item, has no image (NaN)."""
    item, history = vectors["image_vector"], vectors["history_image_vector"]
    has_image = ops.all(ops.isfinite(item), axis=-1)
    mask = ops.logical_and(vectors["history_mask"], ops.all(ops.isfinite(history), axis=-1))
    cosines = history_cosines(
        ops.where(ops.isfinite(history), history, 0.0), ops.where(ops.isfinite(item), item, 0.0), mask
    )
    return cosines * ops.expand_dims(ops.cast(has_image, "float32"), -1)


def history_cosines(history, item, mask):
    """Max and mean cosine of `item` `(B, H)` with the masked `history` `(B, N, H)`, `(B, 2)`; 0 for an
    empty history."""
    cosines = ops.einsum("bnh,bh->bn", ops.normalize(history, axis=-1), ops.normalize(item, axis=-1))
    weights = ops.cast(mask, "float32")
    count = ops.sum(weights, axis=-1)
    top = ops.where(count > 0, ops.max(ops.where(mask, cosines, -1.0), axis=-1), 0.0)
    return ops.stack([top, ops.sum(cosines * weights, axis=-1) / ops.maximum(count, 1.0)], axis=-1)


def apply_layers(layers, x, training=None):
    """`layers` (`feed_forward`'s) in order on `x`; dropout only while training."""
    for layer in layers:
        x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
    return x


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class Calibration(keras.layers.Layer):
    """Platt scaling `scale * logit + bias`, set after training (`training.purchase.calibrate`)."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros", trainable=False)

    def call(self, logit):
        return logit * self.scale + self.bias
