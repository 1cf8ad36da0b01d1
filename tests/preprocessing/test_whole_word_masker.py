import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.preprocessing.whole_word_masker import WholeWordMasker

TEXTS = ["iphone15pro cases and unbelievably cheap sneakers", "where is my parcel", "hi"]


@pytest.fixture(scope="module")
def setup(tiny_encoder):
    vocabulary = tiny_encoder.tokenizer.get_vocabulary()
    features = TextPreprocessor(tiny_encoder.tokenizer, 32)(tf.constant(TEXTS))
    return vocabulary, features


def words_of(vocabulary, ids, mask):
    """Word index of each real token (continuation pieces join the word before)."""
    words, current = [], -1
    for token_id, real in zip(ids, mask):
        token = vocabulary[token_id]
        if not real or token in ("[CLS]", "[SEP]"):
            words.append(None)
            continue
        current += 0 if token.startswith("##") else 1
        words.append(current)
    return words


def test_every_piece_of_a_picked_word_is_predicted_and_nothing_else(setup):
    vocabulary, features = setup
    masker = WholeWordMasker(vocabulary, mask_rate=0.4, max_predictions=12)
    for seed in range(20):
        x, labels, weights = masker(features, [seed, 7])
        for row in range(len(TEXTS)):
            ids = features["token_ids"][row].numpy()
            words = words_of(vocabulary, ids, features["padding_mask"][row].numpy())
            positions = x["mask_positions"][row].numpy()[weights[row].numpy() > 0]
            assert len(positions) >= 1  # at least one word, even in "hi"
            picked_words = {words[p] for p in positions}
            assert None not in picked_words  # never [CLS], [SEP] or padding
            expected = [i for i, w in enumerate(words) if w in picked_words]
            assert sorted(positions) == expected  # whole words: all their pieces
            np.testing.assert_array_equal(labels[row].numpy()[: len(positions)], ids[positions])
            unpicked = [i for i in range(len(ids)) if i not in set(positions)]
            np.testing.assert_array_equal(x["token_ids"][row].numpy()[unpicked], ids[unpicked])


def test_mask_rates_follow_80_10_10(setup):
    vocabulary, features = setup
    masker = WholeWordMasker(vocabulary, mask_rate=0.5, max_predictions=12)
    mask_id = vocabulary.index("[MASK]")
    outcomes = {"mask": 0, "same": 0, "other": 0}
    for seed in range(300):
        x, labels, weights = masker(features, [seed, 1])
        positions = x["mask_positions"].numpy()
        new = np.take_along_axis(x["token_ids"].numpy(), positions, axis=1)[weights.numpy() > 0]
        old = labels.numpy()[weights.numpy() > 0]
        outcomes["mask"] += int((new == mask_id).sum())
        outcomes["same"] += int((new == old).sum())
        outcomes["other"] += int(((new != mask_id) & (new != old)).sum())
    total = sum(outcomes.values())
    assert abs(outcomes["mask"] / total - 0.8) < 0.03
    assert abs(outcomes["same"] / total - 0.1) < 0.03


def test_it_is_deterministic_per_seed_and_caps_predictions(setup):
    vocabulary, features = setup
    masker = WholeWordMasker(vocabulary, mask_rate=0.9, max_predictions=3)
    a, b = masker(features, [1, 2]), masker(features, [1, 2])
    np.testing.assert_array_equal(a[0]["token_ids"], b[0]["token_ids"])
    assert a[0]["mask_positions"].shape == (3, 3) and float(tf.reduce_max(tf.reduce_sum(a[2], 1))) <= 3
    with pytest.raises(ValueError, match="mask_rate"):
        WholeWordMasker(vocabulary, mask_rate=1.5)
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        WholeWordMasker(["a", "b"])
