"""tf.data pipelines: raw-string batches grouped by length, so padding stays small.

Two sources share one batching path: in-memory examples (what the readers return) and TFRecord
files (many files, read interleaved, sharded across workers through `tf.distribute.InputContext`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from ecomrec_tf.progress import progress_bar

# Boundaries in characters, for the purchase and dialogue batches. Shop queries are short: most fall
# in the first three buckets.
CHAR_BUCKETS = (12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64, 80, 96, 128, 256)
SORT_WINDOW = 32  # batches whose examples `length_sorted_batches` sorts together
Augment = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
Length = Callable[[tf.Tensor], tf.Tensor]


def char_lengths(texts: tf.Tensor) -> tf.Tensor:
    """Characters in each string of a batch: the sort key when no tokenizer is at hand."""
    return tf.strings.length(texts, unit="UTF8_CHAR")


def length_sorted_batches(
    dataset: tf.data.Dataset, batch_size: int, length: Length | None = None, shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:  # fmt: skip
    """Batches of examples of similar length, all full but the last.

    The examples of each window of `SORT_WINDOW` batches are sorted by `length(texts)` (e.g. token
    counts, `preprocessing.token_lengths`; None counts characters) and cut into batches, whose order
    is then shuffled when `shuffle`. A batch pads to its longest text, so this removes nearly all
    padding; unlike length buckets it leaves no partial batch per bucket at each epoch's end. Elements
    are `text` or tuples whose first part is the text.
    """

    length = length or char_lengths

    def sort(*window):
        order = tf.argsort(length(window[0]), stable=True)
        parts = tuple(tf.gather(part, order) for part in window)
        return parts if len(parts) > 1 else parts[0]

    dataset = dataset.batch(batch_size * SORT_WINDOW).map(sort, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.unbatch().batch(batch_size)
    return dataset.shuffle(2 * SORT_WINDOW, seed=seed) if shuffle else dataset


def row_lengths(ids: tf.RaggedTensor) -> tf.Tensor:
    """Tokens in each text of a batch of token ids: the sort key of tokenised examples."""
    return ids.row_lengths()


def token_ids(texts: Sequence[str], preprocessor, chunk: int = 4096) -> tf.RaggedTensor:
    """`preprocessor.token_ids` of every text, computed now in chunks (a progress bar when many)."""
    starts = range(0, len(texts), chunk)
    bar = progress_bar(starts, desc="tokenising", unit="chunk", disable=len(starts) < 16)
    parts = [
        preprocessor.token_ids(tf.constant(list(texts[start : start + chunk]), tf.string)) for start in bar
    ]
    return tf.concat(parts, axis=0) if parts else tf.ragged.constant([], tf.int32, ragged_rank=1)


def map_with_seeds(dataset: tf.data.Dataset, seed: int, fn, deterministic: bool = True) -> tf.data.Dataset:
    """Maps `fn(batch, stateless_seed)` over batches; seeds come from `seed`, fresh every epoch."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )


def shard_for(items: Sequence, batch_size: int, input_context: tf.distribute.InputContext | None):
    """This input pipeline's share of in-memory `items` and its per-replica batch size.

    With `strategy.distribute_datasets_from_function`, each pipeline takes every n-th example and
    `batch_size` is read as the global batch size.
    """
    if input_context is None:
        return items, batch_size
    share = items[input_context.input_pipeline_id :: input_context.num_input_pipelines]
    return share, input_context.get_per_replica_batch_size(batch_size)


