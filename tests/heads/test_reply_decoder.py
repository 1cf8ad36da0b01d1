import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.heads.reply_decoder import ReplyDecoder
from tests.helpers import assert_config_round_trip


def test_cached_steps_match_the_full_causal_pass():
    keras.utils.set_random_seed(0)
    decoder = ReplyDecoder(num_layers=2, num_heads=2, intermediate_dim=32, max_length=8, dropout=0.0)
    tokens = tf.random.normal([3, 6, 16])
    encoded = tf.random.normal([3, 5, 16])
    encoder_mask = tf.constant([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    full = decoder(tokens, tf.ones([3, 6], tf.bool), encoded, encoder_mask)
    assert full.shape == (3, 6, 16)

    self_caches, cross_caches = decoder.start_cache(encoded, encoder_mask, max_length=8)
    steps = []
    for i in range(6):
        hidden, self_caches = decoder.step(
            tokens[:, i : i + 1], i, encoded, encoder_mask, self_caches, cross_caches
        )
        steps.append(hidden[:, 0])
    np.testing.assert_allclose(tf.stack(steps, axis=1), full, atol=1e-5)
    # Causal: changing a later token leaves earlier positions alone.
    changed = decoder(
        tf.concat([tokens[:, :4], -tokens[:, 4:]], 1), tf.ones([3, 6], tf.bool), encoded, encoder_mask
    )
    np.testing.assert_allclose(changed[:, :4], full[:, :4], atol=1e-5)
    assert not np.allclose(changed[:, 4:], full[:, 4:], atol=1e-3)


def test_config_round_trip():
    assert_config_round_trip(ReplyDecoder(num_layers=1, num_heads=2, intermediate_dim=8, max_length=4))
