import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models import build_intent_model, build_purchase_model, top_k_items
from ecomrec_tf.serving.check_export import check_export
from tests.helpers import assert_config_round_trip, assert_keras_round_trip

SHOES = "Nike Air 20 running shoes, black | shoes | Light and durable."
KETTLE = "Acme Pro 3 kettle, white | kitchen | Fast boiling."
HEADPHONES = "Sony Max 9 headphones, black | audio | Noise cancelling."
RAW = {
    "history": tf.constant([[SHOES, KETTLE], ["", ""], [HEADPHONES, ""]]),  # row 2: a new user
    "item": tf.constant([HEADPHONES, SHOES, KETTLE]),
    "query": tf.constant(["headphones", "", "kettle white"]),
    "price": tf.constant([199.0, np.nan, 35.0]),
}


@pytest.fixture(scope="module")
def tiny_encoder():
    """The purchase model freezes its encoder: its own copy, not the session's shared one."""
    return load_encoder("tiny")


@pytest.fixture(params=["attention", "two_tower"])
def model(request, tiny_encoder):
    keras.utils.set_random_seed(0)
    return build_purchase_model(tiny_encoder, sequence_length=32, mode=request.param)


def test_outputs_and_frozen_encoder(model):
    outputs = model.predict(RAW, verbose=0)
    assert outputs["purchase_probability"].shape == (3,) and outputs["logit"].shape == (3,)
    assert outputs["user_vector"].shape == (3, 64) and outputs["item_vector"].shape == (3, 64)
    assert np.isfinite(outputs["purchase_probability"]).all()  # new user and unknown (NaN) price included
    # Unit user vectors; a new user without a query gets the user tower's learned bias (zeros untrained).
    np.testing.assert_allclose(np.linalg.norm(outputs["user_vector"][[0, 2]], axis=1), 1.0, atol=1e-5)
    assert np.isfinite(outputs["user_vector"]).all()
    assert not any("bert" in w.path or "embeddings" in w.path for w in model.trainable_weights)


def test_unknown_price_is_the_same_as_a_missing_one(model):
    prices = [tf.constant([199.0, value, 35.0]) for value in (np.nan, -1.0, np.inf)]
    outputs = [model({**RAW, "price": price}, training=False)["logit"].numpy() for price in prices]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)
    np.testing.assert_allclose(outputs[0], outputs[2], atol=1e-6)


def test_history_padding_and_order_of_pads_do_not_matter(model):
    wider = {**RAW, "history": tf.concat([RAW["history"], tf.fill([3, 3], "")], axis=1)}
    np.testing.assert_allclose(
        model(wider, training=False)["logit"], model(RAW, training=False)["logit"], atol=1e-5
    )


