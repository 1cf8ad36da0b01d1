"""Every bad file a user has sent us, through the CLI: one line naming file, line and field, exit 2.

docs/data.md's "Bad input" table lists the same cases with the same messages (checked below).
"""

import json
from pathlib import Path

import pytest

from ecomrec_tf.cli import main

ITEM = {"item_id": "A", "title": "Nike Air Max 90", "category": "sneakers", "price": 120.0}
EVENT = {"user_id": "u1", "item_id": "A", "timestamp": 1_700_000_000, "event": "view"}
DIALOGUE = {"context": ["where is my order"], "reply": "It ships today."}


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


# (case, file name, content, command given the file, the message's tail after "ecomrec-tf: error: <dir>/")
CASES = [
    ("item description a number", "items.jsonl", jsonl({**ITEM, "description": 5}), "items",
     "items.jsonl:1: field 'description' must be a string, got int"),
    ("item description a list", "items.jsonl", jsonl({**ITEM, "description": ["a", "b"]}), "items",
     "items.jsonl:1: field 'description' must be a string, got list"),
    ("price Infinity", "items.jsonl", b'{"item_id": "A", "title": "t", "category": "c", "price": Infinity}\n',
     "items", "items.jsonl:1: Infinity is not a finite number"),
    ("price 1e400", "items.jsonl", b'{"item_id": "A", "title": "t", "category": "c", "price": 1e400}\n',
     "items", "items.jsonl:1: 1e400 is not a finite number"),
    ("image vector with a string in it", "items.jsonl", jsonl({**ITEM, "image_vector": [0.5, "red"]}),
     "items", "items.jsonl:1: field 'image_vector' must be a list of numbers"),
    ("image vectors of two lengths", "items.jsonl",
     jsonl({**ITEM, "image_vector": [0.5, 1.0]}, {**ITEM, "item_id": "B", "image_vector": [1.0, 2.0, 3.0]}),
     "items", "items.jsonl:2: field 'image_vector' has 3 values, earlier items' have 2; compute every item's "
     "with one image model"),
    ("attribute a list", "items.jsonl", jsonl({**ITEM, "attributes": {"size": [1, 2]}}), "items",
     "items.jsonl:1: attribute 'size' must be a number or a string, got [1, 2]"),
    ("price inf in a CSV", "items.csv", b"item_id,title,category,price\nA,t,c,inf\n", "items",
     "items.csv:2: field 'price' must be a finite number >= 0, got inf"),
    ("Latin-1 CSV", "items.csv", "item_id,title,category\nA,caf\xe9,c\n".encode("latin-1"), "items",
     "items.csv:2: not valid UTF-8 (byte 0xe9 at column 6); save the file as UTF-8"),
    ("invalid UTF-8 on line 3 of a JSONL", "events.jsonl",
     jsonl(EVENT, EVENT) + b'{"user_id": "u\xff", "item_id": "A", "timestamp": 1, "event": "view"}\n',
     "events", "events.jsonl:3: not valid UTF-8 (byte 0xff at column 15); save the file as UTF-8"),
    ("event query a number", "events.jsonl", jsonl({**EVENT, "query": 42}), "events",
     "events.jsonl:1: field 'query' must be a string, got int"),
    ("timestamp NaN", "events.jsonl", b'{"user_id": "u", "item_id": "A", "timestamp": NaN, '
     b'"event": "view"}\n', "events", "events.jsonl:1: NaN is not a finite number"),
    ("timestamp 1e20", "events.jsonl", jsonl({**EVENT, "timestamp": 1e20}), "events",
     "events.jsonl:1: field 'timestamp' 1e+20 is outside 1970-01-01 .. 2100-01-01 (Unix seconds expected; "
     "milliseconds? set read_events(time_range=...) for other dates)"),
    ("timestamp 0001-01-01", "events.jsonl", jsonl({**EVENT, "timestamp": "0001-01-01"}), "events",
     "events.jsonl:1: field 'timestamp' '0001-01-01' is outside 1970-01-01 .. 2100-01-01"),
    ("JSON nested 100k deep", "events.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", "events",
     "events.jsonl:1: JSON nested too deeply"),
    ("every event names an unknown item", "events.jsonl", jsonl({**EVENT, "item_id": "Z"}), "events",
     "events.jsonl: all 1 events name items not in"),
    ("more CSV values than the header names", "items.csv", b"item_id,title,category\nA,t,c,extra\n", "items",
     "items.csv:2: 1 more values than the header has names"),
    ("dialogue intent a number", "dialogues.jsonl", jsonl({**DIALOGUE, "intent": 3}), "dialogues",
     "dialogues.jsonl:1: field 'intent' must be a string, got int"),
    ("dialogue intent a list", "dialogues.jsonl", jsonl({**DIALOGUE, "intent": ["a"]}), "dialogues",
     "dialogues.jsonl:1: field 'intent' must be a string, got list"),
    ("a text file as the model", "notes.txt", b"my notes\n", "model",
     "notes.txt: not a .keras model file (expected a .keras file or a run folder)"),
    ("a truncated .keras file", "model.keras", b"PK\x03\x04 half", "model",
     "model.keras: not a .keras model file (expected a .keras file or a run folder)"),
]  # fmt: skip
GOOD_ITEMS = jsonl(ITEM)
GOOD_EVENTS = jsonl(EVENT, {**EVENT, "timestamp": EVENT["timestamp"] + 5, "event": "purchase"})


