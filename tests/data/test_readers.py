import pytest

from ecomrec_tf.data import DataError, read_intent_file


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_jsonl_and_keeps_unicode(tmp_path):
    path = write(
        tmp_path, "a.jsonl", '{"text": "Größe 42 👟", "label": "size_fit"}\n\n{"text": "hi", "label": "x"}\n'
    )
    assert read_intent_file(path) == (["Größe 42 👟", "hi"], ["size_fit", "x"])


def test_reads_csv(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"where is it, please",order_status\ncafé,x\n')
    assert read_intent_file(path) == (["where is it, please", "café"], ["order_status", "x"])


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: no such file"):
        read_intent_file(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="empty.jsonl: file is empty"):
        read_intent_file(write(tmp_path, "empty.jsonl", ""))
    with pytest.raises(DataError, match="blank.jsonl: no records"):
        read_intent_file(write(tmp_path, "blank.jsonl", "\n\n"))


def test_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        read_intent_file(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"label": "x"}', "missing field 'text'"),
        ('{"text": "a"}', "missing field 'label'"),
        ('{"text": 3, "label": "x"}', "field 'text' must be a string, got int"),
        ('{"text": "  ", "label": "x"}', "field 'text' is empty"),
        ('["a", "x"]', "expected a JSON object, got list"),
    ],
)
def test_bad_records_name_the_line_and_field(tmp_path, line, message):
    path = write(tmp_path, "r.jsonl", '{"text": "ok", "label": "x"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"r.jsonl:2: {message}"):
        read_intent_file(path)


def test_csv_without_label_column(tmp_path):
    with pytest.raises(DataError, match="r.csv:2: missing field 'label'"):
        read_intent_file(write(tmp_path, "r.csv", "text,intent\nhello,x\n"))


def test_invalid_utf8_file(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "caf\xe9", "label": "x"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.jsonl:1: not valid UTF-8 \(byte 0xe9 at column 14\)"):
        read_intent_file(path)


def test_unsupported_format(tmp_path):
    with pytest.raises(DataError, match="unsupported format '.txt'"):
        read_intent_file(write(tmp_path, "a.txt", "hello"))
