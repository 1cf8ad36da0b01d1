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
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file, delimiter="\t" if suffix == ".tsv" else ",")
            for record in reader:
                yield reader.line_num, record
    else:
        raise DataError(f"{path}: unsupported format {suffix!r}; use .jsonl or .csv")


def read_records(path: str | Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """Reads JSONL or CSV records that must carry non-empty string `fields`.

    Raises:
        DataError: naming the file and line of the first bad record.
    """
    path = Path(path)
    _check_file(path)
    records = []
    for number, record in _records(path):
        for field in fields:
            value = record.get(field)
            if value is None:
                raise DataError(f"{path}:{number}: missing field {field!r}")
            if not isinstance(value, str):
                raise DataError(
                    f"{path}:{number}: field {field!r} must be a string, got {type(value).__name__}"
                )
            if not value.strip():
                raise DataError(f"{path}:{number}: field {field!r} is empty")
        records.append(record)
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
    records = read_records(path, ("text", "label"))
    return [r["text"] for r in records], [r["label"].strip() for r in records]
