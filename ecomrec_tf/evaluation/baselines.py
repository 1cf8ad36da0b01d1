"""Baselines a purchase model must beat, computed on the same examples: popularity, logistic regression,
and on generated shops the generator's own probabilities (the oracle, a ceiling)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

Scorer = Callable[[Sequence[dict]], np.ndarray]  # examples -> one score each


def popularity(train: Sequence[dict]) -> Scorer:
    """Each candidate's number of purchases in `train` (ties broken by views): the same for every user."""
    bought = Counter(e["item_id"] for e in train if e["label"])
    seen = Counter(e["item_id"] for e in train)
    return lambda examples: np.array(
        [bought[e["item_id"]] + 1e-6 * seen[e["item_id"]] for e in examples], dtype=float
    )


def _features(
    examples: Sequence[dict], items: dict[str, dict], train: Sequence[dict], cross: bool
) -> np.ndarray:
    bought = Counter(e["item_id"] for e in train if e["label"])
    seen = Counter(e["item_id"] for e in train)
    rate = sum(bought.values()) / max(len(train), 1)
    rows = []
    for e in examples:
        item = items[e["item_id"]]
        price = item.get("price")
        row = [
            math.log1p(price) if price is not None else 0.0,
            float(price is None),
            math.log1p(bought[e["item_id"]]),
            (bought[e["item_id"]] + 10 * rate) / (seen[e["item_id"]] + 10),  # smoothed purchase rate
            math.log1p(len(e["history"])),
            float(bool(e["query"])),
        ]
        if cross:
            categories = [items[i]["category"] for i in e["history"]]
            words = (e["query"] or "").lower().split()
            title = item["title"].lower()
            row += [
                sum(c == item["category"] for c in categories) / len(categories) if categories else 0.0,
                sum(word in title for word in words) / len(words) if words else 0.0,
            ]
        rows.append(row)
    return np.asarray(rows, dtype=float)


def logistic_regression(train: Sequence[dict], items: dict[str, dict], cross: bool = False) -> Scorer:
    """P(purchase) of a logistic regression fitted on `train`.

    Simple features (`cross=False`): log price, missing price, item purchases and smoothed purchase
    rate in `train`, history length, query present: what an item-level model knows. `cross=True`
    adds two hand-made user-item features (share of the history in the candidate's category, share
    of query words in the title): a stronger reference for what feature engineering reaches.
    """
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_features(train, items, train, cross), [e["label"] for e in train])
    return lambda examples: model.predict_proba(_features(examples, items, train, cross))[:, 1]


def counts_logistic_regression(train: Sequence[dict], items: dict[str, dict]) -> Scorer:
    """P(purchase) of a logistic regression on the purchase model's own count features
    (`heads.count_features.transform` of `event_state.FEATURES`, standardised), fitted on `train`:
    what a plain logistic regression reaches with the same counts, recency and category affinities."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(_count_features(train, items), [e["label"] for e in train])
    return lambda examples: model.predict_proba(_count_features(examples, items))[:, 1]


def _count_features(examples: Sequence[dict], items: dict[str, dict]) -> np.ndarray:
    from ecomrec_tf.data.event_state import FEATURES
    from ecomrec_tf.heads.count_features import transform

    raw = {name: np.array([e["features"][name] for e in examples], np.float32) for name in FEATURES}
    prices = [items[e["item_id"]].get("price") for e in examples]
    raw["price"] = np.array([np.nan if p is None else p for p in prices], np.float32)
    return np.concatenate([np.asarray(v) for v in transform(raw).values()], axis=-1)


BIAS_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def id_bias(train: Sequence[dict], valid: Sequence[dict] | None = None) -> tuple[Scorer, float]:
    """P(purchase) of a logistic regression on one-hot user and item ids (a user bias plus an item
    bias), fitted on `train`; its inverse L2 strength C from `BIAS_C` chosen by AUC on `valid`
    (1 without it). Ids absent from `train` get no bias. Returns `(scorer, C)`."""
    from scipy import sparse
    from sklearn.metrics import roc_auc_score

    users = {u: i for i, u in enumerate(sorted({e["user_id"] for e in train}))}
    items = {t: len(users) + i for i, t in enumerate(sorted({e["item_id"] for e in train}))}

    def one_hot(rows: Sequence[dict]):
        cols = [[users.get(e["user_id"]), items.get(e["item_id"])] for e in rows]
        data = [(r, c) for r, pair in enumerate(cols) for c in pair if c is not None]
        r, c = zip(*data) if data else ((), ())
        return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), len(users) + len(items)))

    x, y = one_hot(train), [e["label"] for e in train]

    def fit(c: float):
        return LogisticRegression(C=c, max_iter=2000).fit(x, y)

    best = 1.0
    if valid and len({e["label"] for e in valid}) == 2:
        valid_x, valid_y = one_hot(valid), [e["label"] for e in valid]
        best = max(BIAS_C, key=lambda c: roc_auc_score(valid_y, fit(c).predict_proba(valid_x)[:, 1]))
    model = fit(best)
    return lambda examples: model.predict_proba(one_hot(examples))[:, 1], best


def oracle(items: dict[str, dict], shop_dir: str | Path, examples: Sequence[dict]) -> Scorer | None:
    """The generator's true P(purchase), or None when `shop_dir` is not a generated shop or
    `examples` (a sample of what it will score) are not its users and items.

    Needs `shop_dir/shop.json` (written by `data.generate_shop`) for the seed; users are `U<index>`.
    """
    summary = Path(shop_dir) / "shop.json"
    if not summary.is_file():
        return None
    from ecomrec_tf.data.shop import ShopTruth

    config = json.loads(summary.read_text())["config"]
    truth = ShopTruth(list(items.values()), config["seed"], config.get("image_dim", 0))

    def scores(examples: Sequence[dict]) -> np.ndarray:
        return np.array(
            [truth.probability(int(e["user_id"].lstrip("U")), e["item_id"], e["query"]) for e in examples]
        )

    try:
        scores(examples)
    except (KeyError, ValueError):
        return None  # not the generator's users or items
    return scores
