import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data import text_classification_dataset, text_classification_dataset_from_tfrecords


def test_bucketing_yields_every_example_once_in_length_groups():
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 200, size=300)]
    labels = np.arange(300)
    seen_texts, seen_labels, spreads = [], [], []
    for text, label in text_classification_dataset(texts, labels, batch_size=16, shuffle=True, seed=1):
        lengths = [len(t) for t in text.numpy()]
        spreads.append(max(lengths) - min(lengths))
        seen_texts += [t.decode() for t in text.numpy()]
        seen_labels += label.numpy().tolist()
    assert sorted(seen_labels) == list(range(300))
    assert all(texts[i] == t for i, t in zip(seen_labels, seen_texts))
    assert np.median(spreads) < 40  # unbucketed batches of 16 would span ~180 characters


def test_same_seed_same_order():
    texts = [f"text {i}" * (i % 7 + 1) for i in range(100)]

    def order(seed):
        ds = text_classification_dataset(texts, list(range(100)), batch_size=8, shuffle=True, seed=seed)
        return [label.numpy().tolist() for _, label in ds]

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_unlabelled_batches_keep_order_without_bucketing():
    batches = list(text_classification_dataset(["a", "bb", "c"], batch_size=2, bucket=False))
    assert [t.decode() for batch in batches for t in batch.numpy()] == ["a", "bb", "c"]


def test_cardinality_is_the_number_of_batches():
    texts = ["x" * n for n in (1, 2, 3, 20, 21, 40, 41, 42, 43, 300)]
    dataset = text_classification_dataset(texts, list(range(10)), batch_size=2, shuffle=True)
    assert int(dataset.cardinality()) == len(list(dataset))


def test_augment_applies_to_every_batch():
    import tensorflow as tf

    dataset = text_classification_dataset(
        ["red shoes", "refund"], [0, 1], batch_size=2, augment=lambda text, seed: tf.strings.upper(text)
    )
    texts = [t.decode() for batch, _ in dataset for t in batch.numpy()]
    assert sorted(texts) == ["RED SHOES", "REFUND"]


@pytest.fixture()
def tfrecord_files(tmp_path):
    from ecomrec_tf.data.readers import write_tfrecord

    records = [
        {"text": f"query number {i} " + "x" * (i % 50), "label": ["a", "b", "c"][i % 3]} for i in range(120)
    ]
    for shard in range(4):
        write_tfrecord(records[shard::4], tmp_path / f"part-{shard}.tfrecord")
    return str(tmp_path / "part-*.tfrecord"), records


def _texts(dataset):
    return [t.decode() for text, _ in dataset for t in text.numpy()]


def test_tfrecord_pipeline_reads_every_record_with_its_label(tfrecord_files):
    pattern, records = tfrecord_files
    dataset = text_classification_dataset_from_tfrecords(pattern, ["a", "b", "c"], global_batch_size=16)
    pairs = sorted(
        (t.decode(), int(y)) for text, label in dataset for t, y in zip(text.numpy(), label.numpy())
    )
    assert pairs == sorted((r["text"], "abc".index(r["label"])) for r in records)


@pytest.mark.parametrize("pipelines", [2, 8])  # fewer files than pipelines: records are sharded instead
def test_input_pipelines_split_the_data_without_overlap(tfrecord_files, pipelines):
    pattern, records = tfrecord_files
    shards = []
    for index in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=index,
                                             num_replicas_in_sync=pipelines)  # fmt: skip
        dataset = text_classification_dataset_from_tfrecords(
            pattern, ["a", "b", "c"], 32, input_context=context
        )
        assert max(len(text) for text, _ in dataset) <= 32 // pipelines  # per-replica batches
        shards.append(_texts(dataset))
    assert sorted(t for shard in shards for t in shard) == sorted(r["text"] for r in records)


def test_tfrecord_pipeline_is_deterministic_by_seed_and_cacheable(tfrecord_files):
    pattern, _ = tfrecord_files

    def order(seed, cache=False):
        return _texts(text_classification_dataset_from_tfrecords(pattern, ["a", "b", "c"], 8, shuffle=True,
                                                                  seed=seed, cache=cache))  # fmt: skip

    assert order(5) == order(5) == order(5, cache=True)
    assert order(5) != order(6)


