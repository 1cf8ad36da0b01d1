"""Purchase examples from users' item and event files, split as users score, and the frozen encoder's
vectors of their texts, cached for training."""

from __future__ import annotations

import dataclasses
import heapq
import math
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from ecomrec_tf.data.event_state import SESSION_GAP
from ecomrec_tf.data.events import (
    EVENT_TYPES,
    EventsReport,
    SortedEvents,
    between,
    check_known,
    in_time_order,
    iter_purchase_examples,
    read_events,
    read_items,
    split_by_time,
)
from ecomrec_tf.data.example_store import StoredExamples
from ecomrec_tf.data.readers import DataError
from ecomrec_tf.data.task_datasets import item_text, purchase_columns
from ecomrec_tf.encoders.sentence_encoder import encode_in_batches

SHUFFLE_BUFFER = 65_536  # examples; stored examples are also read in a shuffled chunk order
MIN_ID_COUNT = 2  # ids seen fewer times in training share the out-of-vocabulary embedding


Examples = list | StoredExamples  # a split: in memory, or on disk (`read_purchase_data(work_dir=...)`)


@dataclasses.dataclass
class PurchaseData:
    """Items, purchase examples by split and what reading the events found.

    A split is a list of example dicts, or `StoredExamples` on disk (the same examples, read back
    one chunk at a time) when `read_purchase_data` was given a `work_dir`. `splits["train"]` may
    hold catalog negatives (`catalog_negative` True, a training device); `scored(split)` is what
    every reported metric uses: real views only. `sessions[split]` holds the same views of the
    valid and test splits, in the same order, with the user's state frozen at each session's first
    view (`events.iter_purchase_examples(session_gap=...)`): what ranking metrics score, as `rank`
    serves a page of candidates with one state of the user.
    """

    items: dict[str, dict]
    splits: dict[str, Examples]
    report: EventsReport
    shop_dir: Path
    sessions: dict[str, Examples] = dataclasses.field(default_factory=dict)

    def scored(self, split: str) -> Examples:
        """The split's real views, without catalog negatives."""
        examples = self.splits[split]
        if isinstance(examples, StoredExamples):
            return examples.scored()
        return [e for e in examples if not e["catalog_negative"]]

    def queries(self) -> set[str]:
        queries = set()
        for examples in self.splits.values():
            if isinstance(examples, StoredExamples):
                queries |= examples.queries()
            else:
                queries |= {e["query"] or "" for e in examples}
        return queries

    def vocabularies(self, split: str = "train") -> dict[str, list[str]]:
        """Ids for the id embeddings: users and items seen at least `MIN_ID_COUNT` times in `split`
        (as the example's user or item, or in a history), and every catalog category."""
        users, items = Counter(), Counter()
        for columns in column_chunks(self.splits[split], self.items):
            users.update(_counts(columns["user_id"]))
            items.update(_counts(columns["item_id"]))
            items.update(_counts(columns["history_ids"][columns["history_ids"] != ""]))
        return {
            "user": sorted(u for u, n in users.items() if n >= MIN_ID_COUNT),
            "item": sorted(i for i, n in items.items() if n >= MIN_ID_COUNT),
            "category": sorted({item["category"] for item in self.items.values()}),
        }


def _counts(values: np.ndarray) -> dict[str, int]:
    unique, counts = np.unique(values.astype(str), return_counts=True)
    return dict(zip(unique.tolist(), counts.tolist()))