def command(kind: str, path: Path, tmp_path: Path) -> list[str]:
    if kind in ("items", "events"):
        items, events = tmp_path / "good_items.jsonl", tmp_path / "good_events.jsonl"
        items.write_bytes(GOOD_ITEMS)
        events.write_bytes(GOOD_EVENTS)
        chosen = {"items": path, "events": events} if kind == "items" else {"items": items, "events": path}
        return ["train", "purchase", "--items", str(chosen["items"]), "--events", str(chosen["events"]),
                "--encoder", "tiny", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    if kind == "dialogues":
        return ["train", "reply", "--train", str(path), "--valid", str(path), "--encoder", "tiny",
                "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    return ["export", "--model", str(path), "--out", str(tmp_path / "saved_models")]


@pytest.mark.parametrize("case, name, content, kind, message", CASES, ids=[c[0] for c in CASES])
def test_a_bad_file_is_one_line_naming_file_line_and_field(
    case, name, content, kind, message, tmp_path, capsys
):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(command(kind, path, tmp_path)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert error.startswith(f"ecomrec-tf: error: {tmp_path}/{message}"), error


def test_the_docs_table_shows_each_message():
    guide = (Path(__file__).parents[2] / "docs" / "data.md").read_text(encoding="utf-8")
    table = guide[guide.index("## Bad input") :]
    for case, _, _, _, message in CASES:
        assert f"| {case} |" in table and message.split(": ", 1)[1][:60] in table, case


def test_bom_long_fields_and_unreadable_files(tmp_path, monkeypatch):
    """A CSV saved by Excel (BOM), a field over csv's default 128 KiB limit: read as they are; a file
    without read permission: a one-line error."""
    from ecomrec_tf.data.events import read_items
    from ecomrec_tf.data.readers import DataError

    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbfitem_id,title,category,description\nA,t,c," + b"x" * 200_000 + b"\n")
    assert len(read_items(excel)["A"]["description"]) == 200_000

    locked = tmp_path / "locked.jsonl"
    locked.write_bytes(GOOD_ITEMS)
    real_open = Path.open

    def no_permission(self, *args, **kwargs):  # chmod 000 does not stop root, who runs CI
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_permission)
    with pytest.raises(DataError, match="locked.jsonl: permission denied"):
        read_items(locked)


def test_a_model_refused_by_safe_mode_is_one_line(tmp_path, capsys):
    import keras

    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "lambda.keras")
    assert main(["export", "--model", str(tmp_path / "lambda.keras"), "--out", str(tmp_path / "sm")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "lambda.keras: cannot load the model: Requested the deserialization of a `Lambda` layer" in error
    assert "(load only trusted models)" in error


def test_debug_shows_the_traceback_instead(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(Exception, match="notes.txt: not a .keras model file"):
        main(["--debug", "export", "--model", str(notes), "--out", str(tmp_path / "sm")])
