"""Readers for users' own files, with errors that name the file and line."""

from __future__ import annotations

import csv
import json
from pathlib import Path


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and, where known, the line."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def _records(path: Path):
    """Yields `(line_number, dict)` from a JSONL or CSV file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        with path.open(encoding="utf-8", errors="strict") as file:
            try:
                for number, line in enumerate(file, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
                    if not isinstance(record, dict):
                        raise DataError(
                            f"{path}:{number}: expected a JSON object, got {type(record).__name__}"
                        )
                    yield number, record
            except UnicodeDecodeError as error:
                raise DataError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
    elif suffix in (".tfrecord", ".tfrecords"):
        yield from _tfrecord_records(path)
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file, delimiter="\t" if suffix == ".tsv" else ",")
            for record in reader:
                yield reader.line_num, record
    else:
        raise DataError(f"{path}: unsupported format {suffix!r}; use .jsonl, .csv or .tfrecord")


def _tfrecord_records(path: Path):
    """Yields `(record_number, dict)` from `tf.train.Example` records; one-value lists become scalars."""
    import tensorflow as tf

    try:
        for number, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator(), start=1):
            try:
                example = tf.train.Example.FromString(raw)
            except Exception:  # protobuf's DecodeError
                raise DataError(f"{path}: record {number}: not a tf.train.Example") from None
            yield (
                number,
                {name: _feature_value(name, feature) for name, feature in example.features.feature.items()},
            )
    except tf.errors.DataLossError as error:
        raise DataError(f"{path}: corrupt TFRecord file ({error.message})") from None


LIST_FIELDS = ("context",)  # fields that are lists of strings even with one value


def _feature_value(name: str, feature):
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    if kind == "bytes_list":
        values = [value.decode("utf-8", errors="replace") for value in values]
    return values if name in LIST_FIELDS or len(values) != 1 else values[0]


def write_tfrecord(records: list[dict], path: str | Path) -> Path:
    """Writes records as `tf.train.Example`s: str -> bytes, int -> int64, float -> float, lists kept."""
    import tensorflow as tf

    def feature(value):
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, str) for v in values):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    path = Path(path)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            features = {name: feature(value) for name, value in record.items() if value is not None}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return path


def read_records(path: str | Path, fields: tuple[str, ...]) -> list[tuple[str, dict]]:
    """Reads JSONL, CSV or TFRecord records that must carry non-empty string `fields`.

    Returns:
        `(where, record)` pairs; `where` names the file and line (`items.jsonl:12`), or the record
        of a TFRecord file (`items.tfrecord: record 12`), for the caller's own error messages.

    Raises:
        DataError: naming the file and line of the first bad record.
    """
    path = Path(path)
    _check_file(path)
    tfrecord = path.suffix.lower() in (".tfrecord", ".tfrecords")
    records = []
    for number, record in _records(path):
        where = f"{path}: record {number}" if tfrecord else f"{path}:{number}"
        for field in fields:
            value = record.get(field)
            if value is None:
                raise DataError(f"{where}: missing field {field!r}")
            if not isinstance(value, str):
                raise DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise DataError(f"{where}: field {field!r} is empty")
        records.append((where, record))
    if not records:
        raise DataError(f"{path}: no records")
    return records


def read_intent_file(path: str | Path) -> tuple[list[str], list[str]]:
    """Reads intent examples `{text, label}` from JSONL or CSV.

    Returns:
        `(texts, labels)`, in file order.

    Example:
        >>> texts, labels = read_intent_file("train.jsonl")  # doctest: +SKIP
    """
    records = [record for _, record in read_records(path, ("text", "label"))]
    return [r["text"] for r in records], [r["label"].strip() for r in records]


def read_dialogues(path: str | Path) -> list[dict]:
    """Reads dialogues `{context: [turns, oldest first], reply, intent?}` from JSONL, CSV or TFRecord.

    Turns alternate customer and agent and end with the customer's message. In CSV, `context` is a
    JSON array of strings.

    Raises:
        DataError: naming the file and line of a record without a non-empty list of string turns.
    """
    records = read_records(path, ("reply",))
    for where, record in records:
        context = record.get("context")
        if isinstance(context, str) and context.lstrip().startswith("["):
            try:
                context = record["context"] = json.loads(context)
            except json.JSONDecodeError:
                raise DataError(f"{where}: field 'context' is not a JSON array of strings") from None
        if not isinstance(context, list) or not context or not all(isinstance(t, str) for t in context):
            raise DataError(f"{where}: field 'context' must be a non-empty list of strings")
    return [record for _, record in records]


def split_file(path: str | Path, out_dir: str | Path, valid_fraction: float = 0.1, test_fraction: float = 0.1,
               seed: int = 0) -> dict[str, Path]:  # fmt: skip
    """Shuffles the records of a JSONL file (seeded) into `out_dir/{train,valid,test}.jsonl`, for data
    without time order, such as dialogues. Records are copied as they are.

    Raises:
        DataError: naming the file when it has fewer than three records.
    """
    import random

    path, out_dir = Path(path), Path(out_dir)
    _check_file(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < 3:
        raise DataError(f"{path}: {len(lines)} records; a split needs at least three")
    random.Random(seed).shuffle(lines)
    n_test = max(1, round(len(lines) * test_fraction))
    n_valid = max(1, round(len(lines) * valid_fraction))
    parts = {
        "test": lines[:n_test],
        "valid": lines[n_test : n_test + n_valid],
        "train": lines[n_test + n_valid :],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, part in parts.items():
        paths[split] = out_dir / f"{split}.jsonl"
        paths[split].write_text("\n".join(part) + "\n", encoding="utf-8")
    return paths
