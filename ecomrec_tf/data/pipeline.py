"""tf.data pipelines: raw-string batches grouped by length, so padding stays small."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

# Boundaries in characters. Shop queries are short: most fall in the first three buckets.
CHAR_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 256)


def text_classification_dataset(
    texts: Sequence[str],
    label_ids: Sequence[int] | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    augment: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
) -> tf.data.Dataset:
    """Batches of raw strings (and label ids), grouped by length.

    The model tokenises inside its graph and pads each batch to its longest text, so grouping texts
    of similar length is what removes padding. Batch order is shuffled with `seed` when `shuffle`.

    Args:
        texts: raw strings.
        label_ids: integer labels aligned with `texts`, or None for inference.
        batch_size: examples per batch.
        shuffle: shuffle examples (each epoch) and batches.
        seed: shuffle seed; the same seed gives the same order.
        bucket: group by character length; off gives plain batches in input order.
        augment: `augment(text, seed) -> text` over a batch of strings, e.g. a
            `preprocessing.TextAugmenter`; `seed` is a fresh stateless seed per batch, drawn from
            `seed`, so the same seed gives the same augmentations. For training data only.

    Returns:
        A dataset of `text` batches, or `(text, label_id)` batches.
    """
    texts = np.asarray(list(texts), dtype=object)
    elements = texts if label_ids is None else (texts, np.asarray(label_ids, dtype=np.int32))
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if bucket:
        dataset = dataset.bucket_by_sequence_length(
            lambda text, *_: tf.strings.length(text, unit="UTF8_CHAR"),
            bucket_boundaries=list(CHAR_BUCKETS),
            bucket_batch_sizes=[batch_size] * (len(CHAR_BUCKETS) + 1),
        )
        # Bucketing hides the batch count (Keras then cannot size its progress bar). The count does
        # not depend on order: each length bucket yields ceil(examples in it / batch_size) batches.
        lengths = np.array([len(text) for text in texts])
        in_bucket = np.bincount(np.searchsorted(CHAR_BUCKETS, lengths, side="right"))
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(int(np.ceil(in_bucket / batch_size).sum()))
        )
        if shuffle:
            dataset = dataset.shuffle(64, seed=seed)
    else:
        dataset = dataset.batch(batch_size)
    if augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, pair: (
                (augment(batch[0], pair), *batch[1:]) if label_ids is not None else augment(batch, pair)
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
