"""Batch and streaming top-k on Apache Beam (DirectRunner; streaming with TestStream) equal the in-process
computation from the same export: `EventState` requests, `embed_user`/`embed_item`, exact top-k."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream as EventStream  # not a test class
from apache_beam.testing.util import assert_that, equal_to

from ecomrec_tf.data.event_state import EventState
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.serving.beam import (
    CatalogVectors,
    FreshUserRows,
    TopK,
    UserRows,
    WriteEvents,
    item_counts,
    load_catalog,
    save_catalog,
)

T0 = 1_735_689_600
ITEMS = {
    f"SKU-{i}": {"title": f"Acme {name} {i}", "category": name, "price": 10.0 + i, "description": ""}
    for i, name in enumerate(["shoes", "shoes", "kettle", "kettle", "sofa", "sofa", "lamp"])
}
EVENTS = [
    {"user_id": user, "item_id": item, "timestamp": time, "event": kind, "query": None}
    for user, item, time, kind in [
        ("u1", "SKU-0", T0, "view"),
        ("u1", "SKU-0", T0 + 10, "click"),
        ("u2", "SKU-2", T0 + 20, "view"),
        ("u1", "SKU-1", T0 + 30, "view"),
        ("u2", "SKU-2", T0 + 40, "purchase"),
        ("u3", "SKU-4", T0 + 50, "view"),
        ("u1", "SKU-1", T0 + 60, "cart"),
        ("u2", "SKU-6", T0 + 130, "click"),  # a third minute of events
    ]
]
K = 3
TEXTS = {item_id: item_text(item) for item_id, item in ITEMS.items()}


def columns(rows: list[dict], side: str):
    """Rows as the Keras model's `embed_users` / `embed_items` inputs."""
    from ecomrec_tf.models.purchase_model import input_specs, request_tensors

    return request_tensors(rows, input_specs(side=side))


def expected_top_k(model, user: str, now: int, counts: dict) -> list[str]:
    """The in-process answer: an `EventState` over the events to `now`, the Keras model's towers
    (catalog rows with the given item counts), exact top-k without the user's history."""
    state = EventState(ITEMS)
    for event in EVENTS:
        if event["timestamp"] <= now:
            state.apply(event)
    ids = sorted(ITEMS)
    zero = {"item_views": 0, "item_purchases": 0}
    items = [state.item_request(i, TEXTS) | counts.get(i, zero) for i in ids]
    matrix = model.embed_items(columns(items, "item")).numpy()
    (vector,) = model.embed_users(columns([state.user_request(user, now, TEXTS)], "user")).numpy()
    scores = matrix @ vector
    scores[[ids.index(i) for i in state.history(user)]] = -np.inf
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:K]]


@pytest.mark.slow
def test_batch_top_k_equals_the_in_process_answer(tiny_purchase_export):
    model, export = tiny_purchase_export
    now = T0 + 200
    counts = item_counts(EVENTS)
    expected = [(user, expected_top_k(model, user, now, counts), now, K) for user in ("u1", "u2", "u3")]
    assert not {"SKU-0", "SKU-1"} & set(expected[0][1])  # u1's history is left out
    with beam.Pipeline() as pipeline:
        events = pipeline | "Events" >> beam.Create(EVENTS)
        catalog = pipeline | "Items" >> beam.Create(sorted(ITEMS)) | CatalogVectors(export, ITEMS, counts)
        found = (
            events
            | UserRows(ITEMS, now)
            | TopK(export, catalog, k=K)
            | beam.Map(lambda r: (r["user_id"], r["items"], r["time"], len(r["scores"])))
        )
        assert_that(found, equal_to(expected))


