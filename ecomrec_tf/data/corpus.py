"""Unlabeled shop text for domain-adaptive pretraining: titles, descriptions, queries and chats."""

from __future__ import annotations

from pathlib import Path

from ecomrec_tf.data.events import iter_events, read_items
from ecomrec_tf.data.readers import DataError, read_dialogues, read_records


def shop_corpus(
    items: str | Path | None = None,
    events: str | Path | None = None,
    dialogues: str | Path | None = None,
    texts: str | Path | None = None,
    events_before: int | None = None,
) -> list[str]:
    """Distinct texts from a shop's own files, in the data formats of `ecomrec_tf.data`, first-seen order.

    Args:
        items: items file: each title and description.
        events: events file: each distinct search `query` (of events before `events_before`, Unix
            seconds, if given: keep a time-split evaluation's later events out).
        dialogues: dialogues file: every turn and reply.
        texts: any file of `{text}` records (e.g. labelled intent files; labels are ignored).

    Raises:
        DataError: when no file is given or the files hold no text.
    """
    found: dict[str, None] = {}

    def add(text) -> None:
        if isinstance(text, str) and text.strip():
            found.setdefault(text.strip(), None)

    if items:
        for item in read_items(items).values():
            add(item["title"])
            add(item["description"])
    if events:
        for event in iter_events(events):
            if events_before is None or event["timestamp"] < events_before:
                add(event["query"])
    if dialogues:
        for dialogue in read_dialogues(dialogues):
            for turn in dialogue["context"]:
                add(turn)
            add(dialogue["reply"])
    if texts:
        for _, record in read_records(texts, ("text",)):
            add(record["text"])
    if not found:
        given = [str(p) for p in (items, events, dialogues, texts) if p]
        raise DataError(f"no text to pretrain on in {', '.join(given) or 'no files (pass at least one)'}")
    return list(found)


def shop_dir_corpus(shop_dir: str | Path, train_fraction: float = 0.8) -> list[str]:
    """`shop_corpus` over a folder `data generate` wrote, with no text a later evaluation scores: items,
    the queries of the first `train_fraction` of events by time (purchase models validate and test on
    the last 10% and 10% of examples), the intent training split and the dialogues' training split
    (`dialogues/train.jsonl`, which `data split` writes; without it no dialogue). Never the intent or
    dialogue validation and test files, nor the unsplit `dialogues.jsonl`."""
    shop_dir = Path(shop_dir)
    times = sorted(event["timestamp"] for event in iter_events(shop_dir / "events.jsonl"))
    cut = times[int(len(times) * train_fraction)] if times else None
    dialogues = shop_dir / "dialogues" / "train.jsonl"
    return shop_corpus(
        shop_dir / "items.jsonl",
        shop_dir / "events.jsonl",
        dialogues if dialogues.is_file() else None,
        shop_dir / "intents" / "train.jsonl",
        events_before=cut,
    )
