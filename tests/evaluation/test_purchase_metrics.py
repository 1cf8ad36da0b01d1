import numpy as np
import pytest
from sklearn import metrics

from ecomrec_tf.evaluation.purchase import (
    expected_calibration_error,
    plot_reliability,
    plot_roc,
    purchase_metrics,
    ranking_metrics,
    session_ids,
)


def test_auc_and_log_loss_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(0.3 * labels + rng.uniform(0, 0.7, 200), 0, 1)
    result = purchase_metrics(labels, scores)
    assert result["auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert result["log_loss"] == pytest.approx(metrics.log_loss(labels, scores))


def test_expected_calibration_error():
    # Two bins: predictions 0.1 (observed 0.0) and 0.9 (observed 0.5), half the examples each.
    labels = np.array([0, 0, 1, 0])
    assert expected_calibration_error(labels, np.array([0.1, 0.1, 0.9, 0.9]), bins=10) == pytest.approx(
        0.5 * 0.1 + 0.5 * 0.4
    )
    assert expected_calibration_error([0, 1] * 50, [0.5] * 100) == pytest.approx(0.0)


def test_ranking_metrics_per_group_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 15)
    labels = (rng.uniform(size=groups.size) < 0.2).astype(int)
    scores = rng.uniform(size=groups.size)
    result = ranking_metrics(labels, scores, groups, k=10)
    kept = [g for g in range(30) if 0 < labels[groups == g].sum() < 15]
    ndcg = [metrics.ndcg_score([labels[groups == g]], [scores[groups == g]], k=10) for g in kept]
    assert result["ndcg@10"] == pytest.approx(np.mean(ndcg))
    assert result["ranked_sessions"] == len(kept)
    recall, reciprocal = [], []
    for g in kept:
        ranked = labels[groups == g][np.argsort(-scores[groups == g])]
        recall.append(ranked[:10].sum() / ranked.sum())
        reciprocal.append(1 / (1 + np.argmax(ranked)))
    assert result["recall@10"] == pytest.approx(np.mean(recall))
    assert result["mrr"] == pytest.approx(np.mean(reciprocal))


def test_a_perfect_ranking_scores_one():
    result = ranking_metrics([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], [7, 7, 7, 7])
    assert result["ndcg@10"] == result["recall@10"] == result["mrr"] == 1.0


def test_sessions_end_after_thirty_idle_minutes():
    examples = [{"user_id": "a", "timestamp": t} for t in (0, 60, 60 + 1800, 10_000)] + [
        {"user_id": "b", "timestamp": 60}
    ]
    ids = session_ids(examples)
    assert ids[0] == ids[1] and len({ids[1], ids[2], ids[3], ids[4]}) == 4


def test_plots_write_pngs(tmp_path):
    labels, scores = np.array([0, 1, 0, 1]), np.array([0.2, 0.7, 0.4, 0.9])
    plot_roc(labels, {"model": scores}, tmp_path / "roc.png")
    plot_reliability(labels, {"model": scores}, tmp_path / "reliability.png")
    assert (tmp_path / "roc.png").stat().st_size > 1000 and (
        tmp_path / "reliability.png"
    ).stat().st_size > 1000


def test_the_id_bias_baseline_learns_user_and_item_rates_and_picks_c_on_valid():
    from ecomrec_tf.evaluation.baselines import BIAS_C, id_bias

    rng = np.random.default_rng(0)
    rate = {("u1", "a"): 0.9, ("u1", "b"): 0.6, ("u2", "a"): 0.4, ("u2", "b"): 0.1}

    def draw(n):
        keys = list(rate)
        return [
            {"user_id": u, "item_id": i, "label": int(rng.random() < rate[u, i])}
            for u, i in (keys[k] for k in rng.integers(0, 4, n))
        ]

    train, valid = draw(2000), draw(400)
    examples = [{"user_id": u, "item_id": i} for u, i in rate] + [{"user_id": "new", "item_id": "new"}]
    scorer, c = id_bias(train, valid)
    scores = scorer(examples)
    assert c in BIAS_C
    assert list(np.argsort(-scores[:4])) == [0, 1, 2, 3]  # the true order of the rates
    assert 0 < scores[4] < 1  # an unseen user and item get the intercept