def column_chunks(examples: Examples, items: dict[str, dict], history_size: int = 10,
                  size: int = 65_536) -> Iterator[dict[str, np.ndarray]]:  # fmt: skip
    """`task_datasets.purchase_columns` of a split, one chunk at a time."""
    if isinstance(examples, StoredExamples):
        yield from examples.columns()
    else:
        for start in range(0, len(examples), size):
            yield purchase_columns(examples[start : start + size], items, history_size)


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
    work_dir: str | Path | None = None,
) -> PurchaseData:
    """Reads items and events and builds examples (`events.iter_purchase_examples`) as users score them.

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

    With `work_dir`, memory stays bounded whatever the logs' length: events are sorted on disk
    (`events.SortedEvents`) and the splits are `StoredExamples` under `work_dir` (the caller
    deletes it); memory then holds the catalog, one state per user and a day of events.

    Raises:
        DataError: naming the file and line of a bad record, or when the events hold no purchase.
    """
    items = read_items(items_file)
    report = EventsReport()

    def read(path):
        if work_dir is not None:
            return SortedEvents([path], items, work_dir, report, catalog=str(items_file))
        events, part = read_events(path, items)
        report.merge(part)
        check_known(path, part, len(events), str(items_file))
        return events

    def examples(logs, earlier=(), session_gap=None, since=-math.inf) -> Examples:
        negatives = 0 if session_gap else catalog_negatives
        built = iter_purchase_examples(
            _merged(*logs), items, history_size, negatives, seed, _merged(*earlier), session_gap,
            (since, math.inf),
        )  # fmt: skip
        if work_dir is None:
            return list(built)
        return StoredExamples.write(built, tempfile.mkdtemp(prefix="examples-", dir=work_dir), items,
                                    history_size)  # fmt: skip

    sessions = {}
    if history_events:
        earlier = [read(path) for path in history_events]
        scored = read(events_file)
        splits = {"train": examples(earlier), "test": examples([scored], earlier)}
        sessions["test"] = examples([scored], earlier, SESSION_GAP)
    else:
        events = read(events_file)
        train = examples([events])
        if until is not None:
            train = between(train, -math.inf, until)
        later = [read(path) for path in (valid_events, test_events) if path]
        fractions = (
            0.0 if valid_events else valid_fraction,
            0.0 if test_events or valid_events else test_fraction,
        )
        splits = split_by_time(train, *fractions)
        cut = [split for split in ("valid", "test") if splits[split]]
        if cut:
            frozen = examples([events], session_gap=SESSION_GAP, since=splits[cut[0]][0]["timestamp"])
            for split in cut:
                first, last = splits[split][0]["timestamp"], splits[split][-1]["timestamp"]
                sessions[split] = between(frozen, first, last + 1)
        if valid_events:
            splits["valid"] = examples([later[0]], [events])
            sessions["valid"] = examples([later[0]], [events], SESSION_GAP)
        if test_events:
            earlier = [events, later[0]] if valid_events else [events]
            splits["test"] = examples([later[-1]], earlier)
            sessions["test"] = examples([later[-1]], earlier, SESSION_GAP)
    if not any(example["label"] for example in splits["train"]):
        raise DataError(f"{events_file}: no view followed by a purchase: nothing to learn P(purchase) from")
    data = PurchaseData(items, splits, report, Path(items_file).parent, sessions)
    for split, frozen in sessions.items():  # one frozen example per scored view, in the same order
        assert len(frozen) == len(data.scored(split)), split
    return data


def _merged(*logs) -> Iterator[dict]:
    """Events of several logs (lists in any order, or `SortedEvents`) in one time order."""
    ordered = [log if isinstance(log, SortedEvents) else in_time_order(log) for log in logs]
    return heapq.merge(*ordered, key=lambda e: (e["timestamp"], EVENT_TYPES.index(e["event"])))


class VectorCache:
    """The frozen encoder's vector of every item text and query, computed once, and batches of
    `PurchaseModel.core`'s inputs built from them (with the items' image vectors and attributes when
    the model takes them).

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

        def vectors(function, texts, description) -> tf.Tensor:  # made once: every dataset shares them
            return tf.constant(encode_in_batches(function, texts, batch_size, progress, description))

        self.item_vectors = vectors(encode, texts, "encoding items")
        self.item_features = {
            name: tf.constant(matrix)
            for name, matrix in model.item_features.matrices(self.item_ids, items).items()
        }
        self.query_vectors = vectors(encode, self.queries, "encoding queries")
        self.query_intents = None
        if model.intent_model is not None:
            intents = tf.function(model.intent_vectors, reduce_retracing=True)
            self.query_intents = vectors(intents, self.queries, "query intents")

    def dataset(
        self,
        examples: Examples,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        history_size: int = 10,
    ) -> tf.data.Dataset:
        """Batches of `(core inputs, label)` for `PurchaseModel.core`, from examples (a list, or
        `StoredExamples` read one chunk at a time: shuffled by chunk order and a buffer)."""
        if isinstance(examples, StoredExamples):
            first = self._rows(next(examples.columns()))
            signature = tf.nest.map_structure(
                lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.string if a.dtype == object else a.dtype),
                first,
            )
            rng = np.random.default_rng(seed)

            def rows():  # called once per epoch: a new chunk order each time
                for columns in examples.columns(rng if shuffle else None):
                    yield self._rows(columns)

            dataset = tf.data.Dataset.from_generator(rows, output_signature=signature).unbatch()
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(examples)))
        else:
            dataset = tf.data.Dataset.from_tensor_slices(
                self._rows(purchase_columns(examples, self.items, history_size))
            )
        if shuffle:
            buffer = len(examples) if isinstance(examples, list) else min(len(examples), SHUFFLE_BUFFER)
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        item_vectors, query_vectors, intents = self.item_vectors, self.query_vectors, self.query_intents
        item_features = self.item_features
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
            for name, matrix in item_features.items():
                features[name] = tf.gather(matrix, indices["item"])
                features[f"history_{name}"] = tf.gather(matrix, tf.maximum(indices["history"], 0))
            return features, label

        return dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    def _rows(self, columns: dict[str, np.ndarray]) -> tuple:
        """`((vector rows, inputs passed as they are), label)` of `purchase_columns`."""
        rows = np.vectorize(lambda i: self.item_row.get(i, -1), otypes=[np.int32])
        indices = {
            "history": rows(columns["history_ids"]),
            "item": rows(columns["item_id"]),
            "query": np.asarray([self.query_row[q] for q in columns["query"]], np.int32),
        }
        passed = {name: columns[name] for name in self.inputs if name in columns and name not in indices}
        return (indices, passed), columns["label"]
