"""Beam batch scoring throughput: every user of a generated shop x its whole catalog, top-10 per user, from a
two-tower SavedModel (`ecomrec_tf.serving.beam`), beside the same work in one Python process.

    python bench/beam.py                      # MiniLM-L6 towers, 1,000 users x 960 items
    python bench/beam.py --encoder tiny --users 300

Scored pairs/s = users x catalog items / wall seconds, from the event log to the top-k lists (events are
replayed per user, users and items embedded by the export's `embed_user` / `embed_item` signatures, exact
dot-product top-k). The baseline is what a user would otherwise write: one `EventState` over the log,
the same SavedModel signatures called in batches of 256, one matrix product and `argsort` per batch of users.
The DirectRunner runs on this machine's cores (`--direct_num_workers`); Dataflow, Flink or Spark run the
same pipeline on many machines. Every number is measured in this run. The model is untrained (speed does
not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

import ecomrec_tf  # noqa: F401
from ecomrec_tf.data.event_state import EventState
from ecomrec_tf.data.events import read_events, read_items
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models import build_purchase_model
from ecomrec_tf.serving.beam import (
    CatalogVectors,
    SavedModelHandler,
    TopK,
    UserRows,
    catalog_row,
    item_counts,
)

K = 10


def in_process(export: Path, items: dict, events: list[dict], now: int, batch_size: int = 256) -> int:
    """The one-process baseline; returns the number of users scored."""
    handler_user = SavedModelHandler(export, "embed_user")
    handler_item = SavedModelHandler(export, "embed_item")
    embed_user, embed_item = handler_user.load_model(), handler_item.load_model()
    state = EventState(items)
    for event in sorted(events, key=lambda e: e["timestamp"]):
        state.apply(event)
    texts = {item_id: item_text(item) for item_id, item in items.items()}
    ids = sorted(items)
    counts = item_counts(events)
    rows = [catalog_row(state, texts, counts, item_id) for item_id in ids]
    position = {item_id: i for i, item_id in enumerate(ids)}
    matrix = np.concatenate(
        [
            np.stack(
                [
                    r.inference["item_vector"]
                    for r in handler_item.run_inference(rows[i : i + batch_size], embed_item)
                ]
            )
            for i in range(0, len(rows), batch_size)
        ]
    )
    users = sorted(state.users)
    scored = 0
    for start in range(0, len(users), batch_size):
        batch = [state.user_request(u, now, texts) for u in users[start : start + batch_size]]
        vectors = np.stack(
            [r.inference["user_vector"] for r in handler_user.run_inference(batch, embed_user)]
        )
        scores = vectors @ matrix.T
        for row, user_scores in zip(batch, scores):
            user_scores[[position[i] for i in row["history_ids"] if i in position]] = -np.inf
            scored += len(np.argsort(-user_scores, kind="stable")[:K]) == K
    return scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DirectRunner workers")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    generate_shop(work / "shop", ShopConfig(users=args.users, seed=0), progress=False)
    items = read_items(work / "shop" / "items.jsonl")
    events, _ = read_events(work / "shop" / "events.jsonl", items)
    now = max(event["timestamp"] for event in events) + 1
    users = len({event["user_id"] for event in events})
    categories = sorted({item["category"] for item in items.values()})
    sizes = {"user": users + 1, "item": len(items) + 1, "category": len(categories) + 1}
    model = build_purchase_model(load_encoder(args.encoder), 64, mode="two_tower", vocabulary_sizes=sizes)
    user_ids = sorted({event["user_id"] for event in events})
    model.set_vocabularies({"user": user_ids, "item": sorted(items), "category": categories})
    export = export_saved_model(model, work / "saved_models" / "purchase")
    pairs = users * len(items)

    results = {}
    for name in ("in-process loop", "beam"):
        start = time.perf_counter()
        if name == "beam":
            options = PipelineOptions(
                direct_num_workers=args.workers,
                direct_running_mode="multi_processing" if args.workers > 1 else "in_memory",
            )
            with beam.Pipeline(options=options) as pipeline:
                log = pipeline | "Events" >> beam.Create(events)
                catalog = (
                    pipeline
                    | "Items" >> beam.Create(sorted(items))
                    | CatalogVectors(export, items, item_counts(events))
                )
                _ = (
                    log
                    | UserRows(items, now)
                    | TopK(export, catalog, k=K)
                    | beam.Map(json.dumps)
                    | beam.io.WriteToText(str(work / "top_k"), file_name_suffix=".jsonl")
                )
        else:
            assert in_process(export, items, events, now) == users
        results[name] = time.perf_counter() - start
    base = results["in-process loop"]
    print(f"{users} users x {len(items)} items = {pairs:,} pairs, top-{K} per user, {args.encoder} towers")
    print(f"{'':<18}{'seconds':>9}{'pairs/s':>12}{'vs loop':>9}")
    for name, seconds in results.items():
        print(f"{name:<18}{seconds:>9.1f}{pairs / seconds:>12,.0f}{base / seconds:>8.2f}x")
    print(f"beam: DirectRunner, {args.workers} worker(s) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
