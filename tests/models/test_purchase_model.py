import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data.event_state import FEATURES, ITEM_FEATURES, PAIR_FEATURES
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model, build_purchase_model, top_k_items
from ecomrec_tf.models.purchase_model import candidate_name, input_specs
from ecomrec_tf.serving.check_export import check_export
from tests.helpers import assert_config_round_trip, assert_keras_round_trip

SHOES = "Nike Air 20 running shoes, black | shoes | Light and durable."
KETTLE = "Acme Pro 3 kettle, white | kitchen | Fast boiling."
HEADPHONES = "Sony Max 9 headphones, black | audio | Noise cancelling."
RAW = {
    "history": tf.constant([[SHOES, KETTLE], ["", ""], [HEADPHONES, ""]]),  # row 2: a new user
    "history_ids": tf.constant([["S1", "K1"], ["", ""], ["H1", ""]]),
    "item": tf.constant([HEADPHONES, SHOES, KETTLE]),
    "item_id": tf.constant(["H1", "S1", "K9"]),  # K9: an item no training ever saw
    "category": tf.constant(["audio", "shoes", "kitchen"]),
    "user_id": tf.constant(["U1", "U2", "U3"]),
    "query": tf.constant(["headphones", "", "kettle white"]),
    "price": tf.constant([199.0, np.nan, 35.0]),
    **{name: tf.constant([3.0, 0.0, 1.0]) for name in FEATURES},
}
RAW["user_idle_seconds"] = tf.constant([60.0, np.nan, 5.0])  # NaN: a new user
RAW["user_mean_price"] = tf.constant([150.0, np.nan, np.nan])
VOCABULARIES = {"user": ["U1", "U3"], "item": ["S1", "K1", "H1"], "category": ["audio", "shoes"]}


def raw(parts, rows=None):
    """RAW with only the inputs a model with these parts reads."""
    rows = slice(None) if rows is None else rows
    return {name: RAW[name][rows] for name in input_specs(parts)}


@pytest.fixture(scope="module")
def tiny_encoder():
    """The purchase model freezes its encoder: its own copy, not the session's shared one."""
    return load_encoder("tiny")


def build(encoder, **kwargs):
    keras.utils.set_random_seed(0)
    model = build_purchase_model(
        encoder, sequence_length=32, vocabulary_sizes={"user": 2, "item": 3, "category": 2}, **kwargs
    )
    model.set_vocabularies(VOCABULARIES)
    return model


@pytest.fixture(params=["attention", "two_tower"])
def model(request, tiny_encoder):
    return build(tiny_encoder, mode=request.param)


def test_outputs_and_frozen_encoder(model):
    outputs = model.predict(raw(model.parts), verbose=0)
    assert outputs["purchase_probability"].shape == (3,) and outputs["logit"].shape == (3,)
    assert outputs["user_vector"].shape == (3, 64) and outputs["item_vector"].shape == (3, 64)
    assert np.isfinite(outputs["purchase_probability"]).all()  # new user, new item, NaN counts and price
    np.testing.assert_allclose(np.linalg.norm(outputs["user_vector"], axis=1), 1.0, atol=1e-5)
    encoder_weights = {id(w) for w in model.backbone.weights}
    assert encoder_weights and not encoder_weights & {id(w) for w in model.trainable_weights}


@pytest.mark.parametrize("parts", [(), ("ids",), ("counts",), ("ids", "counts")])
def test_inputs_follow_the_parts(tiny_encoder, parts):
    model = build(tiny_encoder, parts=parts)
    assert set(model.input) == set(input_specs(parts))
    assert ("user_id" in model.input) == ("ids" in parts)
    assert ("item_views" in model.input) == ("counts" in parts)
    assert model.predict(raw(parts), verbose=0)["logit"].shape == (3,)
    with pytest.raises(ValueError, match="parts must be a subset"):
        build(tiny_encoder, parts=("ids", "clicks"))
    with pytest.raises(ValueError, match="fusion must be one of"):
        build(tiny_encoder, fusion="sum")