def test_unknown_label_in_a_tfrecord_names_it(tmp_path):
    from ecomrec_tf.data.readers import write_tfrecord

    write_tfrecord([{"text": "hi", "label": "teleport"}], tmp_path / "x.tfrecord")
    dataset = text_classification_dataset_from_tfrecords(str(tmp_path / "x.tfrecord"), ["a", "b"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="teleport"):
        list(dataset)
    with pytest.raises(FileNotFoundError, match="no files match"):
        text_classification_dataset_from_tfrecords(str(tmp_path / "none-*.tfrecord"), ["a"])


def test_feeds_fit_and_distribute_datasets_from_function(tfrecord_files, tiny_intent_model):
    """Labels a, b, c become ids 0-2, which the tiny model's three classes take."""
    pattern, _ = tfrecord_files
    model = tiny_intent_model
    model.compile("adam", loss="sparse_categorical_crossentropy")
    dataset = text_classification_dataset_from_tfrecords(pattern, ["a", "b", "c"], 16)
    assert np.isfinite(model.fit(dataset, epochs=1, verbose=0).history["loss"][0])
    strategy = tf.distribute.get_strategy()
    distributed = strategy.distribute_datasets_from_function(
        lambda context: text_classification_dataset_from_tfrecords(
            pattern, ["a", "b", "c"], 16, input_context=context
        )
    )
    assert sum(int(strategy.experimental_local_results(text)[0].shape[0]) for text, _ in distributed) == 120


def test_balanced_class_weights_make_every_class_weigh_the_same():
    from ecomrec_tf.data.pipeline import class_weights

    labels = [0] * 6 + [1] * 3 + [2]
    weights = class_weights(labels, num_classes=4)  # class 3 has no examples
    totals = [weights[np.array(labels) == c].sum() for c in range(3)]
    np.testing.assert_allclose(totals, [10 / 3] * 3)
    assert weights.mean() == pytest.approx(1.0)
    batches = list(
        text_classification_dataset(["a", "b", "c"], [0, 1, 1], 3, bucket=False, sample_weights=[1, 2, 3])
    )
    texts, ids, batch_weights = batches[0]
    assert batch_weights.numpy().tolist() == [1.0, 2.0, 3.0] and ids.numpy().tolist() == [0, 1, 1]


def test_batches_sorted_by_token_length_are_full_and_carry_little_padding(tiny_encoder):
    from ecomrec_tf.preprocessing import TextPreprocessor, token_lengths

    rng = np.random.default_rng(0)
    words = ["red", "running", "shoes", "refund", "parcel", "waterproof", "jacket", "xl", "unboxing"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 30, size=200)]
    preprocessor = TextPreprocessor(tiny_encoder.tokenizer, 64)

    def padding(**kwargs):
        dataset = text_classification_dataset(texts, list(range(200)), batch_size=16, shuffle=True, **kwargs)
        sizes, real, padded, seen = [], 0, 0, []
        for text, label in dataset:
            mask = preprocessor(text)["padding_mask"].numpy()
            sizes.append(len(mask))
            real, padded, seen = real + mask.sum(), padded + mask.size, seen + label.numpy().tolist()
        assert sorted(seen) == list(range(200))
        return sizes, 1 - real / padded

    sizes, sorted_padding = padding(length=token_lengths(preprocessor))
    assert sorted(sizes) == [8] + [16] * 12  # full batches but one
    _, plain_padding = padding(bucket=False)
    assert sorted_padding < 0.08 and plain_padding > 0.35, (sorted_padding, plain_padding)


def test_tokenised_once_batches_are_the_preprocessor_features_of_their_texts(tiny_encoder):
    from ecomrec_tf.preprocessing import TextPreprocessor

    rng = np.random.default_rng(1)
    words = ["red", "running", "shoes", "refund", "parcel", "waterproof", "jacket", "xl", "unboxing"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 30, size=100)]
    preprocessor = TextPreprocessor(tiny_encoder.tokenizer, 24)
    in_order = text_classification_dataset(
        texts, list(range(100)), 32, bucket=False, preprocessor=preprocessor
    )
    for index, (features, label) in enumerate(in_order):
        expected = preprocessor(tf.constant(texts[index * 32 : index * 32 + 32]))
        assert label.numpy().tolist() == list(range(index * 32, min(index * 32 + 32, 100)))
        for key in ("token_ids", "padding_mask", "segment_ids"):
            np.testing.assert_array_equal(features[key].numpy(), expected[key].numpy())

    sorted_batches = text_classification_dataset(
        texts, list(range(100)), 16, shuffle=True, preprocessor=preprocessor
    )
    assert sorted_batches.cardinality() == 7
    seen, padded = [], 0
    for features, label in sorted_batches:  # each example once, with its own label, little padding
        mask = features["padding_mask"].numpy()
        for ids, real, text_id in zip(features["token_ids"].numpy(), mask, label.numpy()):
            expected = preprocessor(tf.constant([texts[text_id]]))["token_ids"].numpy()[0]
            np.testing.assert_array_equal(ids[real], expected)
        seen, padded = seen + label.numpy().tolist(), padded + (~mask).sum()
    assert sorted(seen) == list(range(100))
    assert padded < 0.08 * sum(len(preprocessor(tf.constant([t]))["token_ids"][0]) for t in texts)

    with pytest.raises(ValueError, match="augment rewrites raw strings"):
        text_classification_dataset(texts, None, 16, augment=lambda t, s: t, preprocessor=preprocessor)
