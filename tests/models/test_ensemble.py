import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.linear_model import LogisticRegression

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model, build_purchase_model
from ecomrec_tf.models.ensemble import build_ensemble
from ecomrec_tf.models.purchase_model import candidate_name
from ecomrec_tf.training.ensemble import fit_stacking, stacking_scores
from tests.helpers import assert_config_round_trip, assert_keras_round_trip
from tests.models.test_purchase_model import CATALOG, multimodal_raw

LABELS = ["order_status", "refund", "search_product"]
PARTS = ("counts",)
TEXTS = ["where is my parcel", "i want my money back", "red running shoes", "refund please", "track order"]


@pytest.fixture(scope="module")
def intent_members():
    members = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        members.append(build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16))
    return members


def predictions(members, x):
    return [{k: np.asarray(v) for k, v in m(x, training=False).items()} for m in members]


def test_averaging_mixes_probabilities_and_keeps_unit_vectors(intent_members, tmp_path):
    ensemble = build_ensemble(intent_members, weights=[3, 1])
    outputs = ensemble.predict(TEXTS, verbose=0)
    a, b = predictions(intent_members, tf.constant(TEXTS))
    np.testing.assert_allclose(
        outputs["probabilities"], 0.75 * a["probabilities"] + 0.25 * b["probabilities"], atol=1e-6
    )
    vectors = outputs["intent_vector"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = [m["intent_vector"] @ m["intent_vector"][0] for m in (a, b)]  # against the first text
    np.testing.assert_allclose(vectors @ vectors[0], 0.75 * cosines[0] + 0.25 * cosines[1], atol=1e-5)
    assert ensemble.labels == LABELS and not any(
        w.trainable for w in ensemble.weights if "stacker" not in w.path
    )
    assert_config_round_trip(ensemble)
    assert_keras_round_trip(ensemble, tf.constant(TEXTS), tmp_path)


def test_stacking_weighs_the_informative_member_and_needs_no_label_it_lacks(intent_members):
    """Maximum likelihood on valid: an informative member outweighs a noisy one, the fit beats the mean
    of the scores, a label the validation data lacks is no obstacle; the graph is the numpy path."""
    ensemble = build_ensemble(intent_members, method="stacking")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)  # "search_product" (2) never occurs
    informative = np.full((200, 3), 0.1)
    informative[np.arange(200), labels] = 0.8
    noise = rng.dirichlet(np.ones(3), size=200)
    fitted = fit_stacking(ensemble, [{"probabilities": informative}, {"probabilities": noise}], labels)
    assert (
        fitted["weights"][0] > 1.0 > abs(fitted["weights"][1])
        and fitted["log_loss"] < fitted["log_loss_of_mean"]
    )
    outputs = predictions(intent_members, tf.constant(TEXTS))
    np.testing.assert_allclose(  # the numpy path (held-out scoring) is the graph's
        ensemble.combine(outputs)["probabilities"],
        ensemble.predict(TEXTS, verbose=0)["probabilities"],
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_stacking(build_ensemble(intent_members), outputs, labels[:5])


def test_members_must_be_alike(intent_members):
    with pytest.raises(ValueError, match="at least two members"):
        build_ensemble(intent_members[:1])
    with pytest.raises(ValueError, match="share an encoder object"):
        build_ensemble([intent_members[0], intent_members[0]])
    other = build_intent_model(load_encoder("tiny"), ["a", "b"], sequence_length=16)
    with pytest.raises(ValueError, match="share their labels"):
        build_ensemble([intent_members[0], other])
    purchase = build_purchase_model(load_encoder("tiny"), 16, parts=())
    with pytest.raises(ValueError, match="models of one head"):
        build_ensemble([intent_members[0], purchase])
    with pytest.raises(ValueError, match=r"differ in \['category', 'history_ids', 'item_id', 'user_id'\]"):
        build_ensemble([purchase, build_purchase_model(load_encoder("tiny"), 16, parts=("ids",))])


@pytest.fixture(scope="module")
def purchase_ensemble():
    """Two multimodal members (image vectors, attributes): the export below checks the item-feature
    inputs of every purchase signature too."""
    members = []
    for mode in ("attention", "two_tower"):
        keras.utils.set_random_seed(len(members))
        members.append(
            build_purchase_model(load_encoder("tiny"), 32, mode=mode, parts=PARTS, item_features=CATALOG)
        )
    return build_ensemble(members, method="stacking"), members


def rank_request(ensemble, x):
    """Row 0's user with the three rows' items as its candidates."""
    request = {name: x[name][:1] for name in ensemble.input_specs("user")}
    return request | {candidate_name(name): x[name][None] for name in ensemble.input_specs("item")}


def test_purchase_stacking_and_the_members_signatures(purchase_ensemble, tmp_path):
    ensemble, members = purchase_ensemble
    x = multimodal_raw(PARTS)
    outputs = predictions(members, x)
    fit_stacking(ensemble, outputs, [1, 0, 1])
    labels = np.array([1, 0, 1, 1, 0, 0] * 20)  # binary stacking is logistic regression on member logits
    logits = [{"logit": np.random.default_rng(i).normal(size=120) + labels * (i + 1)} for i in range(2)]
    fitted = fit_stacking(ensemble, logits, labels)
    expected = LogisticRegression(C=1e9, max_iter=1000).fit(stacking_scores(logits), labels)
    np.testing.assert_allclose(fitted["weights"], expected.coef_[0], rtol=1e-3)
    assert fitted["bias"] == pytest.approx(expected.intercept_[0], abs=1e-3)
    np.testing.assert_allclose(  # set in the ensemble
        ensemble.combine(logits)["logit"], expected.decision_function(stacking_scores(logits)), atol=1e-3
    )
    combined = ensemble(x, training=False)
    np.testing.assert_allclose(combined["logit"], ensemble.combine(outputs)["logit"], atol=1e-5)
    np.testing.assert_allclose(
        combined["purchase_probability"], 1 / (1 + np.exp(-combined["logit"].numpy())), atol=1e-6
    )
    ranked = ensemble.rank(rank_request(ensemble, x))
    user_rows = {name: tf.repeat(x[name][:1], 3, axis=0) for name in ensemble.input_specs("user")}
    pairs = ensemble(user_rows | {name: x[name] for name in ensemble.input_specs("item")}, training=False)
    np.testing.assert_allclose(ranked["scores"].numpy()[0], pairs["purchase_probability"], atol=1e-5)
    users = ensemble.embed_users({k: x[k] for k in ensemble.input_specs("user")}).numpy()
    items = ensemble.embed_items({k: x[k] for k in ensemble.input_specs("item")}).numpy()
    np.testing.assert_allclose(
        np.sum(users * items, axis=1),
        np.mean([np.sum(o["user_vector"] * o["item_vector"], axis=1) for o in outputs], axis=0),
        atol=1e-5,
    )
    assert_keras_round_trip(ensemble, x, tmp_path)


@pytest.mark.slow
def test_a_purchase_ensemble_exports_with_the_members_signatures(purchase_ensemble, tmp_path):
    from ecomrec_tf.export import export_saved_model
    from ecomrec_tf.serving.check_export import check_export

    ensemble, _ = purchase_ensemble
    version_dir = export_saved_model(ensemble, tmp_path / "purchase")
    assert len(check_export(version_dir, ensemble)) == 3  # TF Serving's ops, session loader, warm-up
    signatures = tf.saved_model.load(str(version_dir)).signatures
    assert {"serving_default", "purchase_probability", "embed_user", "embed_item", "rank"} <= set(signatures)
    assert "history_image_vector" in signatures["embed_user"].structured_input_signature[1]
    x = multimodal_raw(PARTS)
    expected = ensemble(x, training=False)
    served = signatures["serving_default"](**x)
    np.testing.assert_allclose(served["purchase_probability"], expected["purchase_probability"], atol=1e-5)
    items = {name: x[name] for name in ensemble.input_specs("item")}
    np.testing.assert_allclose(
        signatures["embed_item"](**items)["item_vector"], expected["item_vector"], atol=1e-5
    )
    request = rank_request(ensemble, x)
    np.testing.assert_allclose(
        signatures["rank"](**request)["scores"], ensemble.rank(request)["scores"], atol=1e-5
    )