def _batches(
    dataset: tf.data.Dataset,
    labelled: bool,
    batch_size: int,
    shuffle: bool,
    seed: int,
    bucket: bool,
    augment: Augment | None,
    deterministic: bool = True,
    length: Length | None = None,
    features: Callable | None = None,
) -> tf.data.Dataset:
    """Examples (text[, label]) -> shuffled, length-sorted, augmented, prefetched batches; with
    `features`, examples of token ids (ragged) -> batches of `features(ids)`."""
    if bucket:
        dataset = length_sorted_batches(dataset, batch_size, length, shuffle, seed)
    else:
        dataset = dataset.batch(batch_size)
    if features is not None:
        dataset = dataset.map(
            lambda *batch: (features(batch[0]), *batch[1:]) if labelled else features(batch[0]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if augment is not None:
        dataset = map_with_seeds(
            dataset,
            seed,
            lambda batch, pair: (augment(batch[0], pair), *batch[1:]) if labelled else augment(batch, pair),
            deterministic,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def class_weights(label_ids: Sequence[int], num_classes: int) -> np.ndarray:
    """Per-example weights `n / (classes * count of its class)`: every class weighs the same in the
    loss, as scikit-learn's `class_weight="balanced"`; the weights average 1."""
    label_ids = np.asarray(label_ids, dtype=np.int64)
    counts = np.bincount(label_ids, minlength=num_classes).astype(np.float64)
    present = counts > 0
    per_class = np.where(present, len(label_ids) / (present.sum() * np.maximum(counts, 1)), 0.0)
    return per_class[label_ids].astype(np.float32)


def text_classification_dataset(
    texts: Sequence[str],
    label_ids: Sequence[int] | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    augment: Augment | None = None,
    input_context: tf.distribute.InputContext | None = None,
    sample_weights: Sequence[float] | None = None,
    length: Length | None = None,
    preprocessor=None,
) -> tf.data.Dataset:
    """Batches of raw strings (and label ids, and sample weights) from memory, grouped by length.

    The model tokenises inside its graph and pads each batch to its longest text, so grouping texts
    of similar length is what removes padding (`length_sorted_batches`). Batch order is shuffled
    with `seed` when `shuffle`. With a `preprocessor`, texts are tokenised once, here, and the
    batches are the encoder's inputs instead: no tokenizer runs in the pipeline at each epoch.

    Args:
        texts: raw strings.
        label_ids: integer labels aligned with `texts`, or None for inference.
        batch_size: examples per batch.
        shuffle: shuffle examples (each epoch) and batches.
        seed: shuffle seed; the same seed gives the same order.
        bucket: group texts of similar length (`length_sorted_batches`); off gives plain batches
            in input order.
        augment: `augment(text, seed) -> text` over a batch of strings, e.g. a
            `preprocessing.TextAugmenter`; `seed` is a fresh stateless seed per batch, drawn from
            `seed`, so the same seed gives the same augmentations. For training data only.
        input_context: from `strategy.distribute_datasets_from_function`: this pipeline reads its
            share of the examples, and `batch_size` is the global batch size.
        sample_weights: a loss weight per example (e.g. `class_weights`), with `label_ids`.
        length: the grouping key, `length(batch of texts) -> int lengths`: token counts
            (`preprocessing.token_lengths(model.preprocessor)`) group best; None counts characters.
        preprocessor: a `preprocessing.TextPreprocessor` (the model's): texts become its
            `token_ids` now, batches its `features` (a dict of `token_ids`, `padding_mask`,
            `segment_ids`), sorted by token count (`length` unused). Training data of a fixed set of
            texts gains most: a tokenizer in the pipeline is set up again at every epoch's iterator
            (~0.15 s for MiniLM's). Not with `augment`, which rewrites strings.

    Returns:
        A dataset of `text` batches, or `(text, label_id)` batches (`(text, label_id, weight)` with
        `sample_weights`), whose cardinality is known; features in place of `text` with a
        `preprocessor`.
    """
    texts, batch_size = shard_for(np.asarray(list(texts), dtype=object), batch_size, input_context)
    count, features = len(texts), None
    if preprocessor is not None:
        if augment is not None:
            raise ValueError("augment rewrites raw strings: pass it without a preprocessor")
        texts, length, features = token_ids(texts, preprocessor), row_lengths, preprocessor.features
    elements = texts
    if label_ids is not None:
        label_ids, _ = shard_for(np.asarray(label_ids, dtype=np.int32), batch_size, input_context)
        elements = (texts, label_ids)
        if sample_weights is not None:
            weights, _ = shard_for(np.asarray(sample_weights, dtype=np.float32), batch_size, input_context)
            elements = (texts, label_ids, weights)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    batches = int(np.ceil(count / batch_size))  # every batch is full but the last
    dataset = _batches(
        dataset, label_ids is not None, batch_size, shuffle, seed, bucket, augment, length=length,
        features=features,
    )  # fmt: skip
    # Sorting (unbatch, batch) hides the batch count; Keras needs it to size progress bars.
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def text_classification_dataset_from_tfrecords(
    patterns: str | Sequence[str],
    labels: Sequence[str],
    global_batch_size: int = 32,
    input_context: tf.distribute.InputContext | None = None,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str = False,
    deterministic: bool = True,
    bucket: bool = True,
    augment: Augment | None = None,
    text_field: str = "text",
    label_field: str = "label",
    length: Length | None = None,
) -> tf.data.Dataset:
    """Batches of `(text, label_id)` read from TFRecord files of `tf.train.Example{text, label}`.

    Files are read interleaved; with an `input_context` (as `strategy.distribute_datasets_from_function`
    passes) each input pipeline reads its own share of files, or of records when there are fewer
    files than pipelines, and batches `input_context.get_per_replica_batch_size(global_batch_size)`.

    Args:
        patterns: file glob(s).
        labels: label names; id `i` is `labels[i]`. A record with another label stops the pipeline
            with an error naming the label.
        global_batch_size: examples per step over all replicas.
        input_context: from `tf.distribute`, or None for one pipeline.
        shuffle: shuffle files and examples each epoch.
        seed: seed of every shuffle and of augmentation.
        cache: cache parsed examples in memory (True) or in a file (a path).
        deterministic: keep a reproducible order (False trades it for throughput).
        bucket, augment, length: as in `text_classification_dataset`.
    """
    files = tf.io.gfile.glob(patterns) if isinstance(patterns, str) else sorted(
        path for pattern in patterns for path in tf.io.gfile.glob(pattern)
    )  # fmt: skip
    if not files:
        raise FileNotFoundError(f"no files match {patterns}")
    pipelines, index = (
        (input_context.num_input_pipelines, input_context.input_pipeline_id) if input_context else (1, 0)
    )
    batch_size = (
        input_context.get_per_replica_batch_size(global_batch_size) if input_context else global_batch_size
    )
    dataset = tf.data.Dataset.from_tensor_slices(sorted(files))
    shard_files = len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, index)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=4,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if not shard_files:
        dataset = dataset.shard(pipelines, index)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(list(labels), tf.range(len(labels), dtype=tf.int32)), -1
    )
    spec = {
        text_field: tf.io.FixedLenFeature([], tf.string),
        label_field: tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        label_id = table.lookup(example[label_field])
        tf.debugging.Assert(label_id >= 0, ["label not in the labels given:", example[label_field]])
        return example[text_field], label_id

    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if cache:
        dataset = dataset.cache("" if cache is True else str(cache))
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.deterministic = deterministic
    dataset = dataset.with_options(options)
    return _batches(dataset, True, batch_size, shuffle, seed, bucket, augment, deterministic, length)
