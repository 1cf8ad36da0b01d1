"""Raw event counts (`data.event_state.FEATURES`) -> standardised model features, in the graph."""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

from ecomrec_tf.data.event_state import WINDOWS

GROUPS = ("user", "item", "pair")


def _known(x):
    return ops.logical_and(ops.isfinite(x), ops.greater_equal(x, 0.0))


def _clean(x):
    """0 for missing (NaN, infinite) or negative values."""
    return ops.where(_known(x), x, 0.0)


def _log(x):
    """log(1 + x) of a count or a number of seconds; 0 when missing."""
    return ops.log1p(_clean(x))


def _rate(purchases, views):
    """Purchases per view, smoothed toward 1/2 by one pseudo-view of each kind."""
    return (_clean(purchases) + 1.0) / (_clean(views) + 2.0)


def transform(raw: dict) -> dict:
    """The features of each group (`(..., k)` float32) from raw counts `(...)`: log counts, smoothed
    purchase rates (overall, in the user's last views, in the item's category), log idle seconds
    and the candidate's price relative to the user's mean purchase price, each missing value 0 with
    a flag. `raw` holds `FEATURES` and the candidate's `price`."""
    x = {name: ops.cast(value, "float32") for name, value in raw.items()}
    views = x["user_views"]
    user = [_log(views), _log(x["user_purchases"]), _rate(x["user_purchases"], views)]
    user += [_rate(x[f"user_purchases_last{w}"], ops.minimum(views, float(w))) for w in WINDOWS]
    idle = x["user_idle_seconds"]
    user += [_log(idle), ops.cast(~_known(idle), "float32")]
    item = [_log(x["item_views"]), _log(x["item_purchases"]), _rate(x["item_purchases"], x["item_views"])]
    price, usual = x["price"], x["user_mean_price"]
    priced = ops.logical_and(_known(price), _known(usual))
    relative = ops.where(priced, _log(price) - _log(usual), 0.0)
    pair = [_log(x["category_views"]), _log(x["category_purchases"])]
    pair += [_rate(x["category_purchases"], x["category_views"]), relative, ops.cast(~priced, "float32")]
    return {name: ops.stack(values, axis=-1) for name, values in zip(GROUPS, (user, item, pair))}


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class CountFeatures(keras.layers.Layer):
    """`transform`, then standardised with means and scales set from training data (`adapt`).

    Returns (from `call(raw)`): `{"user", "item", "pair"}` float32 tensors, `(batch, k)` each.
    """

    def build(self, input_shape=None):
        sizes = {name: int(value.shape[-1]) for name, value in transform(_placeholder()).items()}
        self.means = {
            name: self.add_weight(name=f"{name}_mean", shape=(size,), initializer="zeros", trainable=False)
            for name, size in sizes.items()
        }
        self.scales = {
            name: self.add_weight(name=f"{name}_scale", shape=(size,), initializer="ones", trainable=False)
            for name, size in sizes.items()
        }

    def adapt(self, raw: dict[str, np.ndarray] | Iterable[dict[str, np.ndarray]]) -> None:
        """Sets each feature's mean and scale (standard deviation) from training examples' raw values:
        one dict of arrays, or an iterable of them (chunks of a split larger than memory)."""
        if not self.built:
            self.build()
        sums: dict = {}
        for chunk in [raw] if isinstance(raw, dict) else raw:
            for name, values in transform(chunk).items():
                values = np.asarray(values, np.float64)
                n, total, squares = sums.get(name, (0, 0.0, 0.0))
                sums[name] = (n + len(values), total + values.sum(0), squares + (values**2).sum(0))
        for name, (n, total, squares) in sums.items():
            mean = total / n
            self.means[name].assign(mean)
            self.scales[name].assign(np.maximum(np.sqrt(np.maximum(squares / n - mean**2, 0.0)), 1e-3))

    def call(self, raw):
        return {
            name: (value - self.means[name]) / self.scales[name] for name, value in transform(raw).items()
        }

    def compute_output_spec(self, raw):
        batch = tuple(raw["user_views"].shape)
        sizes = {name: int(value.shape[-1]) for name, value in transform(_placeholder()).items()}
        return {name: keras.KerasTensor(batch + (size,), "float32") for name, size in sizes.items()}


def _placeholder() -> dict:
    from ecomrec_tf.data.event_state import FEATURES

    return {name: np.zeros((1,), np.float32) for name in (*FEATURES, "price")}
