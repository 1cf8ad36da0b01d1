"""Catalog items and shop events from users' files, and purchase examples built from them."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from ecomrec_tf.data.event_state import LABEL_WINDOW, EventState
from ecomrec_tf.data.readers import DataError, read_records

EVENT_TYPES = ("view", "click", "cart", "purchase")


def read_items(path: str | Path) -> dict[str, dict]:
    """Reads items `{item_id, title, description?, category, price?}` keyed by `item_id`.

    A missing `description` becomes ""; `price`, when given, must be a non-negative number.

    Raises:
        DataError: naming the file and line (or record) of a bad item, or a duplicated `item_id`.
    """
    path = Path(path)
    items: dict[str, dict] = {}
    for where, record in read_records(path, ("item_id", "title", "category"), optional=("description",)):
        price = record.get("price")
        if price not in (None, ""):
            try:
                price = float(price)
            except (TypeError, ValueError):
                raise DataError(f"{where}: field 'price' is not a number: {price!r}") from None
            if not math.isfinite(price) or price < 0:
                raise DataError(f"{where}: field 'price' must be a finite number >= 0, got {price}")
        else:
            price = None
        if record["item_id"] in items:
            raise DataError(f"{where}: duplicate item_id {record['item_id']!r}")
        items[record["item_id"]] = {**record, "description": record.get("description") or "", "price": price}
    return items


# Timestamps outside this range are refused as typos or unit mix-ups (milliseconds for seconds):
# 1970-01-01 to 2100-01-01, UTC. `read_events(time_range=...)` sets another.
TIME_RANGE = (0, 4_102_444_800)


def _timestamp(value, where: str, time_range: tuple[int, int] = TIME_RANGE) -> int:
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text) if text.lstrip("-").replace(".", "", 1).isdigit() else None
            if seconds is None:
                moment = datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)  # naive times are UTC, not local
                seconds = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()
        except ValueError:
            pass
    if seconds is None:
        raise DataError(f"{where}: field 'timestamp' must be Unix seconds or ISO 8601, got {value!r}")
    earliest, latest = time_range
    if not (isinstance(seconds, int) or math.isfinite(seconds)) or not earliest <= seconds < latest:
        raise DataError(
            f"{where}: field 'timestamp' {value!r} is outside {_utc(earliest)} .. {_utc(latest)} "
            "(Unix seconds expected; milliseconds? set read_events(time_range=...) for other dates)"
        )
    return int(seconds)


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d")


@dataclasses.dataclass
class EventsReport:
    """What reading events found besides good events."""

    events: int = 0
    unknown_items: Counter = dataclasses.field(default_factory=Counter)
    duplicates: int = 0
    out_of_order: int = 0

    def merge(self, other: EventsReport) -> None:
        """Adds the counts of another file's report."""
        self.events += other.events
        self.unknown_items.update(other.unknown_items)
        self.duplicates += other.duplicates
        self.out_of_order += other.out_of_order

    def __str__(self) -> str:
        unknown = sum(self.unknown_items.values())
        return (
            f"{self.events} events; dropped {unknown} naming {len(self.unknown_items)} unknown items and "
            f"{self.duplicates} duplicates; sorted {self.out_of_order} out-of-order events"
        )


