"""Baselines a purchase model must beat, computed on the same examples: popularity, logistic regression,
and on generated shops the generator's own probabilities (the oracle, a ceiling)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def popularity_scores(train: Sequence[dict], examples: Sequence[dict]) -> np.ndarray:
    """Each candidate's number of purchases in `train` (ties broken by views): the same for every user."""
    bought = Counter(e["item_id"] for e in train if e["label"])
    seen = Counter(e["item_id"] for e in train)
    return np.array([bought[e["item_id"]] + 1e-6 * seen[e["item_id"]] for e in examples], dtype=float)


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


def logistic_regression_scores(
    train: Sequence[dict], examples: Sequence[dict], items: dict[str, dict], cross: bool = False
) -> np.ndarray:
    """P(purchase) of a logistic regression fitted on `train`, for `examples`.

    Simple features (`cross=False`): log price, missing price, item purchases and smoothed purchase
    rate in `train`, history length, query present: what an item-level model knows. `cross=True`
    adds two hand-made user-item features (share of the history in the candidate's category, share
    of query words in the title): a stronger reference for what feature engineering reaches.
    """
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(_features(train, items, train, cross), [e["label"] for e in train])
    return model.predict_proba(_features(examples, items, train, cross))[:, 1]


def oracle_scores(
    examples: Sequence[dict], items: dict[str, dict], shop_dir: str | Path
) -> np.ndarray | None:
    """The generator's true P(purchase) for each example, or None when `shop_dir` is not a generated shop.

    Needs `shop_dir/shop.json` (written by `data.generate_shop`) for the seed; users are `U<index>`.
    """
    summary = Path(shop_dir) / "shop.json"
    if not summary.is_file():
        return None
    from ecomrec_tf.data.shop import ShopTruth

    seed = json.loads(summary.read_text())["config"]["seed"]
    truth = ShopTruth(list(items.values()), seed)
    try:
        return np.array(
            [truth.probability(int(e["user_id"].lstrip("U")), e["item_id"], e["query"]) for e in examples]
        )
    except (KeyError, ValueError):
        return None  # not the generator's users or items
