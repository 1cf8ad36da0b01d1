"""Fusion of an item's text vector with its image vector and attributes (`data.item_features`)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ecomrec_tf.data.item_features import ItemFeatures

FUSIONS = ("concat", "gated")


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class ItemFusion(keras.layers.Layer):
    """An item's text vector fused with what else the catalog knows of it, item by item.

    The side features are, for the inputs `features` names: the image vector, L2-normalised (image
    models' scales differ), with a presence flag; numeric attributes standardised with the catalog's
    means and scales (`adapt`), 0 with a missing flag where absent; categorical attributes as a bag of
    learned `name=value` embeddings (hashed, so values new at serving need no vocabulary), "" left out.
    Then, by `fusion`:

    - `"concat"` (the default): `[text; projection(side)]`, the item tower after it mixing both.
    - `"gated"`: `text + gate * projection(side)`, the gate a sigmoid of `[text; side]` per dimension:
      the model learns, per item, how much the side features add to the text.

    An item with no side feature at all (no image, no attribute: a text-only catalog, or one item
    missing them) gets exactly its text vector (gated; concat adds zeros), so a model trained where
    no image exists is the text-only model.

    Args:
        features: `ItemFeatures` (or its config dict).
        fusion: `"concat"` or `"gated"`.
        side_dim: size of the side features' projection in concat mode.
        hash_bins: buckets of the categorical `name=value` hash.
        category_dim: size of a categorical value's embedding.

    Call: `(text (..., H), {input name: (..., size)})` -> `(..., H + side_dim)` (concat) or `(..., H)`.
    """

    def __init__(self, features, fusion: str = "concat", side_dim: int = 64, hash_bins: int = 4096,
                 category_dim: int = 16, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.features = features if isinstance(features, ItemFeatures) else ItemFeatures.from_config(features)
        self.fusion = fusion
        self.side_dim = side_dim
        self.hash_bins = hash_bins
        self.category_dim = category_dim
        self.categories = None
        if self.features.categorical:
            self.categories = keras.layers.Embedding(hash_bins, category_dim, name="categories")
        self.side = None  # the projection(s), built on the text size

    def build(self, text_shape, features_shape=None):
        hidden = int(text_shape[-1])
        count = len(self.features.numeric)
        self.means = self.add_weight(
            name="numeric_mean", shape=(count,), initializer="zeros", trainable=False
        )
        self.scales = self.add_weight(
            name="numeric_scale", shape=(count,), initializer="ones", trainable=False
        )
        if self.categories is not None:
            self.categories.build((None,))
        side = self.features.image_dim + 1 + 2 * count + (self.category_dim if self.categories else 0)
        if self.fusion == "gated":
            self.side = keras.layers.Dense(hidden, name="side_projection")
            self.gate = keras.layers.Dense(hidden, activation="sigmoid", name="gate")
            self.gate.build((None, hidden + side))
        else:
            self.side = keras.layers.Dense(self.side_dim, activation="gelu", name="side_projection")
        self.side.build((None, side))

    def adapt(self, numeric: np.ndarray) -> None:
        """Sets the numeric attributes' means and scales from the catalog's `(items, count)` values (NaN
        missing)."""
        if not self.built:
            raise ValueError("ItemFusion.adapt: build the layer (call it once) first")
        if len(self.features.numeric):
            values = np.asarray(numeric, np.float64)
            known = np.isfinite(values)
            counts = np.maximum(known.sum(0), 1)
            mean = np.where(known, values, 0.0).sum(0) / counts
            variance = np.where(known, (values - mean) ** 2, 0.0).sum(0) / counts
            self.means.assign(mean)
            self.scales.assign(np.maximum(np.sqrt(variance), 1e-3))

    def call(self, text, features):
        parts, present = [], []
        if self.features.image_dim:
            image = features["image_vector"]
            known = ops.all(ops.isfinite(image), axis=-1, keepdims=True)
            image = ops.normalize(ops.where(known, image, 0.0), axis=-1) * ops.cast(known, "float32")
            parts += [image, ops.cast(known, "float32")]
            present.append(known)
        else:
            parts.append(ops.zeros_like(text[..., :1]))
        if self.features.numeric:
            numbers = features["numeric_attributes"]
            known = ops.isfinite(numbers)
            parts += [ops.where(known, (numbers - self.means) / self.scales, 0.0), ops.cast(known, "float32")]
            present.append(ops.any(known, axis=-1, keepdims=True))
        if self.categories is not None:
            values = features["categorical_attributes"]
            names = tf.constant([f"{name}=" for name in self.features.categorical])
            keys = tf.strings.join([tf.broadcast_to(names, tf.shape(values)), values])
            embedded = self.categories(tf.strings.to_hash_bucket_fast(keys, self.hash_bins))  # (..., C, E)
            known = ops.not_equal(values, "")
            parts.append(ops.sum(embedded * ops.expand_dims(ops.cast(known, "float32"), -1), axis=-2))
            present.append(ops.any(known, axis=-1, keepdims=True))
        side = ops.concatenate(parts, axis=-1)
        anything = ops.cast(ops.any(ops.concatenate(present, axis=-1), axis=-1, keepdims=True), "float32")
        if self.fusion == "gated":
            gate = self.gate(ops.concatenate([text, side], axis=-1))
            return text + anything * gate * self.side(side)
        return ops.concatenate([text, anything * self.side(side)], axis=-1)

    def compute_output_spec(self, text, features):
        extra = 0 if self.fusion == "gated" else self.side_dim
        return keras.KerasTensor((*text.shape[:-1], text.shape[-1] + extra), "float32")

    def get_config(self):
        return super().get_config() | {
            "features": self.features.get_config(),
            "fusion": self.fusion,
            "side_dim": self.side_dim,
            "hash_bins": self.hash_bins,
            "category_dim": self.category_dim,
        }
