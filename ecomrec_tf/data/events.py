"""Catalog items and shop events from users' files, and purchase examples built from them."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from ecomrec_tf.data.readers import DataError, read_records

EVENT_TYPES = ("view", "click", "cart", "purchase")
HISTORY_EVENTS = ("click", "cart", "purchase")  # what counts as a user's history


def read_items(path: str | Path) -> dict[str, dict]:
    """Reads items `{item_id, title, description?, category, price?}` keyed by `item_id`.

    A missing `description` becomes ""; `price`, when given, must be a non-negative number.

    Raises:
        DataError: naming the file and line (or record) of a bad item, or a duplicated `item_id`.
    """
    path = Path(path)
    items: dict[str, dict] = {}
    for where, record in read_records(path, ("item_id", "title", "category")):
        price = record.get("price")
        if price not in (None, ""):
            try:
                price = float(price)
            except (TypeError, ValueError):
                raise DataError(f"{where}: field 'price' is not a number: {price!r}") from None
            if math.isnan(price) or price < 0:
                raise DataError(f"{where}: field 'price' must be >= 0, got {price}")
        else:
            price = None
        if record["item_id"] in items:
            raise DataError(f"{where}: duplicate item_id {record['item_id']!r}")
        items[record["item_id"]] = {**record, "description": record.get("description") or "", "price": price}
    return items


def _timestamp(value, where: str) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return (
                int(value)
                if value.strip().lstrip("-").isdigit()
                else int(datetime.fromisoformat(value).timestamp())
            )
        except ValueError:
            pass
    raise DataError(f"{where}: field 'timestamp' must be Unix seconds or ISO 8601, got {value!r}")


@dataclasses.dataclass
class EventsReport:
    """What reading events found besides good events."""

    events: int = 0
    unknown_items: Counter = dataclasses.field(default_factory=Counter)
    duplicates: int = 0
    out_of_order: int = 0

    def __str__(self) -> str:
        unknown = sum(self.unknown_items.values())
        return (
            f"{self.events} events; dropped {unknown} naming {len(self.unknown_items)} unknown items and "
            f"{self.duplicates} duplicates; sorted {self.out_of_order} out-of-order events"
        )


def read_events(path: str | Path, items: dict[str, dict] | None = None) -> tuple[list[dict], EventsReport]:
    """Reads events `{user_id, item_id, timestamp, event, query?}`, sorted by user, then time.

    Events naming items not in `items` are dropped and counted, not fatal; exact duplicates are
    dropped; out-of-order timestamps are sorted. The report says how many of each.

    Raises:
        DataError: naming the file and line of a malformed event (missing field, unknown event type,
            bad timestamp).
    """
    path = Path(path)
    report = EventsReport()
    seen = set()
    events = []
    last_time: dict[str, int] = {}
    for where, record in read_records(path, ("user_id", "item_id", "event")):
        if "timestamp" not in record:
            raise DataError(f"{where}: missing field 'timestamp'")
        if record["event"] not in EVENT_TYPES:
            raise DataError(f"{where}: event must be one of {EVENT_TYPES}, got {record['event']!r}")
        time = _timestamp(record["timestamp"], where)
        if items is not None and record["item_id"] not in items:
            report.unknown_items[record["item_id"]] += 1
            continue
        key = (record["user_id"], record["item_id"], time, record["event"])
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        if time < last_time.get(record["user_id"], time):
            report.out_of_order += 1
        last_time[record["user_id"]] = max(time, last_time.get(record["user_id"], time))
        query = record.get("query") or None
        events.append({"user_id": record["user_id"], "item_id": record["item_id"], "timestamp": time,
                       "event": record["event"], "query": query})  # fmt: skip
    events.sort(key=lambda e: (e["user_id"], e["timestamp"], EVENT_TYPES.index(e["event"])))
    report.events = len(events)
    return events, report


def purchase_examples(events: list[dict], items: dict[str, dict], history_size: int = 10,
                      catalog_negatives: int = 1, seed: int = 0) -> list[dict]:  # fmt: skip
    """Purchase examples from events sorted by `read_events`: one per viewed item, plus catalog negatives.

    A view is positive when the user bought that item later in the same visit (no view of another
    item in between is required); else it is a viewed-not-bought negative. Each positive also brings
    `catalog_negatives` random items the user never touched, as negatives at the same moment.
    `history` holds the user's clicked, carted and bought items strictly before the example's
    timestamp, most recent first: nothing from the future leaks in.

    Returns:
        Examples `{user_id, timestamp, history, item_id, query, label}` in time order per user.
    """
    rng = random.Random(seed)
    catalog = sorted(items)
    by_user: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_user[event["user_id"]].append(event)
    examples = []
    for user_id, user_events in by_user.items():
        bought_at = defaultdict(list)
        for event in user_events:
            if event["event"] == "purchase":
                bought_at[event["item_id"]].append(event["timestamp"])
        touched = {event["item_id"] for event in user_events}
        history: list[tuple[int, str]] = []  # (time, item), appended in time order
        for event in user_events:
            if event["event"] == "view":
                time = event["timestamp"]
                past = [item for t, item in reversed(history) if t < time]
                recent = list(dict.fromkeys(past))[:history_size]
                label = int(any(time <= t <= time + 86_400 for t in bought_at[event["item_id"]]))
                base = {"user_id": user_id, "timestamp": time, "history": recent, "query": event["query"]}
                examples.append({**base, "item_id": event["item_id"], "label": label})
                if label:
                    for _ in range(catalog_negatives):
                        negative = rng.choice(catalog)
                        if negative not in touched:
                            examples.append({**base, "item_id": negative, "label": 0})
            elif event["event"] in HISTORY_EVENTS:
                history.append((event["timestamp"], event["item_id"]))
    return examples


def split_by_time(examples: list[dict], valid_fraction: float = 0.1, test_fraction: float = 0.1,
                  ) -> dict[str, list[dict]]:  # fmt: skip
    """Train, valid and test by timestamp cut-offs: every test example is later than every train one."""
    times = sorted(example["timestamp"] for example in examples)
    if not times:
        raise DataError("no examples to split")

    def cut(fraction: float) -> float:  # the first timestamp of the last `fraction`; inf for none
        index = int(len(times) * (1 - fraction))
        return times[index] if index < len(times) else math.inf

    valid_start, test_start = cut(valid_fraction + test_fraction), cut(test_fraction)
    return {
        "train": [e for e in examples if e["timestamp"] < valid_start],
        "valid": [e for e in examples if valid_start <= e["timestamp"] < test_start],
        "test": [e for e in examples if e["timestamp"] >= test_start],
    }