def test_unknown_price_is_the_same_as_a_missing_one(model):
    x = raw(model.parts)
    prices = [tf.constant([199.0, value, 35.0]) for value in (np.nan, -1.0, np.inf)]
    outputs = [model({**x, "price": price}, training=False)["logit"].numpy() for price in prices]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)
    np.testing.assert_allclose(outputs[0], outputs[2], atol=1e-6)


def test_every_id_the_vocabulary_lacks_scores_the_same(tiny_encoder):
    model = build(tiny_encoder)
    x = raw(model.parts, rows=slice(2, 3))  # item K9 and user U3
    logits = [
        model({**x, "item_id": tf.constant([new])}, training=False)["logit"].numpy()[0]
        for new in ("K9", "never-seen", "K1")
    ]
    assert logits[0] == pytest.approx(logits[1], abs=1e-6)  # both out of vocabulary
    assert logits[0] != pytest.approx(logits[2], abs=1e-6)  # a known item has its own embedding


def test_counts_change_the_score(tiny_encoder):
    model = build(tiny_encoder, parts=("counts",))
    x = raw(model.parts, rows=slice(0, 1))
    busy = {**x, "item_purchases": tf.constant([30.0]), "item_views": tf.constant([40.0])}
    assert model(busy, training=False)["logit"].numpy()[0] != pytest.approx(
        model(x, training=False)["logit"].numpy()[0], abs=1e-6
    )


def test_history_padding_and_order_of_pads_do_not_matter(model):
    x = raw(model.parts)
    wider = {**x, "history": tf.concat([x["history"], tf.fill([3, 3], "")], axis=1)}
    wider["history_ids"] = tf.concat([x["history_ids"], tf.fill([3, 3], "")], axis=1)
    np.testing.assert_allclose(
        model(wider, training=False)["logit"], model(x, training=False)["logit"], atol=1e-5
    )


