import numpy as np
import tensorflow as tf

from ecomrec_tf.heads import TargetAttention
from tests.helpers import assert_config_round_trip


def test_pools_by_unnormalised_weights_and_ignores_padding():
    layer = TargetAttention(hidden=8)
    rng = np.random.default_rng(0)
    history = tf.constant(rng.normal(size=(2, 3, 4)), tf.float32)
    target = tf.constant(rng.normal(size=(2, 4)), tf.float32)
    mask = tf.constant([[True, True, False], [False, False, False]])  # row 1: a new user
    pooled, weights = layer(history, target, mask)
    assert pooled.shape == (2, 4) and weights.shape == (2, 3)
    np.testing.assert_array_equal(weights.numpy()[0, 2], 0.0)
    np.testing.assert_array_equal(pooled.numpy()[1], 0.0)
    np.testing.assert_allclose(pooled[0], tf.reduce_sum(history[0] * weights[0][:, None], 0), atol=1e-6)
    changed = tf.tensor_scatter_nd_update(history, [[0, 2]], [tf.ones(4) * 100.0])  # a padded item changes
    np.testing.assert_allclose(layer(changed, target, mask)[0], pooled, atol=1e-6)


def test_config_round_trip():
    assert_config_round_trip(TargetAttention(hidden=16))