@pytest.mark.slow
def test_streaming_top_k_after_every_event_equals_the_batch_answer_then(tiny_purchase_export, tmp_path):
    """Events arrive one at a time (TestStream); after each, the user's fresh top-k equals the in-process
    answer at that event's time; the events are also written, a file per minute, as an event log that
    `read_events` (so `update purchase --events`) reads back whole."""
    from ecomrec_tf.data.events import read_events

    model, export = tiny_purchase_export
    stream = EventStream()
    for event in EVENTS:
        stream = stream.advance_watermark_to(event["timestamp"])
        stream = stream.add_elements([beam.window.TimestampedValue(event, event["timestamp"])])
    stream = stream.advance_watermark_to_infinity()
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    counts = item_counts(EVENTS)  # the catalog's counts as the last batch job left them
    expected = [
        (e["user_id"], e["timestamp"], tuple(expected_top_k(model, e["user_id"], e["timestamp"], counts)))
        for e in EVENTS
    ]
    with beam.Pipeline() as pipeline:  # the nightly job embeds the catalog once
        items = pipeline | "Items" >> beam.Create(sorted(ITEMS))
        _ = (
            items
            | CatalogVectors(export, ITEMS, counts)
            | beam.Map(save_catalog, str(tmp_path / "catalog.npz"))
        )
    with beam.Pipeline(options=options) as pipeline:
        events = pipeline | stream
        catalog = (
            pipeline | "Catalog" >> beam.Create([str(tmp_path / "catalog.npz")]) | beam.Map(load_catalog)
        )
        found = (
            events
            | FreshUserRows(ITEMS)
            | TopK(export, catalog, k=K, batch_size=4, max_batch_duration_secs=1)
            | beam.Map(lambda r: (r["user_id"], r["time"], tuple(r["items"])))
        )
        assert_that(found, equal_to(expected))
        _ = events | WriteEvents(str(tmp_path / "feedback"), window_seconds=60)
    files = sorted(path for path in (tmp_path / "feedback").iterdir() if path.is_file())
    windows = {path.name.rsplit("-", 3)[0] for path in files}  # events-<window start>-<end>-NNNNN-of-NNNNN
    assert len(windows) == 3, windows  # the three minutes with events (T0, T0 + 60, T0 + 130)
    logged = [event for path in files for event in read_events(path, ITEMS)[0]]
    key = lambda e: (e["timestamp"], e["user_id"])  # noqa: E731
    assert sorted(logged, key=key) == sorted(EVENTS, key=key)


def test_item_counts_count_views_and_purchases():
    counts = item_counts(EVENTS)
    assert counts["SKU-2"] == {"item_views": 1, "item_purchases": 1}
    assert counts["SKU-0"] == {"item_views": 1, "item_purchases": 0}
    assert "SKU-5" not in counts


def test_the_handler_batches_rows_with_item_features_into_a_signatures_inputs(tmp_path):
    """A catalog with image vectors: `EventState` rows (what `UserRows` replays) carry each history item's,
    and `SavedModelHandler` pads them (a missing item: NaN) into the signature's `(batch, items, size)`
    input."""
    import tensorflow as tf

    from ecomrec_tf.serving.beam import SavedModelHandler

    items = {
        item_id: {**item, "image_vector": [float(i), 1.0]} for i, (item_id, item) in enumerate(ITEMS.items())
    }
    state = EventState(items)
    for event in EVENTS:
        state.apply(event)
    rows = [state.user_request(user, T0 + 200, TEXTS) for user in ("u1", "u2", "u3")]

    module = tf.Module()  # a SavedModel whose one signature sums the history's image vectors

    @tf.function(input_signature=[tf.TensorSpec([None, None, 2], tf.float32, name="history_image_vector")])
    def image_sums(history_image_vector):
        known = tf.where(tf.math.is_nan(history_image_vector), 0.0, history_image_vector)
        return {"image_sums": tf.reduce_sum(known, [1, 2])}

    module.image_sums = image_sums
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": image_sums})
    handler = SavedModelHandler(tmp_path / "sm")
    results = handler.run_inference(rows, handler.load_model())
    sums = {r.example["user_id"]: float(r.inference["image_sums"]) for r in results}
    assert sums == {"u1": 0.0 + 1 + 1.0 + 1, "u2": 2.0 + 1 + 6.0 + 1, "u3": 0.0}  # u3 only viewed: no history
