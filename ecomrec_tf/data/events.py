"""Catalog items and shop events from users' files, and purchase examples built from them."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import pickle
import random
import shutil
import tempfile
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ecomrec_tf.data.event_state import LABEL_WINDOW, EventState
from ecomrec_tf.data.item_features import parse_item_features
from ecomrec_tf.data.readers import DataError, iter_records, read_records

EVENT_TYPES = ("view", "click", "cart", "purchase")


def read_items(path: str | Path) -> dict[str, dict]:
    """Reads items `{item_id, title, description?, category, price?, image_vector?, attributes?}` keyed
    by `item_id`.

    A missing `description` becomes ""; `price`, when given, must be a non-negative number;
    `image_vector` and `attributes` are checked and normalised by `item_features.parse_item_features`
    (None and `{}` when absent).

    Raises:
        DataError: naming the file and line (or record) of a bad item, or a duplicated `item_id`.
    """
    path = Path(path)
    items: dict[str, dict] = {}
    image_size = None  # the first image vector's length: every other must match it
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
        features = parse_item_features(record, where)
        if features["image_vector"] is not None:
            image_size = image_size or len(features["image_vector"])
            if image_size != len(features["image_vector"]):
                raise DataError(
                    f"{where}: field 'image_vector' has {len(features['image_vector'])} values, earlier "
                    f"items' have {image_size}; compute every item's with one image model"
                )
        items[record["item_id"]] = {**record, "description": record.get("description") or "", "price": price,
                                    **features}  # fmt: skip
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
                    moment = moment.replace(tzinfo=UTC)  # naive times are UTC, not local
                seconds = (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
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
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


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


def iter_events(
    path: str | Path,
    items: dict[str, dict] | None = None,
    time_range: tuple[int, int] = TIME_RANGE,
    report: EventsReport | None = None,
) -> Iterator[dict]:
    """The valid events `{user_id, item_id, timestamp, event, query}` of a file, in file order, one at
    a time. Events naming items not in `items` are dropped and counted in `report`.

    Raises:
        DataError: naming the file and line of a malformed event (missing field, unknown event type,
            bad timestamp).
    """
    report = report if report is not None else EventsReport()
    for where, record in iter_records(path, ("user_id", "item_id", "event"), optional=("query",)):
        if "timestamp" not in record:
            raise DataError(f"{where}: missing field 'timestamp'")
        if record["event"] not in EVENT_TYPES:
            raise DataError(f"{where}: event must be one of {EVENT_TYPES}, got {record['event']!r}")
        time = _timestamp(record["timestamp"], where, time_range)
        if items is not None and record["item_id"] not in items:
            report.unknown_items[record["item_id"]] += 1
            continue
        yield {"user_id": record["user_id"], "item_id": record["item_id"], "timestamp": time,
               "event": record["event"], "query": record.get("query") or None}  # fmt: skip


def read_events(
    path: str | Path, items: dict[str, dict] | None = None, time_range: tuple[int, int] = TIME_RANGE
) -> tuple[list[dict], EventsReport]:
    """Reads events `{user_id, item_id, timestamp, event, query?}`, sorted by user, then time.

    Timestamps are Unix seconds or ISO 8601 (UTC unless the text gives a zone), within
    `time_range` (Unix seconds, from .. before).

    Events naming items not in `items` are dropped and counted, not fatal; exact duplicates are
    dropped; out-of-order timestamps are sorted. The report says how many of each. For logs larger
    than memory, `SortedEvents` reads the same events in time order from disk.

    Raises:
        DataError: naming the file and line of a malformed event (missing field, unknown event type,
            bad timestamp).
    """
    report = EventsReport()
    seen = set()
    events = []
    last_time: dict[str, int] = {}
    for event in iter_events(path, items, time_range, report):
        key = (event["user_id"], event["item_id"], event["timestamp"], event["event"])
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        report.out_of_order += _out_of_order(last_time, event)
        events.append(event)
    events.sort(key=lambda e: (e["user_id"], e["timestamp"], EVENT_TYPES.index(e["event"])))
    report.events = len(events)
    return events, report


def _out_of_order(last_time: dict[str, int], event: dict) -> int:
    """1 when the event is earlier than the user's latest event so far (and records the latest)."""
    user, time = event["user_id"], event["timestamp"]
    latest = last_time.get(user, time)
    last_time[user] = max(latest, time)
    return int(time < latest)