def read_events(
    path: str | Path, items: dict[str, dict] | None = None, time_range: tuple[int, int] = TIME_RANGE
) -> tuple[list[dict], EventsReport]:
    """Reads events `{user_id, item_id, timestamp, event, query?}`, sorted by user, then time.

    Timestamps are Unix seconds or ISO 8601 (UTC unless the text gives a zone), within
    `time_range` (Unix seconds, from .. before).

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
    for where, record in read_records(path, ("user_id", "item_id", "event"), optional=("query",)):
        if "timestamp" not in record:
            raise DataError(f"{where}: missing field 'timestamp'")
        if record["event"] not in EVENT_TYPES:
            raise DataError(f"{where}: event must be one of {EVENT_TYPES}, got {record['event']!r}")
        time = _timestamp(record["timestamp"], where, time_range)
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


def purchase_examples(
    events: list[dict],
    items: dict[str, dict],
    history_size: int = 10,
    catalog_negatives: int = 0,
    seed: int = 0,
    earlier: list[dict] | tuple = (),
    session_gap: int | None = None,
) -> list[dict]:
    """Purchase examples from events: one per view, labelled by whether the user bought the item.

    A view is positive when the same user bought the same item within `LABEL_WINDOW` (a day) after
    it. Everything else an example holds comes from strictly earlier events, through one
    `EventState` fed in time order: `history` (the user's most recent distinct clicked, carted or
    bought items, most recent first) and `features` (`event_state.FEATURES`: the user's and the
    item's counts, recent purchase rates, recency, the user's counts in the item's category). Events
    sharing a second are applied together after that second's examples (in the order view, click,
    cart, purchase), so a view never sees the purchase it leads to. `earlier` events (a training
    log, when `events` is a later log to evaluate) are applied first, in their own time order: they
    make histories and counts, not examples.

    `catalog_negatives` (a training device, never for evaluation) adds, for each positive, that many
    random catalog items the user never touched, as negatives at the same moment (`catalog_negative`
    True).

    With `session_gap` (seconds), every view of a session (the user's views with less than
    `session_gap` between consecutive ones) instead gets the user's history, counts and category
    counts as they were at the session's first view: candidates ranked on one page are scored with
    one state of the user, as `rank` serves them, so ranking metrics compare like with like.

    Returns:
        Examples `{user_id, item_id, timestamp, history, query, label, features, catalog_negative}`,
        in time order.
    """
    rng = random.Random(seed)
    catalog = sorted(items)
    state = EventState(items, history_size)
    for event in _in_time_order(earlier):
        state.apply(event)
    events = _in_time_order(events)
    bought_at = defaultdict(list)
    touched = defaultdict(set)
    for event in events:
        touched[event["user_id"]].add(event["item_id"])
        if event["event"] == "purchase":
            bought_at[event["user_id"], event["item_id"]].append(event["timestamp"])
    examples = []
    sessions: dict[str, tuple] = {}  # user -> (last view time, snapshot at the session's first view)
    start = 0
    while start < len(events):
        time = events[start]["timestamp"]
        end = start
        while end < len(events) and events[end]["timestamp"] == time:
            end += 1
        for event in events[start:end]:
            if event["event"] != "view":
                continue
            user_id, item_id = event["user_id"], event["item_id"]
            label = int(any(time <= t <= time + LABEL_WINDOW for t in bought_at[user_id, item_id]))
            categories = None
            if session_gap is None:
                user, history = state.user_features(user_id, time), state.history(user_id)
            else:
                last, snapshot = sessions.get(user_id, (None, None))
                if last is None or time - last >= session_gap:
                    snapshot = state.snapshot(user_id, time)
                sessions[user_id] = (time, snapshot)
                user, history, categories = snapshot
            base = {"user_id": user_id, "timestamp": time, "history": history,
                    "query": event["query"], "catalog_negative": False}  # fmt: skip
            features = {**user, **state.item_features(user_id, item_id, categories)}
            examples.append({**base, "item_id": item_id, "label": label, "features": features})
            if label:
                for _ in range(catalog_negatives):
                    negative = rng.choice(catalog)
                    if negative not in touched[user_id]:
                        features = {**user, **state.item_features(user_id, negative, categories)}
                        examples.append({**base, "item_id": negative, "label": 0, "features": features,
                                         "catalog_negative": True})  # fmt: skip
        for event in events[start:end]:
            state.apply(event)
        start = end
    return examples


def _in_time_order(events) -> list[dict]:
    return sorted(events, key=lambda e: (e["timestamp"], EVENT_TYPES.index(e["event"])))


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
