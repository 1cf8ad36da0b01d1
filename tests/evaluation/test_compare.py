"""Offline A/B comparison: per-version metrics equal scikit-learn's and `ranking_metrics`, a better version's
difference has an interval above 0, identical versions differ by exactly 0, and exports score as their
Keras model does."""

import numpy as np
import pytest
from sklearn import metrics

from ecomrec_tf.evaluation.compare import compare_exports, compare_scores, score_export
from ecomrec_tf.evaluation.purchase import ranking_metrics


def logged(users: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(users), 10)
    groups = user * 2 + (np.arange(len(user)) % 10 >= 5)  # two sessions of 5 views per user
    labels = (rng.random(len(user)) < 0.2).astype(float)
    return labels, groups, user, rng


def test_a_better_version_is_ahead_with_an_interval_above_zero():
    labels, groups, users, rng = logged()
    noise = rng.normal(size=len(labels))
    scores = {"A": noise, "B": labels + noise}  # B knows the labels a little
    result = compare_scores(labels, groups, users, scores, resamples=200)
    for name, version in result["versions"].items():
        assert version["auc"] == pytest.approx(metrics.roc_auc_score(labels, scores[name]))
        assert version["ndcg@10"] == pytest.approx(ranking_metrics(labels, scores[name], groups)["ndcg@10"])
    auc = result["differences"]["B"]["auc"]
    assert 0 < auc["low"] < auc["difference"] < auc["high"] and auc["p_ahead"] == 1.0
    assert result["differences"]["B"]["ndcg@10"]["low"] > 0
    assert result["users"] == 200 and result["resamples"] == 200


def test_identical_versions_differ_by_exactly_zero_and_noise_straddles_it():
    labels, groups, users, rng = logged()
    same = rng.normal(size=len(labels))
    zero = compare_scores(labels, groups, users, {"A": same, "B": same.copy()}, resamples=50)
    assert zero["differences"]["B"]["auc"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_ahead": 0.0}
    noise = compare_scores(
        labels, groups, users, {"A": same, "B": rng.normal(size=len(labels))}, resamples=200
    )
    assert noise["differences"]["B"]["auc"]["low"] < 0 < noise["differences"]["B"]["auc"]["high"]


def test_bad_comparisons_are_refused_with_the_reason():
    labels, groups, users, _ = logged(20)
    with pytest.raises(ValueError, match="at least two versions"):
        compare_scores(labels, groups, users, {"A": labels})
    with pytest.raises(ValueError, match="no purchased view"):
        compare_scores(np.zeros_like(labels), groups, users, {"A": labels, "B": labels})


@pytest.mark.slow
def test_exports_are_scored_on_logged_events_as_their_keras_model_scores(
    tiny_purchase_export, tmp_path, capsys
):
    """...and `ecomrec-tf evaluate compare` reports the same comparison."""
    import json

    from ecomrec_tf.cli import main
    from ecomrec_tf.data.events import purchase_examples
    from ecomrec_tf.data.task_datasets import purchase_columns
    from tests.serving.test_beam import EVENTS, ITEMS, T0

    model, path = tiny_purchase_export
    later = [e | {"timestamp": e["timestamp"] + 1000} for e in EVENTS] + [
        {"user_id": "u1", "item_id": "SKU-5", "timestamp": T0 + 1005, "event": "purchase", "query": None},
        {"user_id": "u1", "item_id": "SKU-5", "timestamp": T0 + 1001, "event": "view", "query": None},
    ]
    columns = purchase_columns(purchase_examples(later, ITEMS, earlier=EVENTS), ITEMS)
    expected = model.predict({k: v for k, v in columns.items() if k != "label"}, verbose=0)
    np.testing.assert_allclose(score_export(path, columns), expected["purchase_probability"], atol=1e-5)
    result = compare_exports({"v1": path, "v1 again": path}, ITEMS, later, earlier=EVENTS, resamples=20)
    assert (
        result["examples"] == len(columns["label"])
        and result["differences"]["v1 again"]["auc"]["difference"] == 0
    )
    write = lambda name, rows: (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))  # noqa: E731
    write("items.jsonl", [{"item_id": item_id} | item for item_id, item in ITEMS.items()])
    write("earlier.jsonl", EVENTS)
    write("later.jsonl", later)
    files = ["--items", str(tmp_path / "items.jsonl"), "--events", str(tmp_path / "later.jsonl")]
    files += ["--history-events", str(tmp_path / "earlier.jsonl")]
    assert main(["evaluate", "compare", "--model", str(path), "--model", str(path), *files, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["versions"][f"purchase/{path.name}"] == result["versions"]["v1"]
    assert main(["evaluate", "compare", "--model", str(path), *files]) == 2
    assert "give --model at least twice" in capsys.readouterr().err
