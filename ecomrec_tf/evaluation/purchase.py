"""Purchase-probability metrics: discrimination (AUC), log loss, calibration, and per-session ranking."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics

from ecomrec_tf.evaluation.classification import finish_figure

SESSION_GAP = 30 * 60  # seconds of inactivity that end a session, the usual web-analytics definition


def session_ids(examples: Sequence[dict], gap: int = SESSION_GAP) -> np.ndarray:
    """One id per example: the same user with less than `gap` seconds since their previous example."""
    ids = np.empty(len(examples), dtype=np.int64)
    order = sorted(range(len(examples)), key=lambda i: (examples[i]["user_id"], examples[i]["timestamp"]))
    session, last_user, last_time = -1, None, None
    for i in order:
        user, time = examples[i]["user_id"], examples[i]["timestamp"]
        if user != last_user or time - last_time >= gap:
            session += 1
        ids[i], last_user, last_time = session, user, time
    return ids


def expected_calibration_error(labels, probabilities, bins: int = 15) -> float:
    """Mean |observed rate - mean prediction| over equal-width probability bins, weighted by bin size."""
    labels, probabilities = np.asarray(labels, float), np.asarray(probabilities, float)
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(labels[inside].mean() - probabilities[inside].mean())
    return float(error)


def ranking_metrics(labels, scores, groups, k: int = 10) -> dict[str, float]:
    """Mean NDCG@k, Recall@k and MRR over groups (sessions) with at least one positive and one negative.

    Ties are broken by input order (as a sorted results page would be).
    """
    labels, scores, groups = np.asarray(labels), np.asarray(scores), np.asarray(groups)
    ndcg, recall, reciprocal = [], [], []
    order = np.lexsort((np.arange(len(scores)), -scores, groups))
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(order)]):
        ranked = labels[order[begin:end]] > 0  # best first
        positives = int(ranked.sum())
        if positives == 0 or positives == len(ranked):
            continue
        discounts = 1.0 / np.log2(np.arange(2, len(ranked) + 2))
        ideal = discounts[: min(positives, k)].sum()
        ndcg.append(float((ranked[:k] * discounts[:k]).sum() / ideal))
        recall.append(float(ranked[:k].sum() / positives))
        reciprocal.append(1.0 / (1 + int(np.argmax(ranked))))
    return {
        f"ndcg@{k}": float(np.mean(ndcg)) if ndcg else float("nan"),
        f"recall@{k}": float(np.mean(recall)) if recall else float("nan"),
        "mrr": float(np.mean(reciprocal)) if reciprocal else float("nan"),
        "ranked_sessions": len(ndcg),
    }


def purchase_metrics(labels, probabilities, groups=None, k: int = 10) -> dict[str, float]:
    """AUC, log loss, ECE, base rate and mean prediction; with `groups` also `ranking_metrics`."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 1e-7, 1 - 1e-7)
    result = {
        "auc": float(metrics.roc_auc_score(labels, probabilities)),
        "log_loss": float(metrics.log_loss(labels, probabilities, labels=[0, 1])),
        "ece": expected_calibration_error(labels, probabilities),
        "positive_rate": float(labels.mean()),
        "mean_prediction": float(probabilities.mean()),
        "examples": len(labels),
    }
    if groups is not None:
        result.update(ranking_metrics(labels, probabilities, groups, k))
    return result


def plot_reliability(
    labels, curves: dict[str, np.ndarray], path: str | Path | None = None, bins: int = 15
) -> Figure:
    """Reliability diagram (observed purchase rate per predicted-probability bin) of each named curve."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for name, probabilities in curves.items():
        observed, predicted = _reliability(np.asarray(labels, float), np.asarray(probabilities, float), bins)
        ece = expected_calibration_error(labels, probabilities, bins)
        ax.plot(predicted, observed, "-o", markersize=3, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("predicted P(purchase)")
    ax.set_ylabel("observed purchase rate")
    ax.set_title("Calibration")
    ax.legend(fontsize=8)
    return finish_figure(fig, path)


def _reliability(labels, probabilities, bins):
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    kept = [b for b in range(bins) if (which == b).any()]
    return (
        np.array([labels[which == b].mean() for b in kept]),
        np.array([probabilities[which == b].mean() for b in kept]),
    )


def plot_roc(labels, curves: dict[str, np.ndarray], path: str | Path | None = None) -> Figure:
    """ROC curves of named scores (model, baselines, oracle) on one plot, AUC in the legend."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, scores in curves.items():
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, purchase")
    ax.legend(fontsize=8)
    return finish_figure(fig, path)
