import json

import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.events import purchase_examples, read_events, read_items, split_by_time
from ecomrec_tf.data.readers import read_dialogues, read_intent_file, write_tfrecord

ITEMS = [
    {
        "item_id": "A",
        "title": "Nike Air Max 90, black",
        "description": "shoe",
        "category": "sneakers",
        "price": 120.0,
    },
    {"item_id": "B", "title": "Sony WH-1000XM5", "description": "", "category": "headphones", "price": 350.0},
    {"item_id": "C", "title": "Lego 42115 Lamborghini", "category": "toys"},
    {"item_id": "D", "title": "Ninja blender", "category": "blenders", "price": 89.99},
]


def jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def items(tmp_path):
    return read_items(jsonl(tmp_path / "items.jsonl", ITEMS))


def test_items_fill_defaults_and_check_prices(items, tmp_path):
    assert items["C"]["description"] == "" and items["C"]["price"] is None
    bad = jsonl(tmp_path / "bad.jsonl", [ITEMS[0], {**ITEMS[1], "price": "cheap"}])
    with pytest.raises(DataError, match="bad.jsonl:2: field 'price' is not a number: 'cheap'"):
        read_items(bad)
    negative = jsonl(tmp_path / "neg.jsonl", [{**ITEMS[1], "price": -1.5}])
    with pytest.raises(DataError, match="neg.jsonl:1: field 'price' must be a finite number >= 0, got -1.5"):
        read_items(negative)
    duplicate = jsonl(tmp_path / "dup.jsonl", [ITEMS[0], ITEMS[0]])
    with pytest.raises(DataError, match="dup.jsonl:2: duplicate item_id 'A'"):
        read_items(duplicate)


def test_unknown_items_duplicates_and_disorder_are_reported_not_fatal(items, tmp_path):
    events = [
        {"user_id": "u1", "item_id": "A", "timestamp": 300, "event": "view"},
        {"user_id": "u1", "item_id": "A", "timestamp": 100, "event": "view", "query": "nike größe 42 👟"},
        {"user_id": "u1", "item_id": "A", "timestamp": 100, "event": "view", "query": "nike größe 42 👟"},
        {"user_id": "u1", "item_id": "ZZZ", "timestamp": 150, "event": "click"},
        {"user_id": "u2", "item_id": "B", "timestamp": "2025-01-01T00:00:00+00:00", "event": "purchase"},
    ]
    read, report = read_events(jsonl(tmp_path / "events.jsonl", events), items)
    assert [(e["user_id"], e["timestamp"]) for e in read] == [("u1", 100), ("u1", 300), ("u2", 1735689600)]
    assert read[0]["query"] == "nike größe 42 👟"  # unicode preserved
    assert report.unknown_items == {"ZZZ": 1} and report.duplicates == 1 and report.out_of_order == 1
    assert "dropped 1 naming 1 unknown items and 1 duplicates" in str(report)


@pytest.mark.parametrize(
    "event, message",
    [
        ({"user_id": "u", "item_id": "A", "event": "view"}, "events.jsonl:2: missing field 'timestamp'"),
        ({"user_id": "u", "item_id": "A", "timestamp": 1, "event": "like"}, "jsonl:2: event must be one of"),
        (
            {"user_id": "u", "item_id": "A", "timestamp": "soon", "event": "view"},
            "events.jsonl:2: field 'timestamp'",
        ),
        ({"item_id": "A", "timestamp": 1, "event": "view"}, "events.jsonl:2: missing field 'user_id'"),
    ],
)
def test_malformed_events_name_the_record(items, tmp_path, event, message):
    good = {"user_id": "u", "item_id": "A", "timestamp": 1, "event": "view"}
    with pytest.raises(DataError, match=message):
        read_events(jsonl(tmp_path / "events.jsonl", [good, event]), items)


