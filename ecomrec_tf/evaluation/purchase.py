"""Purchase-probability metrics: discrimination (AUC), log loss, calibration, and per-session ranking."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics

from ecomrec_tf.data.event_state import SESSION_GAP
from ecomrec_tf.evaluation.baselines import (
    counts_logistic_regression_scores,
    id_bias_scores,
    logistic_regression_scores,
    oracle_scores,
    popularity_scores,
)
from ecomrec_tf.evaluation.classification import finish_figure


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


def predict_probabilities(model, cache, examples: list[dict]) -> np.ndarray:
    """The purchase model's P(purchase) for examples, from a `data.purchase_data.VectorCache`."""
    return np.asarray(model.core.predict(cache.dataset(examples, 1024), verbose=0)["purchase_probability"])


def evaluate_purchase(model, data, out_dir: str | Path, split: str = "test", cache=None,
                      progress: bool = True) -> dict:  # fmt: skip
    """The model beside its baselines on one split's real views: metrics JSON, ROC and reliability PNGs.

    Baselines fitted on the train split: item popularity, logistic regression on simple features
    and with hand-made cross features, logistic regression on the model's own count features, a
    user + item bias model (C chosen on valid), and on a generated shop the generator's true
    probabilities (the oracle; `gap_closed` is the share of the AUC gap between logistic regression
    on simple features and the oracle that the model closes). AUC, log loss and ECE score every view
    with what was known just before it; NDCG@10, Recall@10 and MRR rank each session's views with
    the user's state at the session's first view (`data.sessions`), as a page of candidates is
    ranked. `cold_start` reports the same on the examples whose item (`new_items`) or user
    (`new_users`) the train split never shows. Catalog negatives, when the split has them, are
    reported apart (`with_catalog_negatives`), never mixed into the main numbers.

    Args:
        model: a trained `PurchaseModel`.
        data: `data.purchase_data.PurchaseData`.
        cache: a `VectorCache` for the model and `data` (built when None).

    Writes `<split>_purchase_metrics.json`, `<split>_roc.png`, `<split>_reliability.png` to `out_dir`.
    """
    from ecomrec_tf.data.purchase_data import VectorCache
    from ecomrec_tf.data.readers import DataError

    examples = data.scored(split)
    if not examples:
        raise DataError(f"the {split} split has no examples")
    cache = cache or VectorCache(model, data.items, data.queries(), progress=progress)
    train = data.scored("train")
    valid = data.scored("valid") if split != "valid" and data.splits.get("valid") else None
    frozen = data.sessions.get(split)
    negatives = [e for e in data.splits[split] if e["catalog_negative"]]
    parts = [examples, frozen or [], negatives]
    everything = _all_scores(model, cache, data, train, valid, [e for part in parts for e in part])
    bounds = np.cumsum([0] + [len(part) for part in parts])
    scores, frozen_scores, negative_scores = (
        {name: values[bounds[i] : bounds[i + 1]] for name, values in everything.items()} for i in range(3)
    )
    ranking = (frozen, frozen_scores) if frozen else None
    result = _metrics_by_name(examples, scores, ranking)
    if "oracle" in scores:
        base = result["logistic_regression"]["auc"]
        result["gap_closed"] = (result["model"]["auc"] - base) / max(result["oracle"]["auc"] - base, 1e-9)
    seen_items = {e["item_id"] for e in train} | {i for e in train for i in e["history"]}
    seen_users = {e["user_id"] for e in train}
    result["cold_start"] = {}
    for name, keep in (("new_items", lambda e: e["item_id"] not in seen_items),
                       ("new_users", lambda e: e["user_id"] not in seen_users)):  # fmt: skip
        rows = [i for i, e in enumerate(examples) if keep(e)]
        labels = {examples[i]["label"] for i in rows}
        result["cold_start"][name] = (
            _metrics_by_name([examples[i] for i in rows], {k: v[rows] for k, v in scores.items()})
            if len(labels) == 2
            else {"examples": len(rows)}
        )
    if negatives:
        result["with_catalog_negatives"] = _metrics_by_name(
            examples + negatives, {k: np.concatenate([scores[k], negative_scores[k]]) for k in scores}
        )
    result["split"] = split
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{split}_purchase_metrics.json").write_text(json.dumps(result, indent=2))
    labels = np.array([e["label"] for e in examples])
    plot_roc(labels, scores, out_dir / f"{split}_roc.png")
    probabilities = {k: v for k, v in scores.items() if k != "popularity"}
    plot_reliability(labels, probabilities, out_dir / f"{split}_reliability.png")
    return result


def _all_scores(model, cache, data, train, valid, examples) -> dict[str, np.ndarray]:
    """The model's and every baseline's scores for `examples`, the baselines fitted on `train`."""
    scores = {
        "model": predict_probabilities(model, cache, examples),
        "popularity": popularity_scores(train, examples),
        "logistic_regression": logistic_regression_scores(train, examples, data.items),
        "logistic_regression_cross": logistic_regression_scores(train, examples, data.items, cross=True),
        "logistic_regression_counts": counts_logistic_regression_scores(train, examples, data.items),
        "user_item_bias": id_bias_scores(train, examples, valid)[0],
    }
    oracle = oracle_scores(examples, data.items, data.shop_dir)
    if oracle is not None:
        scores["oracle"] = oracle
    return scores


def _metrics_by_name(examples: list[dict], scores: dict[str, np.ndarray], ranking=None) -> dict[str, dict]:
    """`purchase_metrics` of each named score; ranking metrics per session from `ranking`
    (`(examples, scores)` with the user's state frozen per session) when given."""
    labels = np.array([e["label"] for e in examples])
    result = {}
    for name, score in scores.items():
        if name == "popularity":  # a ranking, not a probability: AUC and ranking metrics only
            score = score / max(score.max(), 1e-9)
        if ranking is None:
            result[name] = purchase_metrics(labels, score, session_ids(examples))
        else:
            frozen, frozen_scores = ranking
            result[name] = purchase_metrics(labels, score)
            frozen_labels = [e["label"] for e in frozen]
            result[name] |= ranking_metrics(frozen_labels, frozen_scores[name], session_ids(frozen))
    return result
