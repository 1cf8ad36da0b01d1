"""Readers for users' own files, with errors that name the file and line."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and, where known, the line."""


CSV_FIELD_LIMIT = 64 * 1024 * 1024  # csv's default, 128 KiB, is shorter than some product descriptions


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise DataError(f"{path}: permission denied (the file cannot be read)") from None
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _not_a_number(text: str):
    raise _NotFinite(text)


def _lines(path: Path):
    """Yields `(line_number, text)` of a UTF-8 file (a leading byte-order mark is dropped), one line
    at a time; other encodings are an error naming the line."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at column "
                    f"{error.start + 1}); save the file as UTF-8"
                ) from None
            yield number, line.removeprefix("\ufeff") if number == 1 else line


def _records(path: Path):
    """Yields `(line_number, dict)` from a JSONL, CSV or TFRecord file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_float=_finite, parse_constant=_not_a_number)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
            except _NotFinite as error:
                raise DataError(f"{path}:{number}: {error} is not a finite number") from None
            except RecursionError:
                raise DataError(f"{path}:{number}: JSON nested too deeply") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record
    elif suffix in (".tfrecord", ".tfrecords"):
        yield from _tfrecord_records(path)
    elif suffix in (".csv", ".tsv"):
        limit = csv.field_size_limit(CSV_FIELD_LIMIT)
        reader = csv.DictReader(
            (line for _, line in _lines(path)), delimiter="\t" if suffix == ".tsv" else ","
        )
        try:
            for record in reader:
                extra = [value for value in record.pop(None, ()) if value.strip()]
                if extra:
                    raise DataError(
                        f"{path}:{reader.line_num}: {len(extra)} more values than the header has names"
                    )
                yield reader.line_num, record
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None
        finally:
            csv.field_size_limit(limit)
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


def read_records(
    path: str | Path, fields: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[str, dict]]:
    """Reads JSONL, CSV or TFRecord records that must carry non-empty string `fields`, and may carry
    the string fields `optional` (absent, null or "" when not).

    Returns:
        `(where, record)` pairs; `where` names the file and line (`items.jsonl:12`), or the record
        of a TFRecord file (`items.tfrecord: record 12`), for the caller's own error messages.

    Raises:
        DataError: naming the file and line of the first bad record.
    """
    return list(iter_records(path, fields, optional))


def iter_records(path: str | Path, fields: tuple[str, ...], optional: tuple[str, ...] = ()):
    """`read_records` one record at a time, for files larger than memory."""
    path = Path(path)
    _check_file(path)
    tfrecord = path.suffix.lower() in (".tfrecord", ".tfrecords")
    empty = True
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
        for field in optional:
            value = record.get(field)
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
        empty = False
        yield where, record
    if empty:
        raise DataError(f"{path}: no records")


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
    records = read_records(path, ("reply",), optional=("intent",))
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
               seed: int = 0, group_by: str | None = "auto") -> dict[str, Path]:  # fmt: skip
    """Shuffles the records of a JSONL file (seeded) into `out_dir/{train,valid,test}.jsonl`, for data
    without time order, such as dialogues. Records are copied as they are.

    Records with the same `group_by` value go to one split, so no test answer is also a training
    answer: "auto" groups dialogues by their `reply` with digits masked (the same answer with another
    order number is the same answer), other records by nothing; a field name groups by that field's
    value (e.g. a conversation id); None shuffles records one by one.

    Raises:
        DataError: naming the file when it has fewer than three records or groups.
    """
    import random
    import re

    path, out_dir = Path(path), Path(out_dir)
    _check_file(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < 3:
        raise DataError(f"{path}: {len(lines)} records; a split needs at least three")
    if group_by == "auto":
        group_by = "reply" if "reply" in json.loads(lines[0]) else None
    groups: dict[str, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        key = str(number)
        if group_by is not None:
            value = json.loads(line).get(group_by)
            if value is None:
                raise DataError(f"{path}:{number}: missing field {group_by!r} to group the split by")
            key = re.sub(r"\d+", "0", str(value).lower()) if group_by == "reply" else json.dumps(value)
        groups.setdefault(key, []).append(line)
    if len(groups) < 3:
        raise DataError(f"{path}: {len(groups)} distinct {group_by!r} values; a split needs at least three")
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    targets = {
        "test": max(1, round(len(lines) * test_fraction)),
        "valid": max(1, round(len(lines) * valid_fraction)),
    }
    parts: dict[str, list[str]] = {"test": [], "valid": [], "train": []}
    for group in order:  # whole groups, test first, then valid, until each has its share of records
        split = next((name for name in ("test", "valid") if len(parts[name]) < targets[name]), "train")
        parts[split].extend(group)
    if not parts["train"]:
        raise DataError(f"{path}: {len(groups)} groups of {group_by!r} leave no training records")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, part in parts.items():
        paths[split] = out_dir / f"{split}.jsonl"
        paths[split].write_text("\n".join(part) + "\n", encoding="utf-8")
    return paths


def label_ids(labels: list[str], known: list[str], path: str | Path) -> np.ndarray:
    """Maps label names to ids; a label not in `known` is an error naming the file."""
    index = {label: i for i, label in enumerate(known)}
    unseen = Counter(label for label in labels if label not in index)
    if unseen:
        listed = ", ".join(f"{label!r} ({n}x)" for label, n in unseen.most_common(10))
        raise DataError(f"{path}: labels not in the training data: {listed}")
    return np.asarray([index[label] for label in labels], dtype=np.int32)
