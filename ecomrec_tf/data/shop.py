"""The embedded default shop: catalog, users, sessions of events, service conversations, intents.

Everything is deterministic by seed and streamed to files: users are generated one at a time (each
from its own seed), so memory stays flat from thousands to tens of millions of events.

Purchases follow a ground-truth model that the generator reports (`ShopTruth`):

    P(purchase | user, item, query) = sigmoid(BIAS + AFFINITY * log(n_categories * affinity[user, category])
                                              - PRICE * sensitivity[user] * log(price / category median)
                                              + MATCH * share of query words in the item title
                                              + APPEAL[item's style]
                                              + STYLE * [item's style is the user's preferred style])

where the style terms exist only in a shop with images (`ShopConfig(image_dim=...)`): each item then
has a hidden style (one of `STYLES`) that no text says, and an `image_vector` (its style's centre plus
noise, missing for `image_missing` of the items), so only a model that reads images can learn them.
Some styles look better to everyone (`APPEAL`), each user prefers one, and users also click more of
what they prefer (so their histories show it). The AUC of the true probabilities on held-out events, the
oracle AUC, is the ceiling a purchase model is measured against.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ecomrec_tf.data import lexicon
from ecomrec_tf.data.intent_data import split_templates, write_intent_data
from ecomrec_tf.data.noise import add_noise
from ecomrec_tf.data.reply_bank import REPLY_BANK, fill_reply
from ecomrec_tf.progress import progress_bar

START_TIME = 1_735_689_600  # 2025-01-01T00:00:00Z; event timestamps are Unix seconds
BIAS, AFFINITY, PRICE, MATCH, STYLE = -4.0, 0.9, 1.2, 2.5, 2.0
STYLES = 4  # hidden item styles, seen only in the image vectors
APPEAL = (0.8, 0.3, -0.3, -0.8)  # each style's effect on everyone's purchase logit
CLICK, PREFERRED_CLICK = 0.25, 0.6  # click probability of a view not bought: any item, a preferred style
MODEL_WORDS = ["Pro", "Lite", "Air", "Max", "Plus", "Sport", "Classic", "Ultra", "Flex", "Eco"]
FEATURES = ["lightweight", "durable", "water-resistant", "recycled materials", "two-year warranty",
            "fast charging", "machine washable", "ergonomic design", "easy to clean", "compact"]  # fmt: skip
ORACLE_BINS = 10_000


@dataclasses.dataclass
class ShopConfig:
    """Size and seed of a generated shop."""

    users: int = 2_000
    seed: int = 0
    items_per_category: int = 40
    sessions_per_user: float = 4.0  # Poisson mean
    candidates_per_session: int = 8
    conversations_per_user: float = 0.5
    image_dim: int = 0  # > 0: items get an image vector carrying a hidden style users prefer
    image_missing: float = 0.1  # share of items without an image (with image_dim)


def generate_catalog(seed: int = 0, items_per_category: int = 40) -> list[dict]:
    """Items `{item_id, title, description, category, brand, color, price}`, 24 categories."""
    rng = random.Random(f"catalog-{seed}")
    items = []
    for c, category in enumerate(sorted(lexicon.CATEGORIES)):
        base_price = math.exp(rng.uniform(math.log(15), math.log(900)))
        for j in range(items_per_category):
            noun = rng.choice(lexicon.CATEGORIES[category])
            brand = rng.choice(lexicon.BRANDS[category])
            color = rng.choice(lexicon.COLORS)
            model = f"{rng.choice(MODEL_WORDS)} {rng.randint(2, 99)}"
            features = rng.sample(FEATURES, 2)
            items.append({
                "item_id": f"SKU-{c:02d}{j:04d}",
                "title": f"{brand} {model} {noun}, {color}",
                "description": f"{color.capitalize()} {noun} from {brand}: {features[0]}, {features[1]}.",
                "category": category,
                "brand": brand,
                "color": color,
                "price": round(base_price * math.exp(rng.gauss(0, 0.45)), 2),
            })  # fmt: skip
    return items


def item_style(seed: int, item_id: str) -> int:
    """The hidden style of an item (in a shop with images)."""
    return random.Random(f"style-{seed}-{item_id}").randrange(STYLES)


def image_vector(seed: int, item_id: str, image_dim: int, missing: float = 0.0) -> list[float] | None:
    """An item's image vector: its style's centre plus noise, as an image model's embedding would
    cluster items that look alike; None (no image) for a share `missing` of items."""
    rng = np.random.default_rng([seed, 7, int.from_bytes(item_id.encode()[-6:], "big")])
    if rng.random() < missing:
        return None
    centres = np.random.default_rng([seed, 77]).normal(size=(STYLES, image_dim))
    vector = centres[item_style(seed, item_id)] + rng.normal(scale=0.7, size=image_dim)
    return [round(float(v), 4) for v in vector]


class ShopTruth:
    """The generator's ground truth: each user's latent preferences and the purchase probability."""

    def __init__(self, catalog: list[dict], seed: int = 0, image_dim: int = 0):
        self.seed = seed
        self.image_dim = image_dim
        self.categories = sorted({item["category"] for item in catalog})
        self.items = {item["item_id"]: item for item in catalog}
        by_category: dict[str, list[float]] = {}
        for item in catalog:
            by_category.setdefault(item["category"], []).append(item["price"])
        self.median_price = {c: float(np.median(p)) for c, p in by_category.items()}

    def user(self, index: int) -> tuple[np.ndarray, float]:
        """`(category affinity, price sensitivity)` of user `index`, from its own seed."""
        rng = np.random.default_rng([self.seed, index])
        return rng.dirichlet(np.full(len(self.categories), 0.3)) + 1e-4, float(rng.lognormal(0.0, 0.5))

    def preferred_style(self, index: int) -> int | None:
        """The style user `index` prefers (None in a shop without images)."""
        return int(np.random.default_rng([self.seed, index, 2]).integers(STYLES)) if self.image_dim else None

    def probability(self, user_index: int, item_id: str, query: str | None = None) -> float:
        affinity, sensitivity = self.user(user_index)
        style = self.preferred_style(user_index)
        return self._probability(affinity, sensitivity, self.items[item_id], query, style)

    def _probability(self, affinity, sensitivity, item, query, style=None) -> float:
        category = self.categories.index(item["category"])
        logit = BIAS + AFFINITY * math.log(len(self.categories) * affinity[category])
        logit -= PRICE * sensitivity * math.log(item["price"] / self.median_price[item["category"]])
        if query:
            words = query.lower().split()
            title = item["title"].lower()
            logit += MATCH * sum(word in title for word in words) / len(words)
        if style is not None:
            look = item_style(self.seed, item["item_id"])
            logit += APPEAL[look] + STYLE * (look == style)
        return 1.0 / (1.0 + math.exp(-logit))


def _query(item: dict, rng: random.Random) -> str:
    """A search query a shopper would type for this item's category, with shoppers' noise."""
    noun = rng.choice(lexicon.CATEGORIES[item["category"]])
    parts = [noun]
    if rng.random() < 0.4:
        parts.insert(0, item["brand"] if rng.random() < 0.6 else rng.choice(lexicon.BRANDS[item["category"]]))
    if rng.random() < 0.3:
        parts.insert(0, item["color"])
    return add_noise(" ".join(parts), rng, typo_rate=0.2)


def _prefers(style: int | None, seed: int, item: dict) -> bool:
    return style is not None and style == item_style(seed, item["item_id"])


def _user_events(truth: ShopTruth, by_category: dict[str, list[dict]], index: int, config: ShopConfig,
                 oracle: np.ndarray) -> Iterator[dict]:  # fmt: skip
    rng = random.Random(f"user-{config.seed}-{index}")
    affinity, sensitivity = truth.user(index)
    style = truth.preferred_style(index)
    user_id = f"U{index:07d}"
    time = START_TIME + rng.randrange(0, 30 * 86_400)
    for _ in range(np.random.default_rng([config.seed, index, 1]).poisson(config.sessions_per_user)):
        time += rng.randrange(3_600, 14 * 86_400)
        category = truth.categories[int(np.searchsorted(np.cumsum(affinity), rng.random() * affinity.sum()))]
        pool = by_category[category]
        candidates = rng.sample(pool, min(config.candidates_per_session, len(pool)))
        query = _query(rng.choice(candidates), rng) if rng.random() < 0.7 else None
        for item in candidates:
            time += rng.randrange(5, 120)
            p = truth._probability(affinity, sensitivity, item, query, style)
            bought = rng.random() < p
            oracle[int(bought), min(int(p * ORACLE_BINS), ORACLE_BINS - 1)] += 1
            steps = ["view"]
            if bought:
                steps += ["click", "cart", "purchase"]
            elif rng.random() < (PREFERRED_CLICK if _prefers(style, config.seed, item) else CLICK):
                steps += ["click"] + (["cart"] if rng.random() < 0.3 else [])
            for event in steps:
                record = {"user_id": user_id, "item_id": item["item_id"], "timestamp": time, "event": event}
                if query is not None:
                    record["query"] = query
                yield record
                time += rng.randrange(2, 60)


def _conversation(rng: random.Random, catalog: list[dict], templates: dict[str, list[str]]) -> dict:
    """A multi-turn customer-service exchange whose reply fills slots only from the conversation.

    The customer's message comes from `templates` (intent -> the intent set's training templates),
    so no dialogue, whether a reply model or an MLM corpus reads it, shows a template held out for
    intent validation and test."""
    intent = rng.choice(sorted(templates))
    item = rng.choice(catalog)
    order_id = f"#{rng.randrange(10**6, 10**7)}"
    product = item["title"].split(",")[0]
    values = {
        "item": product, "brand": item["brand"], "model": product, "color": item["color"],
        "size": rng.choice(lexicon.SIZES), "capacity": rng.choice(lexicon.CAPACITIES),
        "price": rng.choice(lexicon.PRICES), "date": rng.choice(lexicon.DATES), "order_id": order_id,
        "code": rng.choice(lexicon.PROMO_CODES), "payment": rng.choice(lexicon.PAYMENT_METHODS),
        "carrier": rng.choice(lexicon.CARRIERS),
    }  # fmt: skip
    template = rng.choice(templates[intent])
    context = []
    if rng.random() < 0.3:
        context += [rng.choice(["hi", "hello", "hey there"]), "Hello! How can I help you today?"]
    context.append(add_noise(template.format(**values), rng, typo_rate=0.15))
    known = {}  # what the conversation says, so what a reply may use
    if "{order_id}" in template:
        known["order_id"] = order_id
    if "{item}" in template or "{model}" in template:
        known["product"] = product
    if "{code}" in template:
        known["code"] = values["code"]
    if "{payment}" in template:
        known["payment"] = values["payment"]
    if intent == "search_product" and "{item}" in template:
        known["category"] = item["category"]
    if "order_id" not in known and rng.random() < 0.5 and "{order_id}" in " ".join(REPLY_BANK[intent]):
        context += [fill_reply(intent, {}), f"it's {order_id}"]  # the agent asked; the customer answers
        known["order_id"] = order_id
    return {"context": context, "reply": fill_reply(intent, known), "intent": intent}


def _auc_from_histograms(oracle: np.ndarray) -> float:
    """AUC of binned scores: P(positive score > negative score), ties counted half."""
    negatives, positives = oracle[0], oracle[1]
    below = np.cumsum(negatives) - negatives  # negatives in lower bins
    pairs = positives.sum() * negatives.sum()
    return float((positives * (below + 0.5 * negatives)).sum() / pairs) if pairs else float("nan")


def generate_shop(out_dir: str | Path, config: ShopConfig | None = None, progress: bool = True) -> dict:
    """Writes a shop to `out_dir` and returns its summary (also written as `shop.json`).

    Files: `items.jsonl`, `events.jsonl` (grouped by user, time-ordered per user), `dialogues.jsonl`,
    `intents/{train,valid,test}.jsonl` and `shop.json` (config, counts, oracle AUC).
    """
    config = config or ShopConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalog = generate_catalog(config.seed, config.items_per_category)
    truth = ShopTruth(catalog, config.seed, config.image_dim)
    by_category: dict[str, list[dict]] = {}
    for item in catalog:
        by_category.setdefault(item["category"], []).append(item)
    if config.image_dim:
        for item in catalog:
            vector = image_vector(config.seed, item["item_id"], config.image_dim, config.image_missing)
            if vector is not None:
                item["image_vector"] = vector
    _write_jsonl(out / "items.jsonl", catalog)

    oracle = np.zeros((2, ORACLE_BINS), dtype=np.int64)
    events: Counter = Counter()
    conversations = 0
    dialogue_rng = random.Random(f"dialogues-{config.seed}")
    templates = {intent: splits["train"] for intent, splits in split_templates(config.seed).items()}
    with open(out / "events.jsonl", "w", encoding="utf-8") as event_file, \
            open(out / "dialogues.jsonl", "w", encoding="utf-8") as dialogue_file:  # fmt: skip
        for index in progress_bar(range(config.users), desc="users", unit="user", disable=not progress):
            for record in _user_events(truth, by_category, index, config, oracle):
                events[record["event"]] += 1
                event_file.write(json.dumps(record, ensure_ascii=False) + "\n")
            while dialogue_rng.random() < config.conversations_per_user / (1 + config.conversations_per_user):
                dialogue_file.write(
                    json.dumps(_conversation(dialogue_rng, catalog, templates), ensure_ascii=False) + "\n"
                )
                conversations += 1
    write_intent_data(out / "intents", seed=config.seed)
    summary = {
        "config": dataclasses.asdict(config),
        "items": len(catalog),
        "categories": len(by_category),
        "events": dict(events),
        "dialogues": conversations,
        "oracle_auc_views": _auc_from_histograms(oracle),
        "purchase_rate_per_view": events["purchase"] / max(events["view"], 1),
    }
    (out / "shop.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def describe_shop(shop_dir: str | Path) -> dict:
    """Counts and distributions of a shop folder written by `generate_shop` (or in its formats)."""
    shop_dir = Path(shop_dir)

    def lines(name: str):
        path = shop_dir / name
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as file:
            for line in progress_bar(file, desc=name, unit=" lines", leave=False, mininterval=1.0):
                if line.strip():
                    yield json.loads(line)

    items = list(lines("items.jsonl"))
    prices = np.array([item["price"] for item in items if item.get("price") is not None])
    events, users, queries, with_query = Counter(), set(), Counter(), 0
    for event in lines("events.jsonl"):
        events[event["event"]] += 1
        users.add(event["user_id"])
        if event.get("query"):
            with_query += 1
            if event["event"] == "view":
                queries[event["query"]] += 1
    dialogues = list(lines("dialogues.jsonl"))
    intents = {
        split: Counter(r["label"] for r in lines(f"intents/{split}.jsonl"))
        for split in ("train", "valid", "test")
    }
    summary = json.loads((shop_dir / "shop.json").read_text()) if (shop_dir / "shop.json").is_file() else {}
    return {
        "items": len(items),
        "items_per_category": dict(sorted(Counter(item["category"] for item in items).items())),
        "price": {"min": float(prices.min()), "median": float(np.median(prices)), "max": float(prices.max())}
        if len(prices)
        else None,
        "users": len(users),
        "events": dict(events),
        "events_with_query": with_query,
        "top_queries": queries.most_common(5),
        "purchases_per_view": events["purchase"] / max(events["view"], 1),
        "dialogues": len(dialogues),
        "turns_per_dialogue": float(np.mean([len(d["context"]) for d in dialogues])) if dialogues else None,
        "dialogue_intents": len({d.get("intent") for d in dialogues}),
        "intent_utterances": {split: sum(c.values()) for split, c in intents.items()},
        "intents": len(intents["train"]),
        "oracle_auc_views": summary.get("oracle_auc_views"),
    }
