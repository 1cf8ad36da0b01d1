import json
import math

import numpy as np
import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.example_store import StoredExamples
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.data.purchase_data import VectorCache, read_purchase_data
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.data.task_datasets import purchase_dataset
from ecomrec_tf.evaluation.purchase import predict_probabilities
from ecomrec_tf.training import Trainer, make_optimizer
from ecomrec_tf.training.purchase import (
    calibrate,
    fit_statistics,
    purchase_datasets,
    purchase_task,
    train_purchase,
)
from ecomrec_tf.training.purchase_update import update_purchase


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A shop with image vectors: the model trained here fuses them (`item_features="auto"`), so every
    test below also checks the multimodal path (cached vectors vs raw inputs, update, the Trainer)."""
    out = tmp_path_factory.mktemp("shop")
    generate_shop(out, ShopConfig(users=150, seed=4, image_dim=8), progress=False)
    return out


@pytest.fixture(scope="module")
def trained(shop, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("purchase_run")
    model, result = train_purchase(
        shop / "items.jsonl",
        shop / "events.jsonl",
        run_dir,
        encoder="tiny",
        epochs=2,
        batch_size=64,
        sequence_length=32,
        catalog_negatives=1,
        verbose=0,
    )
    return model, result, run_dir


def test_train_writes_the_run_and_reports_model_and_baselines(trained, shop):
    model, result, run_dir = trained
    assert model.item_features == ItemFeatures(image_dim=8) and model.fusion is not None
    for name in (
        "model.keras",
        "config.json",
        "history.json",
        "curves.png",
        "test_purchase_metrics.json",
        "test_roc.png",
        "test_reliability.png",
    ):
        assert (run_dir / name).is_file(), name
    baselines = {
        "popularity",
        "logistic_regression",
        "logistic_regression_cross",
        "logistic_regression_counts",
    }
    assert {"model", "user_item_bias", "oracle", *baselines} <= set(result)
    for name in ("model", "logistic_regression", "user_item_bias", "oracle"):
        metrics = result[name]
        assert 0 <= metrics["auc"] <= 1 and metrics["log_loss"] > 0 and 0 <= metrics["ece"] <= 1
        assert {"ndcg@10", "recall@10", "mrr"} <= set(metrics)
    assert result["oracle"]["auc"] > 0.7  # the generator's own probabilities rank well
    # It learned (a constant model scores 0.5): 0.61 here, beside 0.57 for popularity (150 users, a
    # tiny random encoder, 2 epochs; the hidden style term makes this shop harder than a text-only one).
    assert result["model"]["auc"] > max(0.6, result["popularity"]["auc"] + 0.03)
    assert math.isfinite(result["gap_closed"])
    assert json.loads((run_dir / "test_purchase_metrics.json").read_text())["model"] == result["model"]
    # Reported metrics hold real views only; the training device's catalog negatives are apart.
    data = read_purchase_data(shop / "items.jsonl", shop / "events.jsonl", catalog_negatives=1)
    assert result["model"]["examples"] == len(data.scored("test")) < len(data.splits["test"])
    assert result["with_catalog_negatives"]["model"]["examples"] == len(data.splits["test"])
    assert {"new_items", "new_users"} == set(result["cold_start"])
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.rglob("*"))  # TensorBoard
    import tensorflow as tf

    images = {  # every PNG of the run on TensorBoard's Images dashboard too
        value.tag: value.metadata.plugin_data.plugin_name
        for path in (run_dir / "images").iterdir()
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
    }
    assert images == {name: "images" for name in ("curves", "test_roc", "test_reliability")}


def test_cached_vectors_give_the_same_probabilities_as_raw_strings(trained, shop, tmp_path):
    model = trained[0]
    data = read_purchase_data(shop / "items.jsonl", shop / "events.jsonl")
    examples = data.splits["test"][:40]
    cache = VectorCache(model, data.items, {e["query"] or "" for e in examples}, progress=False)
    from_cache = predict_probabilities(model, cache, examples)
    from_strings = model.predict(
        purchase_dataset(examples, data.items, batch_size=16, bucket=False, inputs=model.input), verbose=0
    )
    np.testing.assert_allclose(from_cache, from_strings["purchase_probability"], atol=1e-5)
    stored = StoredExamples.write(examples, tmp_path / "stored", data.items)  # read back chunk by chunk
    np.testing.assert_allclose(predict_probabilities(model, cache, stored), from_cache, atol=1e-6)


def test_calibration_folds_platt_scaling_into_the_model(trained):
    model = trained[0]
    scale, bias = float(model.calibration.scale.numpy()), float(model.calibration.bias.numpy())
    rng = np.random.default_rng(0)
    logits = rng.normal(size=2000)
    labels = (rng.uniform(size=2000) < 1 / (1 + np.exp(-(2.0 * logits - 1.0)))).astype(int)
    a, b = calibrate(model, logits, labels)
    assert a == pytest.approx(2.0, abs=0.3) and b == pytest.approx(-1.0, abs=0.3)
    assert float(model.calibration.scale.numpy()) == pytest.approx(a * scale)
    assert float(model.calibration.bias.numpy()) == pytest.approx(a * bias + b)
    model.set_calibration(scale, bias)


def test_update_replays_old_examples_and_reports_both_periods(trained, shop, tmp_path):
    data = read_purchase_data(shop / "items.jsonl", shop / "events.jsonl", valid_fraction=0, test_fraction=0)
    times = sorted(e["timestamp"] for e in data.splits["train"])
    since = times[int(0.7 * len(times))]
    _, result = update_purchase(
        trained[2] / "model.keras",
        shop / "items.jsonl",
        shop / "events.jsonl",
        since,
        tmp_path,
        replay=0.5,
        epochs=1,
        verbose=0,
    )
    assert result["replayed_examples"] == math.ceil(0.5 * result["new_examples"])
    for when in ("before", "after"):
        assert set(result[when]) == {"old_period", "new_period"}
        assert result[when]["old_period"]["auc"] > 0.6 and result[when]["new_period"]["auc"] > 0.55  # learned
    assert result["after"]["new_period"] != result["before"]["new_period"]  # the update changed the model
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "update.json").is_file()


def test_update_needs_events_on_both_sides_of_since(trained, shop, tmp_path):
    with pytest.raises(DataError, match="--since"):
        update_purchase(trained[2] / "model.keras", shop / "items.jsonl", shop / "events.jsonl", 0, tmp_path)


def test_the_distributed_loop_trains_the_purchase_task(trained, shop, tmp_path):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_purchase_model

    data = read_purchase_data(shop / "items.jsonl", shop / "events.jsonl")
    trained_model = trained[0]  # an untrained one like it: the loop has something to learn
    model = build_purchase_model(
        load_encoder("tiny"), 32, item_features=trained_model.item_features,
        vocabulary_sizes=trained_model.vocabulary_sizes,
    )  # fmt: skip
    fit_statistics(model, data)
    cache = VectorCache(model, data.items, data.queries(), progress=False)
    task = purchase_task(
        model, *purchase_datasets(cache, data.splits["train"], data.splits["valid"], batch_size=64)
    )
    before = Trainer(task, make_optimizer(1e-3, 10)).evaluate(task)
    history = Trainer(task, make_optimizer(3e-3, 40)).fit(epochs=1, run_dir=tmp_path, verbose=0)
    assert history["val_purchase_loss"][-1] < before["purchase_loss"]
    assert "val_purchase_auc" in history


@pytest.mark.parametrize(
    "change, message",
    [
        ({"title": "  "}, "items.jsonl:2: field 'title' is empty"),
        ({"price": "NaN"}, "items.jsonl:2: field 'price' must be a finite number >= 0, got nan"),
        ({"price": "cheap"}, "items.jsonl:2: field 'price' is not a number"),
    ],
)
def test_bad_items_are_errors_naming_file_line_and_field(tmp_path, shop, change, message):
    items = (shop / "items.jsonl").read_text().splitlines()
    (tmp_path / "items.jsonl").write_text(
        "\n".join([items[0], json.dumps({**json.loads(items[1]), **change})])
    )
    with pytest.raises(DataError, match=message):
        read_purchase_data(tmp_path / "items.jsonl", shop / "events.jsonl")


def test_with_an_intent_model_cached_vectors_still_match_raw_strings(shop):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model, build_purchase_model

    intent = build_intent_model(load_encoder("tiny"), ["order_status", "search_product"], sequence_length=16)
    model = build_purchase_model(load_encoder("tiny"), sequence_length=32, intent_model=intent, parts=())
    data = read_purchase_data(shop / "items.jsonl", shop / "events.jsonl")
    examples = [e for e in data.splits["test"] if e["query"]][:20] + data.splits["test"][:5]
    cache = VectorCache(model, data.items, {e["query"] or "" for e in examples}, progress=False)
    assert cache.query_intents.shape == (len(cache.queries), 128)
    from_cache = predict_probabilities(model, cache, examples)
    batches = purchase_dataset(examples, data.items, batch_size=8, bucket=False, inputs=model.input)
    from_strings = model.predict(batches, verbose=0)["purchase_probability"]
    np.testing.assert_allclose(from_cache, from_strings, atol=1e-5)
