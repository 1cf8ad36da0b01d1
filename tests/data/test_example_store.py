"""Event logs beyond memory: sorted on disk, examples streamed and stored, the same as in memory."""

import json
import math

import numpy as np
import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.event_state import LABEL_WINDOW
from ecomrec_tf.data.events import SortedEvents, iter_purchase_examples, read_events, read_items
from ecomrec_tf.data.example_store import StoredExamples
from ecomrec_tf.data.purchase_data import column_chunks, read_purchase_data
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.data.task_datasets import purchase_columns


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    generate_shop(out, ShopConfig(users=60, items_per_category=5), progress=False)
    return out


def same(a: dict, b: dict) -> bool:
    """Equal examples (features to float32 precision, NaN equal to NaN)."""
    features = [a["features"][k] for k in a["features"]], [b["features"][k] for k in a["features"]]
    rest = {k: v for k, v in a.items() if k != "features"}, {k: v for k, v in b.items() if k != "features"}
    return rest[0] == rest[1] and np.allclose(*features, rtol=1e-6, equal_nan=True)


def test_sorted_events_spill_runs_and_merge_them_in_time_order(shop, tmp_path):
    items = read_items(shop / "items.jsonl")
    lines = (shop / "events.jsonl").read_text().splitlines(keepends=True)
    log = tmp_path / "events.jsonl"
    log.write_text("".join(lines + lines[:7]))  # 7 exact duplicates, far from their originals
    events = SortedEvents([log], items, tmp_path, run_size=100)
    assert len(events.runs) > 5  # the log was sorted in many runs on disk
    in_memory, report = read_events(log, items)
    key = lambda e: (e["timestamp"], ("view", "click", "cart", "purchase").index(e["event"]), e["user_id"])  # noqa: E731
    assert list(events) == sorted(in_memory, key=lambda e: (*key(e), e["item_id"]))
    assert list(events) == list(events)  # read again, the same
    assert (events.report.events, events.report.duplicates) == (report.events, report.duplicates) == (
        len(lines), 7)  # fmt: skip
    events.close()
    assert not events.dir.exists()


def test_sorted_events_name_a_log_of_unknown_items(shop, tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"user_id": "u", "item_id": "nope", "timestamp": 1, "event": "view"}) + "\n")
    with pytest.raises(DataError, match=r"events.jsonl: all 1 events name items not in items.jsonl"):
        SortedEvents([log], read_items(shop / "items.jsonl"), tmp_path, catalog="items.jsonl")


def test_examples_stream_out_a_day_after_their_view(shop):
    items = read_items(shop / "items.jsonl")
    item = sorted(items)[0]

    def log():
        for day in range(10):
            yield {"user_id": "u", "item_id": item, "timestamp": day * 2 * LABEL_WINDOW, "event": "view",
                   "query": None}  # fmt: skip
        raise AssertionError("read to the end")

    examples = iter_purchase_examples(log(), items)
    first = next(examples)  # before the log ends: the first view's day is over once the second comes
    assert first["timestamp"] == 0 and first["label"] == 0


@pytest.mark.parametrize("files", ["one log", "later logs", "history logs"])
def test_on_disk_splits_equal_the_in_memory_ones(shop, tmp_path, files):
    items, events = shop / "items.jsonl", shop / "events.jsonl"
    if files == "one log":
        args, kwargs = (items, events), {"catalog_negatives": 2, "seed": 3}
    else:  # the same log cut in three by time
        rows = sorted(map(json.loads, events.read_text().splitlines()), key=lambda e: e["timestamp"])
        parts = [tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")]
        for part, rows_part in zip(parts, np.array_split(np.array(rows, dtype=object), 3)):
            part.write_text("".join(json.dumps(r) + "\n" for r in rows_part))
        if files == "later logs":
            args, kwargs = (items, *parts), {}
        else:
            args, kwargs = (items, parts[2]), {"history_events": parts[:2]}
    in_memory = read_purchase_data(*args, **kwargs)
    on_disk = read_purchase_data(*args, **kwargs, work_dir=tmp_path)
    assert isinstance(on_disk.splits["train"], StoredExamples)
    assert str(on_disk.report) == str(in_memory.report)
    for kind in ("splits", "sessions"):
        memory, disk = getattr(in_memory, kind), getattr(on_disk, kind)
        assert set(memory) == set(disk) and memory
        for split in memory:
            assert len(disk[split]) == len(memory[split]) > 0
            assert all(same(a, b) for a, b in zip(memory[split], disk[split], strict=True)), (kind, split)
    assert on_disk.vocabularies() == in_memory.vocabularies()
    assert on_disk.queries() == in_memory.queries()
    for split in in_memory.splits:
        assert len(on_disk.scored(split)) == len(in_memory.scored(split))


def test_stored_columns_are_purchase_columns_and_views_filter(shop, tmp_path):
    items = read_items(shop / "items.jsonl")
    events, _ = read_events(shop / "events.jsonl", items)
    examples = list(iter_purchase_examples(sorted(events, key=lambda e: e["timestamp"]), items))
    stored = StoredExamples.write(iter(examples), tmp_path / "store", items, history_size=10)
    assert len(stored) == len(examples) and same(stored[-1], examples[-1]) and same(stored[5], examples[5])
    expected = purchase_columns(examples, items)
    got = {name: np.concatenate([c[name] for c in stored.columns()]) for name in expected}
    width = expected["history_ids"].shape[1]
    assert (got["history_ids"][:, width:] == "").all()  # as wide as history_size, "" padded
    for name, values in expected.items():
        values_got = got[name][:, :width] if values.ndim == 2 else got[name]
        if values.dtype == object:
            assert (values_got == values).all(), name
        else:
            np.testing.assert_allclose(values_got, values, rtol=1e-6, err_msg=name)
    middle = examples[len(examples) // 2]["timestamp"]
    later = stored.between(middle, math.inf)
    assert len(later) == sum(e["timestamp"] >= middle for e in examples)
    assert all(e["timestamp"] >= middle for e in later)
    assert len(list(column_chunks(examples, items, size=100))) == math.ceil(len(examples) / 100)
