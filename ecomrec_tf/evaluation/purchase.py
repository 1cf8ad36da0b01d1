"""Purchase-probability metrics: discrimination (AUC), log loss, calibration, and per-session ranking."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn import metrics

from ecomrec_tf.data.event_state import SESSION_GAP
from ecomrec_tf.evaluation import baselines
from ecomrec_tf.evaluation.classification import finish_figure


def session_ids(examples: Sequence[dict], gap: int = SESSION_GAP) -> np.ndarray:
    """One id per example: the same user with less than `gap` seconds since their previous example."""
    users = {}
    return sessions_of(
        np.array([users.setdefault(e["user_id"], len(users)) for e in examples], np.int64),
        np.array([e["timestamp"] for e in examples], np.int64),
        gap,
    )


def sessions_of(users: np.ndarray, times: np.ndarray, gap: int = SESSION_GAP) -> np.ndarray:
    """`session_ids` from arrays: a user number and a timestamp per example."""
    order = np.lexsort((times, users))
    users, times = users[order], times[order]
    new = np.r_[True, (users[1:] != users[:-1]) | (times[1:] - times[:-1] >= gap)]
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
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


def ranking_by_group(labels, scores, groups, k: int = 10) -> dict[str, np.ndarray]:
    """Per group (session) with at least one positive and one negative: its id (`group`), NDCG@k,
    Recall@k and reciprocal rank. Ties are broken by input order (as a sorted results page would be)."""
    labels, scores, groups = np.asarray(labels), np.asarray(scores), np.asarray(groups)
    found = {"group": [], "ndcg": [], "recall": [], "reciprocal_rank": []}
    order = np.lexsort((np.arange(len(scores)), -scores, groups))
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(order)]):
        ranked = labels[order[begin:end]] > 0  # best first
        positives = int(ranked.sum())
        if positives == 0 or positives == len(ranked):
            continue
        discounts = 1.0 / np.log2(np.arange(2, len(ranked) + 2))
        ideal = discounts[: min(positives, k)].sum()
        found["group"].append(groups[order[begin]])
        found["ndcg"].append(float((ranked[:k] * discounts[:k]).sum() / ideal))
        found["recall"].append(float(ranked[:k].sum() / positives))
        found["reciprocal_rank"].append(1.0 / (1 + int(np.argmax(ranked))))
    return {name: np.asarray(values) for name, values in found.items()}


def ranking_metrics(labels, scores, groups, k: int = 10) -> dict[str, float]:
    """Mean NDCG@k, Recall@k and MRR over groups (sessions) with at least one positive and one negative
    (`ranking_by_group`)."""
    by_group = ranking_by_group(labels, scores, groups, k)
    ranked = len(by_group["group"])
    mean = lambda name: float(by_group[name].mean()) if ranked else float("nan")  # noqa: E731
    return {
        f"ndcg@{k}": mean("ndcg"),
        f"recall@{k}": mean("recall"),
        "mrr": mean("reciprocal_rank"),
        "ranked_sessions": ranked,
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


BASELINE_EXAMPLES = 200_000  # training examples the baselines are fitted on: a random sample beyond
VALID_EXAMPLES = 50_000  # validation examples that choose the user + item bias model's C
CHUNK = 65_536  # examples scored at a time


def evaluate_purchase(model, data, out_dir: str | Path, split: str = "test", cache=None,
                      progress: bool = True) -> dict:  # fmt: skip
    """The model beside its baselines on one split's real views: metrics JSON, ROC and reliability PNGs.

    Baselines fitted on the train split (a random sample of `BASELINE_EXAMPLES` when larger; C chosen
    on at most `VALID_EXAMPLES` of valid): item
    popularity, logistic regression on simple features and with hand-made cross features, logistic
    regression on the model's own count features, a user + item bias model (C chosen on valid), and
    on a generated shop the generator's true probabilities (the oracle; `gap_closed` is the share
    of the AUC gap between logistic regression on simple features and the oracle that the model
    closes). AUC, log loss and ECE score every view with what was known just before it; NDCG@10,
    Recall@10 and MRR rank each session's views with the user's state at the session's first view
    (`data.sessions`), as a page of candidates is ranked. `cold_start` reports the same on the
    examples whose item (`new_items`) or user (`new_users`) the train split never shows. Catalog
    negatives, when the split has them, are reported apart (`with_catalog_negatives`), never mixed
    into the main numbers. Examples are scored `CHUNK` at a time: memory holds a few numbers per
    scored example, never the examples.

    Args:
        model: a trained `PurchaseModel`.
        data: `data.purchase_data.PurchaseData`.
        cache: a `VectorCache` for the model and `data` (built when None).

    Writes `<split>_purchase_metrics.json`, `<split>_roc.png`, `<split>_reliability.png` to `out_dir`.
    """
    from ecomrec_tf.data.purchase_data import VectorCache, column_chunks
    from ecomrec_tf.data.readers import DataError

    examples = data.scored(split)
    if not len(examples):
        raise DataError(f"the {split} split has no examples")
    cache = cache or VectorCache(model, data.items, data.queries(), progress=progress)
    train = data.scored("train")
    valid = data.scored("valid") if split != "valid" and data.splits.get("valid") else None
    scorers = _baselines(data, _sample(train), _sample(valid, VALID_EXAMPLES) if valid else None)
    scorers = {"model": lambda part: predict_probabilities(model, cache, part), **scorers}
    seen_items, seen_users = set(), set()
    for columns in column_chunks(train, data.items):
        seen_items.update(columns["item_id"], columns["history_ids"][columns["history_ids"] != ""])
        seen_users.update(columns["user_id"])
    users: dict[str, int] = {}
    scored = _scored(scorers, examples, users, seen_items, seen_users)
    frozen = data.sessions.get(split)
    result = _metrics_by_name(scored, _scored(scorers, frozen, users) if frozen else None)
    if "oracle" in scored.scores:
        base = result["logistic_regression"]["auc"]
        result["gap_closed"] = (result["model"]["auc"] - base) / max(result["oracle"]["auc"] - base, 1e-9)
    result["cold_start"] = {}
    for name, keep in (("new_items", scored.new_item), ("new_users", scored.new_user)):
        part = scored.subset(keep)
        result["cold_start"][name] = (
            _metrics_by_name(part) if len(set(part.labels)) == 2 else {"examples": len(part.labels)}
        )
    everything = data.splits[split]
    if len(everything) > len(examples):  # catalog negatives
        result["with_catalog_negatives"] = _metrics_by_name(_scored(scorers, everything, users, set(), set()))
    result["split"] = split
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{split}_purchase_metrics.json").write_text(json.dumps(result, indent=2))
    plot_roc(scored.labels, scored.scores, out_dir / f"{split}_roc.png")
    probabilities = {k: v for k, v in scored.scores.items() if k != "popularity"}
    plot_reliability(scored.labels, probabilities, out_dir / f"{split}_reliability.png")
    return result


def _sample(examples, size: int = BASELINE_EXAMPLES, seed: int = 0) -> list[dict]:
    """All examples, or a uniform random sample of `size` (reservoir sampling: one pass)."""
    rng = random.Random(seed)
    sample = []
    for i, example in enumerate(examples):
        if i < size:
            sample.append(example)
        elif (j := rng.randrange(i + 1)) < size:
            sample[j] = example
    return sample


def _baselines(data, train: list[dict], valid: list[dict] | None) -> dict:
    """Every baseline's scorer, fitted on `train`."""
    scorers = {
        "popularity": baselines.popularity(train),
        "logistic_regression": baselines.logistic_regression(train, data.items),
        "logistic_regression_cross": baselines.logistic_regression(train, data.items, cross=True),
        "logistic_regression_counts": baselines.counts_logistic_regression(train, data.items),
        "user_item_bias": baselines.id_bias(train, valid)[0],
    }
    oracle = baselines.oracle(data.items, data.shop_dir, train[:100])
    if oracle is not None:
        scorers["oracle"] = oracle
    return scorers


