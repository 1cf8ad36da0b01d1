import json

import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.purchase_data import read_purchase_data

ITEMS = [{"item_id": i, "title": f"item {i}", "category": c} for i, c in zip("ABCDEF", "xxyyzz")]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def views(user, items, start, bought=()):
    out = []
    for k, item in enumerate(items):
        out.append({"user_id": user, "item_id": item, "timestamp": start + 10 * k, "event": "view"})
        if item in bought:
            out.append(
                {"user_id": user, "item_id": item, "timestamp": start + 10 * k + 1, "event": "purchase"}
            )
    return out


@pytest.fixture()
def files(tmp_path):
    train = views("u", "ABCD", 0, bought="AC") + views("v", "ABEF", 5, bought="B")
    valid = views("u", "EF", 1000, bought="E")
    test = views("u", "AB", 2000, bought="B") + views("new", "F", 2005)
    return {
        "items": write(tmp_path / "items.jsonl", ITEMS),
        "train": write(tmp_path / "train.jsonl", train),
        "valid": write(tmp_path / "valid.jsonl", valid),
        "test": write(tmp_path / "test.jsonl", test),
    }


def test_later_logs_are_scored_whole_with_counts_from_everything_before(files):
    data = read_purchase_data(files["items"], files["train"], files["valid"], files["test"])
    assert [len(data.splits[s]) for s in ("train", "valid", "test")] == [8, 2, 3]
    first_test = data.splits["test"][0]
    assert first_test["user_id"] == "u" and first_test["item_id"] == "A"
    assert first_test["features"]["user_views"] == 6  # 4 train + 2 valid views
    assert first_test["features"]["user_purchases"] == 3
    assert first_test["features"]["item_views"] == 2  # u and v in train
    assert first_test["history"] == ["E", "C", "A"]  # bought, most recent first


def test_history_events_make_the_evaluation_protocol(files):
    data = read_purchase_data(files["items"], files["test"], history_events=[files["train"], files["valid"]])
    assert len(data.splits["train"]) == 10 and len(data.splits["test"]) == 3
    assert data.splits["test"][0]["features"]["user_views"] == 6


def test_one_file_is_split_by_time(files):
    data = read_purchase_data(files["items"], files["train"], valid_fraction=0.25, test_fraction=0.25)
    train, valid, test = (data.splits[s] for s in ("train", "valid", "test"))
    assert train and valid and test
    assert max(e["timestamp"] for e in train) < min(e["timestamp"] for e in valid)
    assert max(e["timestamp"] for e in valid) < min(e["timestamp"] for e in test)


def test_catalog_negatives_are_flagged_and_never_scored(files):
    data = read_purchase_data(files["items"], files["train"], files["valid"], catalog_negatives=3, seed=1)
    assert any(e["catalog_negative"] for e in data.splits["train"])
    for split in data.splits:
        assert all(not e["catalog_negative"] for e in data.scored(split))
        assert len(data.scored(split)) == sum(1 for e in data.splits[split] if not e["catalog_negative"])


def test_vocabularies_keep_ids_seen_twice(files):
    vocabulary = read_purchase_data(files["items"], files["train"], files["valid"]).vocabularies()
    assert vocabulary["user"] == ["u", "v"]
    assert vocabulary["item"] == ["A", "B", "C"]  # viewed twice, or viewed and in a history
    assert vocabulary["category"] == ["x", "y", "z"]


def test_no_purchase_is_an_error_naming_the_file(files, tmp_path):
    only_views = write(tmp_path / "views.jsonl", views("u", "AB", 0))
    with pytest.raises(DataError, match="views.jsonl: no view followed by a purchase"):
        read_purchase_data(files["items"], only_views)


@pytest.mark.parametrize("later_files", [True, False])
def test_every_scored_view_has_a_session_frozen_twin(files, later_files):
    extra = (files["valid"], files["test"]) if later_files else ()
    data = read_purchase_data(files["items"], files["train"], *extra, valid_fraction=0.25, test_fraction=0.25)
    for split in ("valid", "test"):
        twins = data.sessions[split]
        assert [(e["user_id"], e["item_id"], e["label"]) for e in twins] == [
            (e["user_id"], e["item_id"], e["label"]) for e in data.scored(split)
        ]