def test_fit_learns_from_raw_strings(tiny_encoder):
    model = build(tiny_encoder)
    model.compile(keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    labels = np.array([1.0, 0.0, 1.0])
    x = raw(model.parts)
    before = model.evaluate(x, labels, verbose=0)
    repeated = {key: tf.concat([value] * 10, axis=0) for key, value in x.items()}
    model.fit(repeated, np.tile(labels, 10), batch_size=3, epochs=3, verbose=0)
    assert model.evaluate(x, labels, verbose=0) < before / 2


def rank_inputs(parts):
    """One user and four candidates, the second one padding."""
    x = {name: RAW[name][:1] for name in input_specs(parts, "user")}
    candidates = {
        "item": [SHOES, "", KETTLE, HEADPHONES],
        "price": [120.0, 0.0, 30.0, np.nan],
        "item_id": ["S1", "", "K1", "H1"],
        "category": ["shoes", "", "kitchen", "audio"],
        **{name: [1.0, 0.0, 4.0, 2.0] for name in (*ITEM_FEATURES, *PAIR_FEATURES)},
    }
    for name in input_specs(parts, "item"):
        x[candidate_name(name)] = tf.constant([candidates[name]])
    return x, candidates


def test_rank_orders_by_purchase_probability_and_puts_padding_last(model):
    x, candidates = rank_inputs(model.parts)
    ranked = model.rank(x)
    rows = [0, 2, 3]
    expected_inputs = {name: tf.repeat(x[name], 3, axis=0) for name in input_specs(model.parts, "user")}
    for name in input_specs(model.parts, "item"):
        expected_inputs[name] = tf.constant([candidates[name][i] for i in rows])
    expected = model.predict(expected_inputs, verbose=0)["purchase_probability"]
    np.testing.assert_allclose(ranked["scores"].numpy()[0, rows], expected, atol=1e-5)
    assert ranked["scores"].numpy()[0, 1] == -1.0
    assert ranked["ranking"].numpy()[0, -1] == 1
    assert list(ranked["ranking"].numpy()[0, :3]) == [rows[i] for i in np.argsort(-expected, kind="stable")]


def test_two_tower_probability_follows_the_towers_cosine(tiny_encoder):
    model = build(tiny_encoder, mode="two_tower")
    x = raw(model.parts)
    outputs = model(x, training=False)
    cosine = np.sum(outputs["user_vector"].numpy() * outputs["item_vector"].numpy(), axis=1)
    np.testing.assert_allclose(np.argsort(cosine), np.argsort(outputs["logit"].numpy()))
    users = model.embed_users({k: x[k] for k in input_specs(model.parts, "user")}).numpy()
    items = model.embed_items({k: x[k] for k in input_specs(model.parts, "item")}).numpy()
    np.testing.assert_allclose(np.sum(users * items, axis=1), cosine, atol=1e-5)


def test_top_k_items_is_exact():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(3, 8)).astype("float32"), rng.normal(size=(500, 8)).astype("float32")
    scores, indices = top_k_items(users, items, k=10)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-(users @ items.T), axis=1)[:, :10])
    np.testing.assert_allclose(scores.numpy(), np.sort(users @ items.T, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_calibration_is_applied_to_the_logit(model):
    x = raw(model.parts)
    logit = model(x, training=False)["logit"].numpy()
    model.set_calibration(0.5, -1.0)
    outputs = model(x, training=False)
    np.testing.assert_allclose(outputs["logit"].numpy(), 0.5 * logit - 1.0, atol=1e-5)
    np.testing.assert_allclose(
        outputs["purchase_probability"].numpy(), 1 / (1 + np.exp(-(0.5 * logit - 1.0))), atol=1e-6
    )


def test_config_and_keras_file_round_trip(model, tmp_path):
    model.set_calibration(2.0, 0.5)
    model.counts.adapt({name: np.arange(5, dtype=np.float32) for name in (*FEATURES, "price")})
    assert_config_round_trip(model)
    restored = assert_keras_round_trip(model, raw(model.parts), tmp_path)  # vocabularies and statistics
    assert restored.mode == model.mode and restored.parts == model.parts


def test_with_an_intent_model_rank_returns_the_query_intent(tiny_encoder, tmp_path):
    intent = build_intent_model(load_encoder("tiny"), ["order_status", "search_product"], sequence_length=16)
    model = build(tiny_encoder, intent_model=intent, parts=())
    assert not intent.trainable and model.core.get_layer("query_projection").kernel.shape[0] == 64 + 128
    x, _ = rank_inputs(model.parts)
    x["query"] = tf.constant(["red shoes"])
    ranked = model.rank(x)
    expected = intent.predict(["red shoes"], verbose=0)["probabilities"][0]
    assert ranked["intent"].numpy()[0].decode() == intent.labels[int(expected.argmax())]
    np.testing.assert_allclose(ranked["intent_confidence"].numpy()[0], expected.max(), atol=1e-5)
    assert_keras_round_trip(model, raw(model.parts), tmp_path)


@pytest.mark.slow
def test_saved_model_signatures_match_the_keras_model(tiny_purchase_export):
    model, version_dir = tiny_purchase_export  # two-tower; both modes share the serving code
    assert len(check_export(version_dir, model)) == 3  # ops, session loader + warm-up, outputs
    loaded = tf.saved_model.load(str(version_dir))
    signatures = loaded.signatures
    assert {"serving_default", "purchase_probability", "embed_user", "embed_item", "rank"} <= set(signatures)
    x = raw(model.parts)
    expected = model(x, training=False)
    served = signatures["purchase_probability"](**x)
    np.testing.assert_allclose(served["purchase_probability"], expected["purchase_probability"], atol=1e-5)
    user = signatures["embed_user"](**{k: x[k] for k in input_specs(model.parts, "user")})["user_vector"]
    np.testing.assert_allclose(user, expected["user_vector"], atol=1e-5)
    item = signatures["embed_item"](**{k: x[k] for k in input_specs(model.parts, "item")})["item_vector"]
    np.testing.assert_allclose(item, expected["item_vector"], atol=1e-5)
    ranking, _ = rank_inputs(model.parts)
    np.testing.assert_allclose(
        signatures["rank"](**ranking)["scores"], model.rank(ranking)["scores"], atol=1e-5
    )


CATALOG = ItemFeatures(image_dim=4, numeric=("weight",), categorical=("brand",))
SIDE = {  # candidates SHOES, HEADPHONES, KETTLE; HEADPHONES has no image
    "image_vector": [[1.0, 0.0, 0.5, 0.2], [np.nan] * 4, [0.0, 1.0, 0.1, 0.3]],
    "numeric_attributes": [[0.3], [0.2], [np.nan]],
    "categorical_attributes": [["nike"], ["sony"], [""]],
}


def multimodal_raw(parts=("ids", "counts")):
    """RAW for a model with `CATALOG`: rows 0 and 2 have image histories, row 1 is a new user."""
    x = raw(parts)
    item_rows, history_rows = [1, 0, 2], [[0, 2], [1, 1], [1, 1]]  # into SIDE
    for name, values in SIDE.items():
        x[name] = tf.constant([values[i] for i in item_rows])
        x[f"history_{name}"] = tf.constant([[values[i] for i in row] for row in history_rows])
    return x


@pytest.mark.parametrize("mode", ["attention", "two_tower"])
def test_item_features_are_inputs_that_change_the_score(tiny_encoder, mode, tmp_path):
    model = build(tiny_encoder, mode=mode, item_features=CATALOG, fusion="gated")
    assert set(model.input) == set(input_specs(("ids", "counts"), features=CATALOG))
    x = multimodal_raw()
    base = model(x, training=False)["logit"].numpy()
    assert np.isfinite(base).all()  # missing images in histories and candidates
    other = {**x, "image_vector": tf.constant([SIDE["image_vector"][2]] * 3)}
    assert not np.allclose(model(other, training=False)["logit"].numpy()[[0, 2]], base[[0, 2]], atol=1e-6)
    model.fusion.adapt(np.array([[0.1], [0.5]]))
    restored = assert_keras_round_trip(model, x, tmp_path)
    assert restored.item_features == CATALOG and restored.fusion_mode == "gated"


def test_without_item_features_the_fused_model_reads_the_text_only(tiny_encoder):
    """Gated fusion with every feature missing gives the text-only model's item vectors: a catalog
    without images or attributes trains the text-only model."""
    fused = build(tiny_encoder, mode="two_tower", item_features=CATALOG, fusion="gated")
    rng = np.random.default_rng(0)  # trained fusion weights, biases too (untrained ones are 0)
    for weight in fused.fusion.trainable_weights:
        weight.assign(rng.normal(size=weight.shape))
    text_only = build(tiny_encoder, mode="two_tower")
    text_only.set_weights(
        [w.numpy() for w in fused.weights if "item_fusion" not in w.path]
    )  # same towers, same encoder
    x = multimodal_raw()
    missing = {**x}
    for name, values in CATALOG.values(None).items():
        missing[name] = tf.constant([values] * 3)
        missing[f"history_{name}"] = tf.constant([[values] * 2] * 3)
    items = {k: v for k, v in x.items() if k in input_specs(("ids", "counts"), "item")}
    np.testing.assert_allclose(
        fused.embed_items({**items, **{k: missing[k] for k in CATALOG.shapes()}}),
        text_only.embed_items(items),
        atol=1e-6,
    )


def test_rank_passes_each_candidates_features(tiny_encoder):
    model = build(tiny_encoder, item_features=CATALOG)
    x = multimodal_raw()
    user = {name: x[name][:1] for name in model.input_specs("user")}
    request = dict(user)
    for name in model.input_specs("item"):
        request[candidate_name(name)] = x[name][None]  # the three items as one row's candidates
    ranked = model.rank(request)
    pairs = {name: tf.repeat(user[name], 3, axis=0) for name in user} | {
        name: x[name] for name in model.input_specs("item")
    }
    np.testing.assert_allclose(
        ranked["scores"].numpy()[0], model(pairs, training=False)["purchase_probability"], atol=1e-5
    )
