"""tf.data datasets for the purchase and dialogue tasks, from the readers' in-memory records."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ecomrec_tf.data.event_state import FEATURES
from ecomrec_tf.data.item_features import ItemFeatures
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


def purchase_columns(
    examples: list[dict], items: dict[str, dict], history_size: int = 10
) -> dict[str, np.ndarray]:
    """Examples (`events.purchase_examples`) as columns named like `models.PurchaseModel`'s raw inputs.

    `history` and `history_ids` `(examples, width)` hold the item texts and ids, most recent first,
    "" padded to the longest history (at least one column; an all-"" row is a new user); `item`,
    `item_id`, `category`, `user_id`, `query` ("" for none) and `price` (NaN when unknown) one value
    per example; one float32 column per `event_state.FEATURES` name; `label` 1.0 for a purchase.
    """
    texts = {item_id: item_text(item) for item_id, item in items.items()}
    width = max([1] + [min(len(e["history"]), history_size) for e in examples])
    history_ids = np.full((len(examples), width), "", dtype=object)
    for row, example in enumerate(examples):
        ids = example["history"][:history_size]
        history_ids[row, : len(ids)] = ids
    prices = [items[e["item_id"]].get("price") for e in examples]
    columns = {
        "history_ids": history_ids,
        "history": np.vectorize(lambda i: texts.get(i, ""), otypes=[object])(history_ids),
        "item_id": np.asarray([e["item_id"] for e in examples], dtype=object),
        "item": np.asarray([texts[e["item_id"]] for e in examples], dtype=object),
        "category": np.asarray([items[e["item_id"]]["category"] for e in examples], dtype=object),
        "user_id": np.asarray([e["user_id"] for e in examples], dtype=object),
        "query": np.asarray([e["query"] or "" for e in examples], dtype=object),
        "price": np.asarray([np.nan if p is None else p for p in prices], dtype=np.float32),
        "label": np.asarray([e["label"] for e in examples], dtype=np.float32),
    }
    for name in FEATURES:
        columns[name] = np.asarray([e["features"][name] for e in examples], dtype=np.float32)
    return columns


def purchase_dataset(
    examples: list[dict],
    items: dict[str, dict],
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment: Augment | None = None,
    input_context: tf.distribute.InputContext | None = None,
    bucket: bool = True,
    inputs=None,
    history_size: int = 10,
) -> tf.data.Dataset:
    """Batches of `(raw inputs, label)` for `models.PurchaseModel` from `events.purchase_examples`.

    The inputs are `purchase_columns` and the items' image vectors and attributes
    (`item_features.ItemFeatures.infer(items)`), only those named in `inputs` (e.g. `model.input`) when
    given, with histories padded to each batch's longest. `augment` (training
    only) rewrites queries; `input_context` gives this input pipeline its share, as in
    `pipeline.text_classification_dataset`; `bucket` groups examples of similar item-text length.
    """
    examples, batch_size = shard_for(examples, batch_size, input_context)
    columns = purchase_columns(examples, items, history_size)
    labels = columns.pop("label")
    names = set(inputs or columns) | {"item", "query"}
    features = {name: value for name, value in columns.items() if name in names}
    lengths = (columns["history_ids"] != "").sum(axis=1)
    catalog = ItemFeatures.infer(items)
    ids = sorted(items)
    row = {item_id: i for i, item_id in enumerate(ids)}
    item_rows = [row[i] for i in columns["item_id"]]
    history_rows = np.vectorize(lambda i: row.get(i, -1), otypes=[np.int64])(columns["history_ids"])
    for name, matrix in catalog.matrices([*ids, None], {**items, None: None}).items():  # last row: padding
        if name in names or inputs is None:
            features[name] = matrix[item_rows]
        if f"history_{name}" in names or inputs is None:
            features[f"history_{name}"] = tf.RaggedTensor.from_tensor(
                tf.constant(matrix[history_rows]), lengths
            )
    for name in ("history", "history_ids"):
        if name in features:
            features[name] = tf.RaggedTensor.from_tensor(tf.constant(features[name]), lengths)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels))
    dataset = _finish(dataset, len(examples), batch_size, shuffle, seed, augment, "query", "item", bucket)
    pads = {"history": "", "history_ids": ""}
    pads |= {f"history_{name}": values[0] for name, values in catalog.values(None).items()}
    ragged = {name: pad for name, pad in pads.items() if name in features}
    return dataset.map(
        lambda x, y: ({**x, **{name: pad_histories(x[name], pad) for name, pad in ragged.items()}}, y)
    )


def pad_histories(history: tf.RaggedTensor, pad="") -> tf.Tensor:
    """Ragged `(batch, None, ...)` histories (item texts, ids, item features) -> dense, `pad` padded, at
    least one item wide."""
    width = tf.maximum(history.bounding_shape(axis=1), 1)
    return history.to_tensor(pad, shape=[history.nrows(), width, *history.shape[2:]])


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