def test_purchase_examples_never_see_the_future(items):
    events = [
        {"user_id": "u", "item_id": "B", "timestamp": 10, "event": "view", "query": None},
        {"user_id": "u", "item_id": "B", "timestamp": 11, "event": "click", "query": None},
        {"user_id": "u", "item_id": "A", "timestamp": 20, "event": "view", "query": "nike"},
        {"user_id": "u", "item_id": "A", "timestamp": 21, "event": "click", "query": "nike"},
        {"user_id": "u", "item_id": "A", "timestamp": 22, "event": "cart", "query": "nike"},
        {"user_id": "u", "item_id": "A", "timestamp": 23, "event": "purchase", "query": "nike"},
        {"user_id": "u", "item_id": "C", "timestamp": 30, "event": "view", "query": None},
    ]
    examples = purchase_examples(events, items, catalog_negatives=1, seed=0)
    viewed = [e for e in examples if e["item_id"] in ("A", "B", "C") and e["timestamp"] in (10, 20, 30)]
    assert [(e["item_id"], e["label"], e["history"]) for e in viewed] == [
        ("B", 0, []),  # nothing happened before the first view
        ("A", 1, ["B"]),  # the click on B came before; the purchase of A comes after and is the label
        ("C", 0, ["A", "B"]),  # most recent first
    ]
    negatives = [e for e in examples if e not in viewed]
    assert len(negatives) == 1 and negatives[0]["label"] == 0 and negatives[0]["item_id"] == "D"
    assert negatives[0]["catalog_negative"] and not any(e["catalog_negative"] for e in viewed)
    assert all(not e["catalog_negative"] for e in purchase_examples(events, items))  # off by default
    times = {(e["item_id"], e["event"]): e["timestamp"] for e in events}
    for example in examples:
        for item in example["history"]:
            assert min(t for (i, _), t in times.items() if i == item) < example["timestamp"]


def test_split_by_time_orders_the_splits():
    examples = [{"timestamp": t} for t in range(100)]
    splits = split_by_time(examples, valid_fraction=0.2, test_fraction=0.1)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [70, 20, 10]
    assert max(e["timestamp"] for e in splits["train"]) < min(e["timestamp"] for e in splits["valid"])
    assert max(e["timestamp"] for e in splits["valid"]) < min(e["timestamp"] for e in splits["test"])


def test_tfrecord_round_trip(tmp_path):
    items = read_items(write_tfrecord(ITEMS, tmp_path / "items.tfrecord"))
    assert items["A"]["title"] == "Nike Air Max 90, black" and items["A"]["price"] == pytest.approx(120.0)
    dialogues = [
        {"context": ["hi", "Hello!", "wo ist meine Bestellung? 📦"], "reply": "Let me check.", "intent": "x"},
        {"context": ["cancel it"], "reply": "Which order?"},
    ]
    assert read_dialogues(write_tfrecord(dialogues, tmp_path / "d.tfrecord")) == dialogues
    intents = [{"text": "Größe 42?", "label": "size_fit"}]
    assert read_intent_file(write_tfrecord(intents, tmp_path / "i.tfrecord")) == (["Größe 42?"], ["size_fit"])


def test_corrupt_tfrecord_and_bad_dialogues_are_clear_errors(tmp_path):
    from ecomrec_tf.data.readers import write_tfrecord

    write_tfrecord([{"item_id": "A", "title": "x"}], tmp_path / "no_category.tfrecord")
    with pytest.raises(DataError, match=r"no_category.tfrecord: record 1: missing field 'category'"):
        read_items(tmp_path / "no_category.tfrecord")
    (tmp_path / "broken.tfrecord").write_bytes(b"this is not a tfrecord file at all")
    with pytest.raises(DataError, match="broken.tfrecord: corrupt TFRecord file"):
        read_items(tmp_path / "broken.tfrecord")
    bad = jsonl(tmp_path / "d.jsonl", [{"context": "just a string", "reply": "ok"}])
    with pytest.raises(DataError, match="d.jsonl:1: field 'context' must be a non-empty list of strings"):
        read_dialogues(bad)
