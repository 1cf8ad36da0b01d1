import numpy as np

from ecomrec_tf.data import text_classification_dataset


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
