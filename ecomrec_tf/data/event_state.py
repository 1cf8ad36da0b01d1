"""What a shop knows about its users and items at a moment, from the events before it.

One `EventState` is fed events in time order (`apply`) and answers, for a user and a candidate
item, the purchase model's count features and the user's history (`example`). The same code
builds training examples, evaluation examples and serving requests, so a feature can never mean
one thing in training and another in production: to serve, keep an `EventState` fed with the live
event stream and send `state.request(user, items, now)` to the SavedModel.

Every feature is a raw count, seconds or a price (the model transforms them in its graph):
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque

from ecomrec_tf.data.item_features import ItemFeatures

# Purchases within this many seconds after a view make that view a purchased one.
LABEL_WINDOW = 86_400
WINDOWS = (5, 50)  # the user's recent views, for recent purchase rates
SESSION_GAP = 30 * 60  # seconds between views that end a session, the usual web-analytics definition
HISTORY_EVENTS = ("click", "cart", "purchase")  # what puts an item in a user's history

USER_FEATURES = {
    "user_views": "views by the user before now",
    "user_purchases": "purchases by the user before now",
    **{f"user_purchases_last{w}": f"purchases among the user's last {w} views" for w in WINDOWS},
    "user_idle_seconds": "seconds since the user's previous event (NaN: a new user)",
    "user_mean_price": "mean price of the user's purchases (NaN: none with a price)",
}
ITEM_FEATURES = {
    "item_views": "views of the item by anyone before now",
    "item_purchases": "purchases of the item by anyone before now",
}
PAIR_FEATURES = {
    "category_views": "the user's views of items in the item's category",
    "category_purchases": "the user's purchases of items in the item's category",
}
FEATURES = {**USER_FEATURES, **ITEM_FEATURES, **PAIR_FEATURES}
__doc__ += "".join(f"\n- `{name}`: {meaning}" for name, meaning in FEATURES.items()) + "\n"


class _User:
    __slots__ = ("views", "purchases", "last_time", "recent", "categories", "spent", "priced", "history")

    def __init__(self):
        self.views = self.purchases = 0
        self.last_time: int | None = None
        self.recent: deque = deque(maxlen=max(WINDOWS))  # [item_id, view time, bought] per view
        self.categories: Counter = Counter()  # (category, event) -> count
        self.spent, self.priced = 0.0, 0
        self.history: OrderedDict = OrderedDict()  # item_id -> None, most recent last


NEW_USER = _User()


class EventState:
    """Counts, recent purchase rates, recency and histories of users and items, as of the events applied.

    Args:
        items: the catalog by item id (`data.events.read_items`): categories and prices.
        history_size: items kept per user history (most recent distinct clicked, carted or bought).
        catalog_features: the items' image vectors and attributes that requests carry
            (`ItemFeatures.infer(items)` unless given).

    Example:
        >>> state = EventState({"A": {"category": "shoes", "price": 80.0}})
        >>> state.apply({"user_id": "u", "item_id": "A", "timestamp": 10, "event": "view"})
        >>> state.features("u", "A", now=70)["user_idle_seconds"], state.features("u", "A", 70)["item_views"]
        (60.0, 1.0)
    """

    def __init__(
        self, items: dict[str, dict], history_size: int = 10, catalog_features: ItemFeatures | None = None
    ):
        self.items = items
        self.history_size = history_size
        self.catalog_features = ItemFeatures.infer(items) if catalog_features is None else catalog_features
        self.users: dict[str, _User] = {}
        self.item_views: Counter = Counter()
        self.item_purchases: Counter = Counter()

    def _user(self, user_id: str) -> _User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = _User()
        return user

    def apply(self, event: dict) -> None:
        """Adds one event `{user_id, item_id, timestamp, event}`; events must come in time order."""
        user = self._user(event["user_id"])
        item_id, time, kind = event["item_id"], event["timestamp"], event["event"]
        category = self.items[item_id]["category"]
        if kind == "view":
            user.views += 1
            self.item_views[item_id] += 1
            user.recent.append([item_id, time, False])
        elif kind == "purchase":
            user.purchases += 1
            self.item_purchases[item_id] += 1
            price = self.items[item_id].get("price")
            if price is not None:
                user.spent, user.priced = user.spent + price, user.priced + 1
            for view in reversed(user.recent):  # the latest unbought view of it, if recent enough
                if view[0] == item_id and not view[2] and time - view[1] <= LABEL_WINDOW:
                    view[2] = True
                    break
        user.categories[category, kind] += 1
        if kind in HISTORY_EVENTS:
            user.history.pop(item_id, None)
            user.history[item_id] = None
            if len(user.history) > self.history_size:
                user.history.popitem(last=False)
        user.last_time = time

    def history(self, user_id: str) -> list[str]:
        """The user's most recent distinct clicked, carted or bought items, most recent first."""
        user = self.users.get(user_id)
        return list(reversed(user.history)) if user else []

    def user_features(self, user_id: str, now: int) -> dict[str, float]:
        """`USER_FEATURES` of the user at time `now`, from the events applied so far."""
        user = self.users.get(user_id, NEW_USER)
        bought = [view[2] for view in user.recent]
        return {
            "user_views": float(user.views),
            "user_purchases": float(user.purchases),
            **{f"user_purchases_last{w}": float(sum(bought[-w:])) for w in WINDOWS},
            "user_idle_seconds": math.nan if user.last_time is None else float(now - user.last_time),
            "user_mean_price": user.spent / user.priced if user.priced else math.nan,
        }

    def item_features(
        self, user_id: str, item_id: str, categories: Counter | None = None
    ) -> dict[str, float]:
        """`ITEM_FEATURES` and `PAIR_FEATURES` of a candidate item for the user (`categories`: the
        user's counts by category to use instead of the current ones, e.g. a `snapshot`'s)."""
        if categories is None:
            categories = self.users.get(user_id, NEW_USER).categories
        category = self.items[item_id]["category"]
        return {
            "item_views": float(self.item_views[item_id]),
            "item_purchases": float(self.item_purchases[item_id]),
            "category_views": float(categories[category, "view"]),
            "category_purchases": float(categories[category, "purchase"]),
        }

    def snapshot(self, user_id: str, now: int) -> tuple[dict[str, float], list[str], Counter]:
        """What is known of the user at `now`, to score several candidates with (a ranked page):
        `(user_features, history, counts by category)`."""
        categories = Counter(self.users.get(user_id, NEW_USER).categories)
        return self.user_features(user_id, now), self.history(user_id), categories

    def features(self, user_id: str, item_id: str, now: int) -> dict[str, float]:
        """All `FEATURES` for the user and candidate item at time `now`."""
        return {**self.user_features(user_id, now), **self.item_features(user_id, item_id)}

    def request(
        self, user_id: str, item_ids: list[str], now: int, texts: dict[str, str], query: str = ""
    ) -> dict:
        """One `rank` request row for a user, a query ("" for none) and candidates at `now`: what a
        caller sends to the SavedModel (see the README's Serving section). `texts` maps item ids to
        their texts (`data.task_datasets.item_text`). A new user's history is one "" (padding)."""
        rows = [self.item_request(item_id, texts, user_id) for item_id in item_ids]
        request = self.user_request(user_id, now, texts, query)
        request |= {"candidate_ids": list(item_ids), "candidates": [row["item"] for row in rows]}
        for name in ("category", "price", *ITEM_FEATURES, *PAIR_FEATURES, *self.catalog_features.shapes()):
            request[f"candidate_{name}"] = [row[name] for row in rows]
        return request

    def user_request(self, user_id: str, now: int, texts: dict[str, str], query: str = "") -> dict:
        """The user side of a request row at `now` (the `embed_user` signature's inputs)."""
        history = self.history(user_id)
        request = {
            "user_id": user_id,
            "query": query,
            "history_ids": history or [""],
            "history": [texts[i] for i in history] or [""],
        }
        rows = [self.catalog_features.values(self.items[i]) for i in history] or [
            self.catalog_features.values(None)
        ]
        for name in self.catalog_features.shapes():
            request[f"history_{name}"] = [row[name] for row in rows]
        return request | self.user_features(user_id, now)

    def item_request(self, item_id: str, texts: dict[str, str], user_id: str | None = None) -> dict:
        """The item side of a request row (the `embed_item` signature's inputs); without a user, the
        user's counts in the item's category are 0 (a catalog row)."""
        return {
            "item_id": item_id,
            "item": texts[item_id],
            "category": self.items[item_id]["category"],
            "price": _price(self.items[item_id]),
            **self.catalog_features.values(self.items[item_id]),
            **self.item_features(user_id, item_id, None if user_id else Counter()),
        }


def _price(item: dict) -> float:
    return math.nan if item.get("price") is None else float(item["price"])
