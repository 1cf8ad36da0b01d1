import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import SentenceEncoder, load_encoder
from ecomrec_tf.preprocessing import TextPreprocessor
from tests.helpers import assert_config_round_trip


@pytest.fixture(scope="module")
def tiny_encoder():
    """SentenceEncoder freezes its backbone: a copy of the encoder, not the session's shared one."""
    return load_encoder("tiny")


def test_each_text_gets_the_vector_it_gets_alone(tiny_encoder):
    layer = SentenceEncoder(tiny_encoder.backbone, TextPreprocessor(tiny_encoder.tokenizer, 32))
    texts = tf.constant([["red running shoes", ""], ["a kettle", "red running shoes"]])
    vectors, present = layer(texts)
    assert vectors.shape == (2, 2, 64)
    assert present.numpy().tolist() == [[True, False], [True, True]]
    for i, j in [(0, 0), (1, 0), (1, 1)]:
        alone, _ = layer(tf.constant([texts[i, j].numpy()]))
        np.testing.assert_allclose(vectors[i, j], alone[0], atol=1e-5)  # padding in a batch changes nothing
    np.testing.assert_array_equal(vectors[0, 0], vectors[1, 1])  # one text, encoded once


def test_frozen_unless_trainable(tiny_encoder):
    preprocessor = TextPreprocessor(tiny_encoder.tokenizer, 32)
    assert SentenceEncoder(tiny_encoder.backbone, preprocessor).trainable_weights == []
    assert SentenceEncoder(tiny_encoder.backbone, preprocessor, trainable=True).trainable_weights


def test_config_round_trip(tiny_encoder):
    assert_config_round_trip(
        SentenceEncoder(tiny_encoder.backbone, TextPreprocessor(tiny_encoder.tokenizer, 8))
    )