def test_fit_learns_from_raw_strings(tiny_encoder):
    model = build_purchase_model(tiny_encoder, sequence_length=32)
    model.compile(keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    labels = np.array([1.0, 0.0, 1.0])
    before = model.evaluate(RAW, labels, verbose=0)
    repeated = {key: tf.concat([value] * 10, axis=0) for key, value in RAW.items()}
    model.fit(repeated, np.tile(labels, 10), batch_size=3, epochs=3, verbose=0)
    assert model.evaluate(RAW, labels, verbose=0) < before / 2


def test_rank_orders_by_purchase_probability_and_puts_padding_last(model):
    candidates = tf.constant([[SHOES, "", KETTLE, HEADPHONES]])
    prices = tf.constant([[120.0, 0.0, 30.0, np.nan]])
    ranked = model.rank(tf.constant(["shoes"]), RAW["history"][:1], candidates, prices)
    expected = model.predict(
        {
            "history": tf.repeat(RAW["history"][:1], 3, axis=0),
            "item": tf.constant([SHOES, KETTLE, HEADPHONES]),
            "query": tf.constant(["shoes"] * 3),
            "price": tf.constant([120.0, 30.0, np.nan]),
        },
        verbose=0,
    )["purchase_probability"]
    np.testing.assert_allclose(ranked["scores"].numpy()[0, [0, 2, 3]], expected, atol=1e-5)
    assert ranked["scores"].numpy()[0, 1] == -1.0
    assert ranked["ranking"].numpy()[0, -1] == 1
    assert list(ranked["ranking"].numpy()[0, :3]) == [
        [0, 2, 3][i] for i in np.argsort(-expected, kind="stable")
    ]


def test_two_tower_probability_follows_the_towers_cosine(tiny_encoder):
    model = build_purchase_model(tiny_encoder, sequence_length=32, mode="two_tower")
    outputs = model(RAW, training=False)
    cosine = np.sum(outputs["user_vector"].numpy() * outputs["item_vector"].numpy(), axis=1)
    np.testing.assert_allclose(np.argsort(cosine), np.argsort(outputs["logit"].numpy()))
    users = model.embed_users(RAW["history"], RAW["query"]).numpy()
    items = model.embed_items(RAW["item"], RAW["price"]).numpy()
    np.testing.assert_allclose(np.sum(users * items, axis=1), cosine, atol=1e-5)


def test_top_k_items_is_exact(tiny_encoder):
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(3, 8)).astype("float32"), rng.normal(size=(500, 8)).astype("float32")
    scores, indices = top_k_items(users, items, k=10)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-(users @ items.T), axis=1)[:, :10])
    np.testing.assert_allclose(scores.numpy(), np.sort(users @ items.T, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_calibration_is_applied_to_the_logit(model):
    raw = model(RAW, training=False)["logit"].numpy()
    model.set_calibration(0.5, -1.0)
    outputs = model(RAW, training=False)
    np.testing.assert_allclose(outputs["logit"].numpy(), 0.5 * raw - 1.0, atol=1e-5)
    np.testing.assert_allclose(
        outputs["purchase_probability"].numpy(), 1 / (1 + np.exp(-(0.5 * raw - 1.0))), atol=1e-6
    )


def test_config_and_keras_file_round_trip(model, tmp_path):
    model.set_calibration(2.0, 0.5)
    assert_config_round_trip(model)
    restored = assert_keras_round_trip(model, RAW, tmp_path)
    assert restored.mode == model.mode


def test_with_an_intent_model_rank_returns_the_query_intent(tmp_path):
    encoder = load_encoder("tiny")
    intent = build_intent_model(load_encoder("tiny"), ["order_status", "search_product"], sequence_length=16)
    model = build_purchase_model(encoder, sequence_length=32, intent_model=intent)
    assert not intent.trainable and model.core.get_layer("query_projection").kernel.shape[0] == 64 + 128
    ranked = model.rank(
        tf.constant(["red shoes"]),
        RAW["history"][:1],
        tf.constant([[SHOES, KETTLE]]),
        tf.constant([[1.0, 2.0]]),
    )
    expected = intent.predict(["red shoes"], verbose=0)["probabilities"][0]
    assert ranked["intent"].numpy()[0].decode() == intent.labels[int(expected.argmax())]
    np.testing.assert_allclose(ranked["intent_confidence"].numpy()[0], expected.max(), atol=1e-5)
    assert_keras_round_trip(model, RAW, tmp_path)


def test_saved_model_signatures_match_the_keras_model(tiny_encoder, tmp_path):
    model = build_purchase_model(tiny_encoder, sequence_length=32)  # both modes share the serving code
    version_dir = export_saved_model(model, tmp_path / "saved_models" / "purchase")
    assert len(check_export(version_dir, model)) == 3  # ops, session loader + warm-up, outputs
    loaded = tf.saved_model.load(str(version_dir))
    assert {"serving_default", "purchase_probability", "embed_user", "embed_item", "rank"} <= set(
        loaded.signatures
    )
    expected = model(RAW, training=False)
    served = loaded.signatures["purchase_probability"](**RAW)
    np.testing.assert_allclose(served["purchase_probability"], expected["purchase_probability"], atol=1e-5)
    user = loaded.signatures["embed_user"](history=RAW["history"], query=RAW["query"])["user_vector"]
    np.testing.assert_allclose(user, expected["user_vector"], atol=1e-5)
    item = loaded.signatures["embed_item"](item=RAW["item"], price=RAW["price"])["item_vector"]
    np.testing.assert_allclose(item, expected["item_vector"], atol=1e-5)
    candidates, prices = tf.constant([[SHOES, KETTLE, ""]]), tf.constant([[1.0, 2.0, 3.0]])
    args = (tf.constant(["shoes"]), RAW["history"][:1], candidates, prices)
    served = loaded.signatures["rank"](
        query=args[0], history=args[1], candidates=args[2], candidate_price=args[3]
    )
    np.testing.assert_allclose(served["scores"], model.rank(*args)["scores"], atol=1e-5)
