"""Purchase examples from users' item and event files, split as users score, and the frozen encoder's
vectors of their texts, cached for training."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import tensorflow as tf

from ecomrec_tf.data.event_state import SESSION_GAP
from ecomrec_tf.data.events import EventsReport, purchase_examples, read_events, read_items, split_by_time
from ecomrec_tf.data.readers import DataError
from ecomrec_tf.data.task_datasets import item_text, purchase_columns
from ecomrec_tf.encoders.sentence_encoder import encode_in_batches

MIN_ID_COUNT = 2  # ids seen fewer times in training share the out-of-vocabulary embedding


@dataclasses.dataclass
class PurchaseData:
    """Items, purchase examples by split and what reading the events found.

    `splits["train"]` may hold catalog negatives (`catalog_negative` True, a training device);
    `scored(split)` is what every reported metric uses: real views only. `sessions[split]` holds
    the same views of the valid and test splits, in the same order, with the user's state frozen at
    each session's first view (`events.purchase_examples(session_gap=...)`): what ranking metrics
    score, as `rank` serves a page of candidates with one state of the user.
    """

    items: dict[str, dict]
    splits: dict[str, list[dict]]
    report: EventsReport
    shop_dir: Path
    sessions: dict[str, list[dict]] = dataclasses.field(default_factory=dict)

    def scored(self, split: str) -> list[dict]:
        """The split's real views, without catalog negatives."""
        return [e for e in self.splits[split] if not e["catalog_negative"]]

    def queries(self) -> set[str]:
        return {e["query"] or "" for examples in self.splits.values() for e in examples}

    def vocabularies(self, split: str = "train") -> dict[str, list[str]]:
        """Ids for the id embeddings: users and items seen at least `MIN_ID_COUNT` times in `split`
        (as the example's user or item, or in a history), and every catalog category."""
        users, items = Counter(), Counter()
        for example in self.splits[split]:
            users[example["user_id"]] += 1
            items[example["item_id"]] += 1
            items.update(example["history"])
        return {
            "user": sorted(u for u, n in users.items() if n >= MIN_ID_COUNT),
            "item": sorted(i for i, n in items.items() if n >= MIN_ID_COUNT),
            "category": sorted({item["category"] for item in self.items.values()}),
        }


def read_purchase_data(
    items_file: str | Path,
    events_file: str | Path,
    valid_events: str | Path | None = None,
    test_events: str | Path | None = None,
    history_events: list[str | Path] | tuple = (),
    history_size: int = 10,
    catalog_negatives: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    until: int | None = None,
) -> PurchaseData:
    """Reads items and events and builds examples (`events.purchase_examples`) as users score them.

    `events_file` gives the training examples. `valid_events` and `test_events`, when given, are
    later logs: every view in them is an example, with histories and counts from all events before
    it (the training log, then the validation log, then the log's own earlier events). A split not
    given as a file is cut from the end of the one before it by time (`valid_fraction`,
    `test_fraction`). `history_events` are logs from before `events_file` (for evaluating a trained
    model: `events_file` is then the log to score, given whole as the test split, and
    `history_events` also give the baselines their training examples).

    `catalog_negatives` random never-touched items per purchase are added to every split, flagged,
    for training and for metrics reported apart. With `until` (Unix seconds), only training examples
    before it are kept: a model trained so leaves the later period to `update_purchase`.

    Raises:
        DataError: naming the file and line of a bad record, or when the events hold no purchase.
    """
    items = read_items(items_file)
    report = EventsReport()

    def read(path) -> list[dict]:
        events, part = read_events(path, items)
        report.merge(part)
        if not events and part.unknown_items:
            unknown = sum(part.unknown_items.values())
            examples = ", ".join(repr(i) for i, _ in part.unknown_items.most_common(3))
            raise DataError(
                f"{path}: all {unknown} events name items not in {items_file} (e.g. {examples}); "
                "are the events and items from the same shop?"
            )
        return events

    def examples(events, earlier=(), session_gap=None) -> list[dict]:
        negatives = 0 if session_gap else catalog_negatives
        return purchase_examples(events, items, history_size, negatives, seed, earlier, session_gap)

    sessions = {}
    if history_events:
        earlier = [event for path in history_events for event in read(path)]
        scored = read(events_file)
        splits = {"train": examples(earlier), "test": examples(scored, earlier)}
        sessions["test"] = examples(scored, earlier, SESSION_GAP)
    else:
        events = read(events_file)
        train = examples(events)
        if until is not None:
            train = [example for example in train if example["timestamp"] < until]
        later = [read(path) for path in (valid_events, test_events) if path]
        fractions = (
            0.0 if valid_events else valid_fraction,
            0.0 if test_events or valid_events else test_fraction,
        )
        splits = split_by_time(train, *fractions)
        cut = [split for split in ("valid", "test") if splits[split]]
        if cut:
            frozen = examples(events, session_gap=SESSION_GAP)
            for split in cut:
                first, last = splits[split][0]["timestamp"], splits[split][-1]["timestamp"]
                sessions[split] = [e for e in frozen if first <= e["timestamp"] <= last]
        if valid_events:
            splits["valid"] = examples(later[0], events)
            sessions["valid"] = examples(later[0], events, SESSION_GAP)
        if test_events:
            earlier = events + (later[0] if valid_events else [])
            splits["test"], sessions["test"] = (
                examples(later[-1], earlier),
                examples(later[-1], earlier, SESSION_GAP),
            )
    if not any(example["label"] for example in splits["train"]):
        raise DataError(f"{events_file}: no view followed by a purchase: nothing to learn P(purchase) from")
    data = PurchaseData(items, splits, report, Path(items_file).parent, sessions)
    for split, frozen in sessions.items():  # one frozen example per scored view, in the same order
        keys = [(e["user_id"], e["item_id"], e["timestamp"]) for e in data.scored(split)]
        assert keys == [(e["user_id"], e["item_id"], e["timestamp"]) for e in frozen], split
    return data