@dataclasses.dataclass
class _Scored:
    """Examples reduced to what metrics need: label, user number, time, cold-start flags, scores."""

    labels: np.ndarray
    users: np.ndarray
    times: np.ndarray
    new_item: np.ndarray
    new_user: np.ndarray
    scores: dict[str, np.ndarray]

    def subset(self, keep: np.ndarray) -> _Scored:
        return _Scored(*(a[keep] for a in dataclasses.astuple(self)[:5]),
                       {k: v[keep] for k, v in self.scores.items()})  # fmt: skip


def _scored(scorers: dict, examples, users: dict, seen_items=frozenset(), seen_users=frozenset()) -> _Scored:
    """Every scorer's scores of examples (a list or stored examples), `CHUNK` examples at a time."""
    columns = {name: [] for name in ("labels", "users", "times", "new_item", "new_user")}
    scores = {name: [] for name in scorers}
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        columns["labels"].append(np.array([e["label"] for e in chunk], np.int8))
        columns["users"].append(np.array([users.setdefault(e["user_id"], len(users)) for e in chunk]))
        columns["times"].append(np.array([e["timestamp"] for e in chunk], np.int64))
        columns["new_item"].append(np.array([e["item_id"] not in seen_items for e in chunk]))
        columns["new_user"].append(np.array([e["user_id"] not in seen_users for e in chunk]))
        for name, scorer in scorers.items():
            scores[name].append(np.asarray(scorer(chunk), np.float64).reshape(-1))
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    return _Scored(**joined, scores={name: np.concatenate(parts) for name, parts in scores.items()})


def _metrics_by_name(scored: _Scored, frozen: _Scored | None = None) -> dict[str, dict]:
    """`purchase_metrics` of each named score; ranking metrics per session from `frozen` (the
    same views with the user's state frozen per session) when given."""
    result = {}
    for name, score in scored.scores.items():
        ranking = frozen or scored
        frozen_score = ranking.scores[name]
        if name == "popularity":  # a ranking, not a probability: AUC and ranking metrics only
            score = score / max(score.max(), 1e-9)
            frozen_score = frozen_score / max(frozen_score.max(), 1e-9)
        result[name] = purchase_metrics(scored.labels, score)
        sessions = sessions_of(ranking.users, ranking.times)
        result[name] |= ranking_metrics(ranking.labels, frozen_score, sessions)
    return result
