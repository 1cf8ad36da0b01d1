"""Batch and streaming scoring on Apache Beam, with `RunInference` over the package's SavedModels.

`pip install ".[beam]"`. The same transforms run on the DirectRunner (tests, a laptop) and on Dataflow,
Flink or Spark (`--runner DataflowRunner|FlinkRunner|SparkRunner` and that runner's options); Beam
shards the work, the package only says what to compute:

- `CatalogVectors`: item ids -> the two-tower export's `embed_item` vectors, gathered into one side
  input (a catalog of a few million items fits a worker's memory as float32); `save_catalog` writes it
  for the streaming job, which reads it with `load_catalog` instead of embedding the catalog again.
- `UserRows`: an event log -> one `embed_user` request row per user, by replaying the user's events,
  grouped by key, into an `EventState` of that user alone (histories, counts, recency; the same code as
  training and serving, so features mean the same thing everywhere).
- `FreshUserRows`: the streaming form: events in, the user's `EventState` kept in Beam's per-key state,
  a fresh request row out after every event.
- `WriteEvents`: the stream's events as event-log files for the next `update purchase` (the feedback loop).
- `TopK`: user rows -> `RunInference(embed_user)` -> the k best catalog items by dot product (the
  model's cosine), the user's own history left out.

`SavedModelHandler` is RunInference's model handler for our exports: Beam's own `TFModelHandlerTensor`
loads with `tf.keras.models.load_model`, which under Keras 3 reads only `.keras` files, and our signatures
take named inputs; this one loads the SavedModel with `tf.saved_model.load` (as TF Serving does) and
batches request rows into a signature's inputs (`models.purchase_model.request_tensors`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

try:
    import apache_beam as beam
except ImportError as error:  # the core package stays lean: Beam is the [beam] extra
    raise ImportError(
        'ecomrec_tf.serving.beam needs Apache Beam: pip install "ecomrec_tf[beam]" (or ".[beam]" in a clone)'
    ) from error
from apache_beam.coders import PickleCoder
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from ecomrec_tf.data.event_state import ITEM_FEATURES, EventState
from ecomrec_tf.data.events import EVENT_TYPES
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.models.purchase_model import request_tensors


class SavedModelHandler(ModelHandler[dict, PredictionResult, object]):
    """`RunInference` over one signature of an exported SavedModel: examples are request rows
    (`{input name: value}`, e.g. `EventState.user_request`), inferences their output rows
    (`{output name: numpy value}`).

    Args:
        path: a SavedModel version folder (`saved_models/purchase/3`).
        signature: the signature to run (`embed_user`, `embed_item`, `rank`, `serving_default`, ...).
        **batching: `ModelHandler`'s batching options (`min_batch_size`, `max_batch_size`,
            `max_batch_duration_secs` for streaming).
    """

    def __init__(self, path: str | Path, signature: str = "serving_default", **batching):
        super().__init__(**batching)
        self.path, self.signature = str(path), signature

    def load_model(self):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the exports' tokenizer ops)

        loaded = tf.saved_model.load(self.path)
        if self.signature not in loaded.signatures:
            raise ValueError(f"{self.path} has no signature {self.signature!r}: {sorted(loaded.signatures)}")
        function = loaded.signatures[self.signature]
        function._loaded = loaded  # keeps the variables alive with the function
        return function

    def run_inference(self, batch: Sequence[dict], model, inference_args=None) -> Iterable[PredictionResult]:
        inputs = request_tensors(batch, model.structured_input_signature[1])
        outputs = {name: value.numpy() for name, value in model(**inputs).items()}
        return [
            PredictionResult(row, {name: value[i] for name, value in outputs.items()}, self.path)
            for i, row in enumerate(batch)
        ]

    def get_metrics_namespace(self) -> str:
        return "ecomrec_tf"


def _time_order(event: dict):
    return event["timestamp"], EVENT_TYPES.index(event["event"])


class UserRows(beam.PTransform):
    """Events -> `(user_id, embed_user request row at now)`, one per user: each user's events, grouped
    by key and replayed in time order into an `EventState` of that user alone.

    Args:
        items: the catalog by item id (`data.events.read_items`): categories, prices, texts.
        now: the Unix time the rows describe (idle time is measured to it); later events are left out.
        history_size: items per history (the model's training value, `config.json`'s `history_size`).
    """

    def __init__(self, items: dict[str, dict], now: int, history_size: int = 10):
        super().__init__()
        self.items, self.now, self.history_size = items, now, history_size

    def expand(self, events):
        items, now, size = self.items, self.now, self.history_size
        texts = {item_id: item_text(item) for item_id, item in items.items()}
        features = ItemFeatures.infer(items)  # once, not per user

        def row(user_events):
            user_id, events = user_events
            state = EventState(items, size, features)
            for event in sorted(events, key=_time_order):
                state.apply(event)
            return user_id, state.user_request(user_id, now, texts) | {"now": now}

        return (
            events
            | "Before now" >> beam.Filter(lambda event: event["timestamp"] <= now)
            | "By user" >> beam.Map(lambda event: (event["user_id"], event))
            | "Group" >> beam.GroupByKey()
            | "Replay" >> beam.Map(row)
        )


class _FreshRow(beam.DoFn):
    """Keeps one user's `EventState` entry (its `_User`: counts, recent views, history) in per-key
    state; the catalog, which every worker holds, is not stored with it."""

    STATE = ReadModifyWriteStateSpec("user", PickleCoder())

    def __init__(self, items: dict[str, dict], history_size: int):
        self.items, self.history_size = items, history_size

    def setup(self):
        self.texts = {item_id: item_text(item) for item_id, item in self.items.items()}
        self.features = ItemFeatures.infer(self.items)  # once per worker, not per event

    def process(self, keyed, stored=beam.DoFn.StateParam(STATE)):  # noqa: B008  (Beam's state API)
        user_id, event = keyed
        state = EventState(self.items, self.history_size, self.features)
        if (user := stored.read()) is not None:
            state.users[user_id] = user
        state.apply(event)
        stored.write(state.users[user_id])
        now = int(event["timestamp"])
        yield user_id, state.user_request(user_id, now, self.texts) | {"now": now}


class FreshUserRows(beam.PTransform):
    """A (streaming) event stream -> `(user_id, embed_user request row)` after every event, the
    user's `EventState` kept in Beam's per-key state, so a row always reflects every event so far
    (in event order within a key, as a runner delivers them)."""

    def __init__(self, items: dict[str, dict], history_size: int = 10):
        super().__init__()
        self.items, self.history_size = items, history_size

    def expand(self, events):
        return (
            events
            | "By user" >> beam.Map(lambda event: (event["user_id"], event))
            | "Keep state" >> beam.ParDo(_FreshRow(self.items, self.history_size))
        )


class CatalogVectors(beam.PTransform):
    """Item ids -> one `{"ids", "matrix": unit vectors (items, dim), "position": {id: row}}` value from
    the export's `embed_item`, for `beam.pvalue.AsSingleton`. `counts`: optional
    `{item_id: {"item_views", "item_purchases"}}` (the catalog's counts at scoring time; 0 without)."""

    def __init__(self, export: str | Path, items: dict[str, dict], counts=None, batch_size: int = 256):
        super().__init__()
        self.export, self.items, self.counts, self.batch_size = str(export), items, counts or {}, batch_size

    def expand(self, item_ids):
        items, counts = self.items, self.counts
        texts = {item_id: item_text(item) for item_id, item in items.items()}
        state = EventState(items)

        def row(item_id):
            return catalog_row(state, texts, counts, item_id)

        def matrix(results):
            results = sorted(results, key=lambda result: result.example["item_id"])
            ids = [result.example["item_id"] for result in results]
            vectors = np.stack([result.inference["item_vector"] for result in results]).astype(np.float32)
            return {"ids": ids, "matrix": vectors, "position": {item_id: i for i, item_id in enumerate(ids)}}

        handler = SavedModelHandler(self.export, "embed_item", max_batch_size=self.batch_size)
        return (
            item_ids
            | "Item rows" >> beam.Map(row)
            | "embed_item" >> RunInference(handler)
            | "Gather" >> beam.combiners.ToList()
            | "Matrix" >> beam.Map(matrix)
        )


class TopK(beam.PTransform):
    """`(user_id, embed_user row)` -> `{"user_id", "time", "items": [...], "scores": [...]}` (`time`: the
    row's `now`): the k best
    catalog items by the two-tower model's dot product, leaving out the user's history.

    Args:
        export: the purchase model's two-tower SavedModel version folder.
        catalog: `CatalogVectors`' output.
        k: items per user.
        batch_size: users per `embed_user` call (streaming also flushes a batch after
            `max_batch_duration_secs`).
    """

    def __init__(self, export, catalog, k: int = 10, batch_size: int = 256, max_batch_duration_secs=None):
        super().__init__()
        self.export, self.catalog, self.k = str(export), catalog, k
        self.batching = {"max_batch_size": batch_size}
        if max_batch_duration_secs is not None:
            self.batching["max_batch_duration_secs"] = max_batch_duration_secs

    def expand(self, user_rows):
        k = self.k

        def best(result: PredictionResult, catalog):
            row = result.example
            scores = catalog["matrix"] @ result.inference["user_vector"]
            seen = [catalog["position"][i] for i in row["history_ids"] if i in catalog["position"]]
            scores[seen] = -np.inf
            order = np.argsort(-scores, kind="stable")[: min(k, len(scores) - len(seen))]
            return {
                "user_id": row["user_id"],
                "time": row["now"],
                "items": [catalog["ids"][i] for i in order],
                "scores": [round(float(scores[i]), 6) for i in order],
            }

        handler = SavedModelHandler(self.export, "embed_user", **self.batching)
        return (
            user_rows
            | "Rows" >> beam.Values()
            | "embed_user" >> RunInference(handler)
            | "Best" >> beam.Map(best, beam.pvalue.AsSingleton(self.catalog))
        )


class WriteEvents(beam.PTransform):
    """Events -> JSONL files under `folder`, one per window of `window_seconds` of event time, in the
    events format `read_events` reads: the stream's log, whose views and purchases are the labelled
    examples of the next `ecomrec-tf update purchase --events` run (concatenate the files, or pass the
    newest). Works on bounded and unbounded inputs (files are written as windows close)."""

    def __init__(self, folder: str, window_seconds: int = 3600):
        super().__init__()
        self.folder, self.window_seconds = folder, window_seconds

    def expand(self, events):
        from apache_beam.io import fileio
        from apache_beam.transforms.window import FixedWindows

        return (
            events
            | "Event time" >> beam.Map(lambda e: beam.window.TimestampedValue(e, e["timestamp"]))
            | "Windows" >> beam.WindowInto(FixedWindows(self.window_seconds))
            | "JSON" >> beam.Map(to_json_line)
            | "Files"
            >> fileio.WriteToFiles(
                self.folder,
                file_naming=fileio.default_file_naming("events", ".jsonl"),
                shards=1,
            )
        )


def catalog_row(state: EventState, texts: dict[str, str], counts: dict, item_id: str) -> dict:
    """An `embed_item` row of a catalog item: no user (category counts 0), the item's counts from
    `counts` (`item_counts`; 0 without)."""
    found = counts.get(item_id, {})
    return state.item_request(item_id, texts) | {name: float(found.get(name, 0)) for name in ITEM_FEATURES}


def save_catalog(catalog: dict, path: str) -> str:
    """Writes `CatalogVectors`' value to `path` (`.npz`: ids and matrix), for the streaming job: the
    nightly batch job embeds the catalog once, the stream reads it (`load_catalog`) as its side input."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as file:  # local paths, gs://, s3://, hdfs:// alike
        np.savez(file, ids=np.array(catalog["ids"], dtype=object), matrix=catalog["matrix"])
    return path


def load_catalog(path: str) -> dict:
    """`save_catalog`'s file as `CatalogVectors`' value."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as file:
        saved = np.load(file, allow_pickle=True)
        ids = [str(item_id) for item_id in saved["ids"]]
        return {
            "ids": ids,
            "matrix": saved["matrix"],
            "position": {item_id: i for i, item_id in enumerate(ids)},
        }


def item_counts(events: Iterable[dict]) -> dict[str, dict[str, int]]:
    """`{item_id: {"item_views", "item_purchases"}}` over `events` (for `CatalogVectors`)."""
    counts: dict[str, dict[str, int]] = {}
    for event in events:
        kind = {"view": "item_views", "purchase": "item_purchases"}.get(event["event"])
        if kind:
            found = counts.setdefault(event["item_id"], {name: 0 for name in ITEM_FEATURES})
            found[kind] += 1
    return counts


def to_json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)
