import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.models import IntentModel
from tests.conftest import LABELS, TEXTS
from tests.helpers import assert_config_round_trip, assert_keras_round_trip, assert_saved_model_parity

LABEL_IDS = np.array([0, 1, 2, 0, 1, 2])


def test_outputs_for_raw_strings(tiny_intent_model):
    outputs = tiny_intent_model.predict(np.array(TEXTS), verbose=0)
    assert outputs["probabilities"].shape == (6, 3) and outputs["intent_vector"].shape == (6, 128)
    np.testing.assert_allclose(outputs["probabilities"].sum(1), 1.0, atol=1e-5)


def test_predict_keeps_input_order(tiny_intent_model):
    """predict sorts by length internally; outputs must still line up with inputs."""
    texts = ["a much longer query about a refund that never came", "hi", "red shoes"]
    batched = tiny_intent_model.predict(texts, verbose=0)["probabilities"]
    one_by_one = np.concatenate([tiny_intent_model.predict([t], verbose=0)["probabilities"] for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_fit_on_numpy_strings_and_on_tf_data(tiny_intent_model):
    model = tiny_intent_model
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(np.array(TEXTS), LABEL_IDS, verbose=0, return_dict=True)
    model.fit(np.array(TEXTS * 4), np.tile(LABEL_IDS, 4), epochs=8, batch_size=8, verbose=0)
    dataset = text_classification_dataset(TEXTS, LABEL_IDS, batch_size=4)
    model.fit(dataset, epochs=2, verbose=0)
    after = model.evaluate(dataset, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] / 2
    assert after["accuracy"] == 1.0


def test_bad_strings_at_predict_time_give_defined_outputs(tiny_intent_model):
    texts = tf.constant([b"", b"   ", b"\xff\xfe\xfd", ("word " * 5000).encode()])
    outputs = tiny_intent_model.predict(texts, verbose=0)
    assert np.isfinite(outputs["probabilities"]).all()
    np.testing.assert_allclose(outputs["probabilities"].sum(1), 1.0, atol=1e-5)


def test_labels_must_be_distinct(tiny_encoder):
    from ecomrec_tf.preprocessing import TextPreprocessor

    with pytest.raises(ValueError, match="at least two distinct"):
        IntentModel(tiny_encoder.backbone, TextPreprocessor(tiny_encoder.tokenizer), ["a", "a"])


def test_config_round_trip(tiny_intent_model):
    assert_config_round_trip(tiny_intent_model)


def test_keras_file_round_trip(tiny_intent_model, tmp_path):
    restored = assert_keras_round_trip(tiny_intent_model, tf.constant(TEXTS), tmp_path)
    assert restored.labels == LABELS


def test_saved_model_parity(tiny_intent_model, tmp_path):
    version_dir = assert_saved_model_parity(tiny_intent_model, TEXTS, tmp_path)
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = serve(text=tf.constant(TEXTS))
    assert set(outputs) == {"label", "label_id", "probabilities", "intent_vector"}
    labels = [label.decode() for label in outputs["label"].numpy()]
    assert labels == [LABELS[i] for i in outputs["label_id"].numpy()]
    # bad strings at serving time: defined outputs, no error
    odd = serve(text=tf.constant([b"", b"\xff\xfe", b"x" * 100_000]))
    assert np.isfinite(odd["probabilities"].numpy()).all() and odd["label"].shape == (3,)
