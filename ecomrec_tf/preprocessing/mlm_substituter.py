"""MLM-based word substitution for `TextAugmenter`: a masked LM proposes in-context replacements."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ecomrec_tf.preprocessing.text_augmenter import PROTECTED_PATTERN, protected_table
from ecomrec_tf.preprocessing.text_preprocessor import TextPreprocessor

PLACEHOLDER = "§"  # one WordPiece token in BERT's uncased vocabulary, and rare in shop text


class MLMSubstituter:
    """Replaces a share of the words with what a masked language model predicts in their place.

    `"cheap running shoes"` may become `"cheap walking shoes"`: each unprotected, purely alphabetic
    word is picked with probability `rate` (at most `max_words` per text); the picked words are
    masked together, the MLM scores the vocabulary at each mask, and a whole-word token is sampled
    from its `top_k` best (never the original word). Digits, sizes, codes, all-caps words and brand
    names are never picked. Everything runs in the graph, so it works as a `TextAugmenter`
    `token_substituter` inside `tf.data`.

    Args:
        masked_lm: a Keras model from `token_ids`, `padding_mask`, `segment_ids`, `mask_positions`
            to vocabulary logits at those positions, e.g. `run_dir/mlm.keras` of `pretrain_mlm`.
        tokenizer: the encoder's keras-hub tokenizer.
        rate: probability that a word is picked.
        top_k: sample among this many best predictions.
        max_words: most words replaced per text.
        sequence_length: tokens the MLM sees per text.
        protected_words: words never replaced, e.g. your brands' words.
    """

    def __init__(
        self,
        masked_lm,
        tokenizer,
        rate: float = 0.15,
        top_k: int = 5,
        max_words: int = 3,
        sequence_length: int = 64,
        protected_words: list[str] | None = None,
    ):
        vocabulary = tokenizer.get_vocabulary()
        if PLACEHOLDER not in vocabulary:
            raise ValueError(f"the vocabulary lacks the placeholder token {PLACEHOLDER!r}")
        self.masked_lm = masked_lm
        self.preprocessor = TextPreprocessor(tokenizer, sequence_length)
        self.rate, self.top_k, self.max_words = rate, top_k, max_words
        self.placeholder_id = vocabulary.index(PLACEHOLDER)
        self.mask_id = vocabulary.index("[MASK]")
        self.vocabulary = tf.constant(vocabulary)
        whole_words = np.array(
            [token.isascii() and token.isalpha() and len(token) > 1 for token in vocabulary]
        )
        self.penalty = tf.constant(np.where(whole_words, 0.0, -1e9), tf.float32)
        self.token_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(vocabulary, tf.range(len(vocabulary), dtype=tf.int64)), -1
        )
        self.protected = protected_table(protected_words)

    def __call__(self, words: tf.RaggedTensor, seed) -> tf.RaggedTensor:
        flat = words.flat_values
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        eligible = (
            tf.strings.regex_full_match(flat, r"[A-Za-z]+")
            & ~tf.strings.regex_full_match(flat, PROTECTED_PATTERN)
            & (self.protected.lookup(tf.strings.lower(flat)) == 0)
        )
        picked = eligible & (tf.random.stateless_uniform(tf.shape(flat), seeds[0]) < self.rate)
        picked_rows = words.with_flat_values(tf.cast(picked, tf.int32))
        rank = tf.cumsum(picked_rows, axis=1, exclusive=True).flat_values  # index among the row's picks
        picked &= rank < self.max_words

        masked_words = words.with_flat_values(tf.where(picked, PLACEHOLDER, flat))
        features = self.preprocessor(tf.strings.reduce_join(masked_words, axis=1, separator=" "))
        is_mask = features["token_ids"] == self.placeholder_id
        length = tf.shape(is_mask)[1]
        order = tf.argsort(
            tf.cast(~is_mask, tf.int32) * length + tf.range(length)[None, :], axis=1, stable=True
        )
        positions = order[:, : self.max_words]
        valid = tf.gather(is_mask, positions, batch_dims=1)  # (B, max_words)
        features["token_ids"] = tf.where(is_mask, self.mask_id, features["token_ids"])
        logits = self.masked_lm({**features, "mask_positions": positions * tf.cast(valid, positions.dtype)})
        logits = tf.cast(logits, tf.float32) + self.penalty  # (B, P, V) whole-word tokens only

        # Never propose the word itself; then sample among the top k.
        row_ids = words.value_rowids()
        original = tf.scatter_nd(
            tf.stack([row_ids[picked], tf.cast(rank[picked], tf.int64)], axis=1),
            self.token_id.lookup(tf.strings.lower(flat[picked])),
            tf.cast(tf.shape(valid), tf.int64),
        )
        vocabulary_size = tf.shape(logits)[-1]
        same = tf.one_hot(tf.cast(original, tf.int32), vocabulary_size, on_value=-1e9, off_value=0.0)
        best, best_ids = tf.math.top_k(logits + same, k=self.top_k)
        choice = tf.random.stateless_categorical(
            tf.reshape(best, [-1, self.top_k]), 1, seeds[1], dtype=tf.int32
        )
        chosen = tf.gather(tf.reshape(best_ids, [-1, self.top_k]), choice, batch_dims=1)[:, 0]
        proposals = tf.reshape(tf.gather(self.vocabulary, chosen), tf.shape(valid))  # (B, P)

        # Picked words whose mask survived truncation take the proposal; all others stay.
        index = tf.stack([row_ids, tf.cast(rank, tf.int64)], axis=1)
        in_range = picked & (rank < tf.shape(valid)[1])
        safe_index = tf.where(in_range[:, None], index, 0)
        replace = in_range & tf.gather_nd(valid, safe_index)
        return words.with_flat_values(tf.where(replace, tf.gather_nd(proposals, safe_index), flat))
