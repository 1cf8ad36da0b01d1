import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data.event_state import FEATURES
from ecomrec_tf.heads.count_features import CountFeatures, transform


def raw(**values):
    row = {name: 0.0 for name in (*FEATURES, "price")} | values
    return {name: np.array([value], np.float32) for name, value in row.items()}


def test_transform_by_hand():
    counts = {
        "user_views": 3,
        "user_purchases": 1,
        "user_purchases_last5": 1,
        "item_views": 8,
        "item_purchases": 6,
    }
    out = transform(raw(**counts, user_idle_seconds=np.e - 1, price=np.e**2 - 1, user_mean_price=np.e - 1))
    user, item, pair = (np.asarray(out[g])[0] for g in ("user", "item", "pair"))
    np.testing.assert_allclose(user[:3], [np.log(4), np.log(2), (1 + 1) / (3 + 2)], rtol=1e-6)
    np.testing.assert_allclose(user[3:], [(1 + 1) / (3 + 2), (0 + 1) / (3 + 2), 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(item, [np.log(9), np.log(7), 7 / 10], rtol=1e-6)
    np.testing.assert_allclose(pair[3:], [1.0, 0.0], rtol=1e-5)  # log price - log usual price, known


def test_missing_values_are_zero_with_a_flag_never_nan():
    out = transform(raw(user_idle_seconds=np.nan, user_mean_price=np.nan, price=np.inf, item_views=np.nan))
    for group in out.values():
        assert np.isfinite(np.asarray(group)).all()
    assert np.asarray(out["user"])[0, -1] == 1.0 and np.asarray(out["pair"])[0, -1] == 1.0


def test_adapt_standardises_the_training_data():
    rng = np.random.default_rng(0)
    data = {name: rng.poisson(5, 500).astype(np.float32) for name in (*FEATURES, "price")}
    layer = CountFeatures()
    layer.adapt(data)
    out = layer({name: tf.constant(value) for name, value in data.items()})
    for group in out.values():
        values = np.asarray(group)
        np.testing.assert_allclose(values.mean(axis=0), 0.0, atol=1e-4)
        assert np.all((np.abs(values.std(axis=0) - 1.0) < 1e-3) | (values.std(axis=0) < 1e-6))
    with pytest.raises(KeyError):
        layer({"user_views": tf.constant([1.0])})  # every count is needed


def test_adapt_on_chunks_equals_adapt_on_the_whole():
    rng = np.random.default_rng(1)
    data = {name: rng.poisson(5, 900).astype(np.float32) for name in (*FEATURES, "price")}
    whole, chunked = CountFeatures(), CountFeatures()
    whole.adapt(data)
    chunked.adapt(
        {name: values[start : start + 100] for name, values in data.items()} for start in range(0, 900, 100)
    )
    for name in whole.means:
        np.testing.assert_allclose(
            chunked.means[name].numpy(), whole.means[name].numpy(), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(chunked.scales[name].numpy(), whole.scales[name].numpy(), rtol=1e-4)
