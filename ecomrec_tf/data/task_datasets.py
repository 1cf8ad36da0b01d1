"""tf.data datasets for the purchase and dialogue tasks, from the readers' in-memory records."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ecomrec_tf.data.pipeline import CHAR_BUCKETS, Augment, map_with_seeds, shard_for

SPEAKERS = ("[customer]", "[agent]")


def item_text(item: dict) -> str:
    """The text the encoder reads for an item: title, category, description."""
    return " | ".join(
        part for part in (item["title"], item["category"], item.get("description") or "") if part
    )


def _finish(
    dataset,
    size: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    augment,
    field: str,
    length_field: str,
    bucket: bool,
) -> tf.data.Dataset:
    """Shuffle, batch (grouped by the length of `length_field` when `bucket`), augment `field`, prefetch."""
    if shuffle:
        dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if bucket:
        # group_by_window, not bucket_by_sequence_length: batches keep ragged features ragged.
        boundaries = tf.constant(CHAR_BUCKETS, tf.int32)
        dataset = dataset.group_by_window(
            key_func=lambda features, _: tf.cast(
                tf.searchsorted(
                    boundaries, [tf.strings.length(features[length_field], "UTF8_CHAR")], "right"
                )[0],
                tf.int64,
            ),
            reduce_func=lambda _, window: window.ragged_batch(batch_size),
            window_size=batch_size,
        )
    else:
        dataset = dataset.ragged_batch(batch_size)
    if augment is not None:
        dataset = map_with_seeds(
            dataset, seed, lambda batch, pair: ({**batch[0], field: augment(batch[0][field], pair)}, batch[1])
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def purchase_dataset(
    examples: list[dict],
    items: dict[str, dict],
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment: Augment | None = None,
    input_context: tf.distribute.InputContext | None = None,
    bucket: bool = True,
) -> tf.data.Dataset:
    """Batches of `({"history", "item", "query", "price"}, label)` from `events.purchase_examples`.

    `history` is a `(batch, items)` string tensor of item texts, most recent first, padded with ""
    to the batch's longest history (at least one column; an all-"" row is a new user), `item` the
    candidate's text, `query` the search query or "", `price` the candidate's price (NaN when
    unknown), `label` 1.0 for a purchase: `models.PurchaseModel`'s raw inputs. `augment` (training
    only) rewrites queries; `input_context` gives this input pipeline its share, as in
    `pipeline.text_classification_dataset`;
    `bucket` groups examples of similar item-text length.
    """
    examples, batch_size = shard_for(examples, batch_size, input_context)
    texts = {item_id: item_text(item) for item_id, item in items.items()}
    histories = [[texts[item_id] for item_id in e["history"]] for e in examples]
    prices = [items[e["item_id"]].get("price") for e in examples]
    features = {
        "history": tf.ragged.constant(histories, dtype=tf.string, ragged_rank=1),
        "item": np.asarray([texts[e["item_id"]] for e in examples], dtype=object),
        "query": np.asarray([e["query"] or "" for e in examples], dtype=object),
        "price": np.asarray([np.nan if p is None else p for p in prices], dtype=np.float32),
    }
    labels = np.asarray([e["label"] for e in examples], dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    dataset = _finish(dataset, len(examples), batch_size, shuffle, seed, augment, "query", "item", bucket)
    return dataset.map(lambda x, y: ({**x, "history": pad_histories(x["history"])}, y))


def pad_histories(history: tf.RaggedTensor) -> tf.Tensor:
    """Ragged `(batch, None)` item texts -> dense, "" padded, at least one column wide."""
    width = tf.maximum(history.bounding_shape(axis=1), 1)
    return history.to_tensor("", shape=tf.stack([history.nrows(), width]))


def dialogue_context(turns: list[str], max_turns: int = 3) -> str:
    """The last `max_turns` turns with speaker markers, oldest dropped first; the last turn is the customer's.

    Example:
        >>> dialogue_context(["hi", "Hello! How can I help?", "where is my order"], max_turns=2)
        '[agent] Hello! How can I help? [customer] where is my order'
    """
    kept = turns[-max_turns:]
    speakers = [
        SPEAKERS[(len(kept) - 1 - i) % 2] for i in range(len(kept))
    ]  # the last turn is the customer's
    return " ".join(f"{speaker} {turn}" for speaker, turn in zip(speakers, kept))


def dialogue_dataset(
    dialogues: list[dict],
    batch_size: int = 32,
    max_turns: int = 3,
    shuffle: bool = False,
    seed: int = 0,
    augment: Augment | None = None,
    input_context: tf.distribute.InputContext | None = None,
    bucket: bool = True,
) -> tf.data.Dataset:
    """Batches of `({"context", "reply"}, intent)` strings; intent is "" where a dialogue has none.

    `augment` (training only) rewrites contexts, never the vetted replies; `bucket` groups
    dialogues of similar context length.
    """
    dialogues, batch_size = shard_for(dialogues, batch_size, input_context)
    contexts = np.asarray([dialogue_context(d["context"], max_turns) for d in dialogues], dtype=object)
    replies = np.asarray([d["reply"] for d in dialogues], dtype=object)
    intents = np.asarray([d.get("intent") or "" for d in dialogues], dtype=object)
    dataset = tf.data.Dataset.from_tensor_slices(({"context": contexts, "reply": replies}, intents))
    return _finish(dataset, len(dialogues), batch_size, shuffle, seed, augment, "context", "context", bucket)