class SortedEvents:
    """The valid events of files in time order, at bounded memory: an external merge sort.

    The files are read once (`iter_events`), in runs of `run_size` events, each sorted in memory
    and written to a temporary file under `work_dir`; iterating merges the runs (`heapq.merge`), so
    the events can be read in time order any number of times while memory holds one record per run.
    Exact duplicates (same user, item, second and event) are dropped; `report` counts them, the
    events naming unknown items, and the out-of-order ones. Order within a second: view, click,
    cart, purchase, then user and item.

    Raises:
        DataError: as `iter_events`, or when every event names an item not in `items`.
    """

    def __init__(
        self,
        paths: list[str | Path],
        items: dict[str, dict],
        work_dir: str | Path,
        report: EventsReport | None = None,
        time_range: tuple[int, int] = TIME_RANGE,
        run_size: int = 1_000_000,
        catalog: str = "the catalog",
    ):
        self.report = report if report is not None else EventsReport()
        self.dir = Path(tempfile.mkdtemp(prefix="events-", dir=work_dir))
        self.runs: list[Path] = []
        self.count = 0
        last_time: dict[str, int] = {}
        for path in paths:
            part, before = EventsReport(), self.count
            run = []
            for event in iter_events(path, items, time_range, part):
                part.out_of_order += _out_of_order(last_time, event)
                run.append(_as_row(event))
                if len(run) >= run_size:
                    self._spill(run)
                    run = []
            self._spill(run)
            check_known(path, part, self.count - before, catalog)
            self.report.merge(part)
        unique = sum(1 for _ in self)
        self.report.duplicates += self.count - unique
        self.report.events += unique
        self.count = unique

    def _spill(self, run: list[tuple]) -> None:
        if not run:
            return
        run.sort()
        path = self.dir / f"run-{len(self.runs):05d}.pickle"
        with path.open("wb") as file:
            for start in range(0, len(run), 10_000):
                pickle.dump(run[start : start + 10_000], file, protocol=pickle.HIGHEST_PROTOCOL)
        self.runs.append(path)
        self.count += len(run)

    def __iter__(self) -> Iterator[dict]:
        previous = None
        for row in heapq.merge(*(_read_run(path) for path in self.runs)):
            if previous is not None and row[:4] == previous[:4]:
                continue
            previous = row
            yield {"timestamp": row[0], "event": EVENT_TYPES[row[1]], "user_id": row[2], "item_id": row[3],
                   "query": row[4] or None}  # fmt: skip

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        """Deletes the sorted runs."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _as_row(event: dict) -> tuple:
    return (event["timestamp"], EVENT_TYPES.index(event["event"]), event["user_id"], event["item_id"],
            event["query"] or "")  # fmt: skip


def _read_run(path: Path) -> Iterator[tuple]:
    with path.open("rb") as file:
        while True:
            try:
                yield from pickle.load(file)
            except EOFError:
                return


def check_known(path, report: EventsReport, kept: int, catalog: str = "the catalog") -> None:
    """Raises DataError when a log kept no event because every one named an item not in the catalog."""
    if not kept and report.unknown_items:
        unknown = sum(report.unknown_items.values())
        examples = ", ".join(repr(i) for i, _ in report.unknown_items.most_common(3))
        raise DataError(
            f"{path}: all {unknown} events name items not in {catalog} (e.g. {examples}); "
            "are the events and items from the same shop?"
        )


def purchase_examples(
    events: list[dict],
    items: dict[str, dict],
    history_size: int = 10,
    catalog_negatives: int = 0,
    seed: int = 0,
    earlier: list[dict] | tuple = (),
    session_gap: int | None = None,
) -> list[dict]:
    """`iter_purchase_examples` of events in any order (sorted here), as a list."""
    return list(iter_purchase_examples(
        in_time_order(events), items, history_size, catalog_negatives, seed, in_time_order(earlier),
        session_gap,
    ))  # fmt: skip


def iter_purchase_examples(
    events: Iterable[dict],
    items: dict[str, dict],
    history_size: int = 10,
    catalog_negatives: int = 0,
    seed: int = 0,
    earlier: Iterable[dict] = (),
    session_gap: int | None = None,
    between: tuple[float, float] = (-math.inf, math.inf),
) -> Iterator[dict]:
    """Purchase examples from events in time order: one per view, labelled by whether the user
    bought the item, yielded in time order at memory bounded by a day of events.

    A view is positive when the same user bought the same item within `LABEL_WINDOW` (a day) after
    it: each view waits a day in a buffer for its label. Everything else an example holds comes from
    strictly earlier events, through one `EventState` fed in time order: `history` (the user's most
    recent distinct clicked, carted or bought items, most recent first) and `features`
    (`event_state.FEATURES`: the user's and the item's counts, recent purchase rates, recency, the
    user's counts in the item's category). Events sharing a second are applied together after that
    second's examples (in the order view, click, cart, purchase), so a view never sees the purchase
    it leads to. `earlier` events (a training log, when `events` is a later log to evaluate) are
    applied first, in their own time order: they make histories and counts, not examples. Only views
    with a timestamp in `between` (inclusive) make examples; all events count.

    `catalog_negatives` (a training device, never for evaluation) adds, for each positive, that many
    random catalog items the user had not touched up to a day after the view, as negatives
    (`catalog_negative` True) with the user's state at the view and the item's at the purchase.

    With `session_gap` (seconds), every view of a session (the user's views with less than
    `session_gap` between consecutive ones) instead gets the user's history, counts and category
    counts as they were at the session's first view: candidates ranked on one page are scored with
    one state of the user, as `rank` serves them, so ranking metrics compare like with like.

    Yields:
        Examples `{user_id, item_id, timestamp, history, query, label, features, catalog_negative}`.
    """
    rng = random.Random(seed)
    catalog = sorted(items)
    state = EventState(items, history_size)
    for event in earlier:
        state.apply(event)
    waiting: deque[dict] = deque()  # views waiting for their label, in time order
    unlabelled: dict[tuple, deque] = defaultdict(deque)  # (user, item) -> its waiting views
    touched: dict[str, set] = defaultdict(set)
    sessions: dict[str, tuple] = {}  # user -> (last view time, snapshot at the session's first view)
    first, last = between

    def labelled(before: float) -> Iterator[dict]:  # the views whose label window has closed
        while waiting and waiting[0]["timestamp"] < before:
            example = waiting.popleft()
            key = example["user_id"], example["item_id"]
            unlabelled[key].popleft()
            if not unlabelled[key]:
                del unlabelled[key]
            negatives = example.pop("negatives")
            del example["user"]
            yield example
            for item_id, features in negatives:
                if item_id not in touched[example["user_id"]]:
                    yield {**example, "item_id": item_id, "label": 0, "features": features,
                           "catalog_negative": True}  # fmt: skip

    for time, group in itertools.groupby(events, key=lambda e: e["timestamp"]):
        group = list(group)
        yield from labelled(time - LABEL_WINDOW)
        for event in group:
            if event["event"] != "view" or not first <= time <= last:
                continue
            user_id, item_id = event["user_id"], event["item_id"]
            categories = None
            if session_gap is None:
                user, history = state.user_features(user_id, time), state.history(user_id)
            else:
                previous, snapshot = sessions.get(user_id, (None, None))
                if previous is None or time - previous >= session_gap:
                    snapshot = state.snapshot(user_id, time)
                sessions[user_id] = (time, snapshot)
                user, history, categories = snapshot
            example = {"user_id": user_id, "timestamp": time, "history": history, "query": event["query"],
                       "catalog_negative": False, "item_id": item_id, "label": 0,
                       "features": {**user, **state.item_features(user_id, item_id, categories)},
                       "negatives": [], "user": user}  # fmt: skip
            waiting.append(example)
            unlabelled[user_id, item_id].append(example)
        for event in group:
            user_id, item_id = event["user_id"], event["item_id"]
            if catalog_negatives:
                touched[user_id].add(item_id)
            if event["event"] == "purchase":
                for example in unlabelled.get((user_id, item_id), ()):
                    if not example["label"]:
                        example["label"] = 1
                        for _ in range(catalog_negatives):
                            negative = rng.choice(catalog)
                            features = {**example["user"], **state.item_features(user_id, negative)}
                            example["negatives"].append((negative, features))
            state.apply(event)
    yield from labelled(math.inf)


def in_time_order(events) -> list[dict]:
    """Events sorted by time, then view, click, cart, purchase within a second."""
    return sorted(events, key=lambda e: (e["timestamp"], EVENT_TYPES.index(e["event"])))


def split_by_time(examples, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> dict:
    """Train, valid and test by timestamp cut-offs: every test example is later than every train one.

    `examples` (in time order) is a list or `example_store.StoredExamples`; so are the splits.
    """
    if not len(examples):
        raise DataError("no examples to split")

    def cut(fraction: float) -> float:  # the first timestamp of the last `fraction`; inf for none
        index = int(len(examples) * (1 - fraction))
        return examples[index]["timestamp"] if index < len(examples) else math.inf

    valid_start, test_start = cut(valid_fraction + test_fraction), cut(test_fraction)
    return {
        "train": between(examples, -math.inf, valid_start),
        "valid": between(examples, valid_start, test_start),
        "test": between(examples, test_start, math.inf),
    }


def between(examples, start: float, end: float):
    """The examples with `start <= timestamp < end` (a list, or a view of stored examples)."""
    if hasattr(examples, "between"):
        return examples.between(start, end)
    return [e for e in examples if start <= e["timestamp"] < end]
