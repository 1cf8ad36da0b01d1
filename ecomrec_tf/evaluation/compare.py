"""Offline A/B comparison of exported purchase models on logged events, with bootstrap confidence intervals.

Every version scores the same logged views (`events.purchase_examples`: each view, labelled by whether the
user bought the item within a day); AUC and session NDCG@k are computed per version, and their differences
from the first version get a paired bootstrap over users (a user's views move together, as in an online
A/B test split by user): the interval and how often the other version came out ahead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics

from ecomrec_tf.data.events import purchase_examples
from ecomrec_tf.data.task_datasets import purchase_columns
from ecomrec_tf.evaluation.purchase import ranking_by_group, session_ids


def compare_scores(
    labels, groups, users, scores: dict[str, np.ndarray], k: int = 10, resamples: int = 1000,
    level: float = 0.95, seed: int = 0,
) -> dict:  # fmt: skip
    """AUC and NDCG@k of each version's `scores` of the same examples, and each version's difference
    from the first with a paired bootstrap over `users` (one id per example; `groups`: session ids,
    nested in users).

    Returns `{"versions": {name: {"auc", "ndcg@k"}}, "differences": {name: {metric: {"difference",
    "low", "high", "p_ahead"}}}, "users", "examples", "resamples", "level"}`: `low`/`high` bound the
    `level` interval of `name - first`; `p_ahead` is the share of resamples where `name` was better.
    """
    labels, groups = np.asarray(labels, float), np.asarray(groups)
    names = list(scores)
    if len(names) < 2:
        raise ValueError(f"compare at least two versions, got {names}")
    if len(np.unique(labels)) < 2:
        raise ValueError("the events hold no purchased view (or only purchased ones): AUC is undefined")
    user_ids, user_of = np.unique(np.asarray(users), return_inverse=True)
    ndcg = f"ndcg@{k}"
    group_user = {group: user for group, user in zip(groups, user_of)}
    per_user = {}  # version -> (NDCG sum per user, ranked sessions per user)
    versions = {}
    for name in names:
        by_group = ranking_by_group(labels, scores[name], groups, k)
        owners = np.array([group_user[g] for g in by_group["group"]], dtype=np.int64)
        sums = np.bincount(owners, by_group["ndcg"], minlength=len(user_ids))
        counts = np.bincount(owners, minlength=len(user_ids)).astype(float)
        per_user[name] = sums, counts
        versions[name] = {
            "auc": float(metrics.roc_auc_score(labels, scores[name])),
            ndcg: float(sums.sum() / counts.sum()) if counts.sum() else float("nan"),
        }
    rng = np.random.default_rng(seed)
    drawn = {name: {"auc": [], ndcg: []} for name in names}
    for _ in range(resamples):
        times = np.bincount(rng.integers(0, len(user_ids), len(user_ids)), minlength=len(user_ids))
        weights = times[user_of]
        if len(np.unique(labels[weights > 0])) < 2:
            continue
        for name in names:
            sums, counts = per_user[name]
            drawn[name]["auc"].append(metrics.roc_auc_score(labels, scores[name], sample_weight=weights))
            drawn[name][ndcg].append((times @ sums) / max(times @ counts, 1e-12))
    tail = (1 - level) / 2 * 100
    differences = {}
    for name in names[1:]:
        differences[name] = {}
        for metric in ("auc", ndcg):
            delta = np.asarray(drawn[name][metric]) - np.asarray(drawn[names[0]][metric])
            differences[name][metric] = {
                "difference": versions[name][metric] - versions[names[0]][metric],
                "low": float(np.percentile(delta, tail)),
                "high": float(np.percentile(delta, 100 - tail)),
                "p_ahead": float((delta > 0).mean()),
            }
    return {
        "versions": versions,
        "differences": differences,
        "users": len(user_ids),
        "examples": len(labels),
        "resamples": len(drawn[names[0]]["auc"]),
        "level": level,
    }


def score_export(path: str | Path, columns: dict[str, np.ndarray], batch_size: int = 512) -> np.ndarray:
    """P(purchase) of every row of `columns` (`purchase_columns`) from a SavedModel's
    `purchase_probability` signature, in batches."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the exports' tokenizer ops)

    signature = tf.saved_model.load(str(path)).signatures["purchase_probability"]
    wanted = signature.structured_input_signature[1]
    size = len(next(iter(columns.values())))
    parts = []
    for start in range(0, size, batch_size):
        inputs = {
            name: tf.constant(columns[name][start : start + batch_size], spec.dtype)
            for name, spec in wanted.items()
        }
        parts.append(signature(**inputs)["purchase_probability"].numpy())
    return np.concatenate(parts) if parts else np.zeros(0)


def compare_exports(
    models: dict[str, str | Path], items: dict[str, dict], events: list[dict], earlier=(),
    history_size: int = 10, **options,
) -> dict:  # fmt: skip
    """`compare_scores` of exported purchase models (`{name: SavedModel version folder}`, the first the
    reference) on the views of `events`, with histories and counts from `earlier` events and the
    earlier of `events` (as `evaluate purchase --history-events`)."""
    examples = purchase_examples(events, items, history_size, earlier=earlier)
    columns = purchase_columns(examples, items, history_size)
    scores = {name: score_export(path, columns) for name, path in models.items()}
    users = [example["user_id"] for example in examples]
    return compare_scores(columns["label"], session_ids(examples), users, scores, **options)