class VectorCache:
    """The frozen encoder's vector of every item text and query, computed once, and batches of
    `PurchaseModel.core`'s inputs built from them.

    Args:
        model: the `PurchaseModel` whose encoder (and intent model) to run.
        items: items by id (`data.read_items`).
        queries: the queries to encode ("" is always added: no query).
        batch_size: texts per encoder call.
        progress: show a tqdm bar.
    """

    def __init__(self, model, items: dict[str, dict], queries, batch_size: int = 128, progress: bool = True):
        self.items = items
        self.inputs = list(model.core.input)
        self.item_ids = sorted(items)
        self.item_row = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.queries = sorted({""} | {q or "" for q in queries})
        self.query_row = {query: i for i, query in enumerate(self.queries)}
        encode = tf.function(lambda texts: model.encoder(texts)[0], reduce_retracing=True)
        texts = [item_text(items[i]) for i in self.item_ids]
        self.item_vectors = encode_in_batches(encode, texts, batch_size, progress, "encoding items")
        self.query_vectors = encode_in_batches(encode, self.queries, batch_size, progress, "encoding queries")
        self.query_intents = None
        if model.intent_model is not None:
            intents = tf.function(model.intent_vectors, reduce_retracing=True)
            self.query_intents = encode_in_batches(
                intents, self.queries, batch_size, progress, "query intents"
            )

    def dataset(
        self,
        examples: list[dict],
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        history_size: int = 10,
    ) -> tf.data.Dataset:
        """Batches of `(core inputs, label)` for `PurchaseModel.core`, from examples."""
        columns = purchase_columns(examples, self.items, history_size)
        rows = np.vectorize(lambda i: self.item_row.get(i, -1), otypes=[np.int32])
        indices = {
            "history": rows(columns["history_ids"]),
            "item": rows(columns["item_id"]),
            "query": np.asarray([self.query_row[q] for q in columns["query"]], np.int32),
        }
        passed = {name: columns[name] for name in self.inputs if name in columns and name not in indices}
        dataset = tf.data.Dataset.from_tensor_slices(((indices, passed), columns["label"]))
        if shuffle:
            dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        item_vectors, query_vectors = tf.constant(self.item_vectors), tf.constant(self.query_vectors)
        intents = None if self.query_intents is None else tf.constant(self.query_intents)
        no_query = self.query_row[""]

        def gather(x, label):
            indices, passed = x
            features = {
                **passed,
                "history": tf.gather(item_vectors, tf.maximum(indices["history"], 0)),
                "history_mask": indices["history"] >= 0,
                "item": tf.gather(item_vectors, indices["item"]),
                "query": tf.gather(query_vectors, indices["query"]),
                "has_query": indices["query"] != no_query,
            }
            if intents is not None:
                features["query_intent"] = tf.gather(intents, indices["query"])
            return features, label

        return dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
