import numpy as np

from ecomrec_tf.heads import IntentHead
from tests.helpers import assert_config_round_trip


def test_outputs_are_probabilities_and_unit_vectors():
    head = IntentHead(num_classes=5, vector_dim=16)
    states = np.random.default_rng(0).normal(size=(3, 7, 32)).astype("float32")
    mask = np.ones((3, 7), bool)
    mask[1, 3:] = False
    outputs = head(states, mask)
    assert outputs["probabilities"].shape == (3, 5) and outputs["intent_vector"].shape == (3, 16)
    np.testing.assert_allclose(np.sum(outputs["probabilities"], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(outputs["intent_vector"], axis=1), 1.0, atol=1e-6)


def test_padding_does_not_change_the_output():
    head = IntentHead(num_classes=3, vector_dim=8)
    states = np.random.default_rng(1).normal(size=(1, 4, 16)).astype("float32")
    padded = np.concatenate([states, 100 * np.ones((1, 3, 16), "float32")], axis=1)
    short = head(states, np.ones((1, 4), bool))
    long = head(padded, np.array([[True] * 4 + [False] * 3]))
    np.testing.assert_allclose(short["probabilities"], long["probabilities"], atol=1e-6)


def test_config_round_trip():
    assert_config_round_trip(IntentHead(num_classes=4, vector_dim=8, dropout=0.2, logit_scale=10.0))
