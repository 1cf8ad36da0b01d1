"""Whole-word masking for masked-language-model pretraining, inside the graph."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class WholeWordMasker:
    """Picks whole words of tokenised text to predict, as BERT's whole-word-masking models were trained.

    In each text `mask_rate` of the words (at least one) are picked at random; every WordPiece of a
    picked word (`sneak`, `##ers`) is predicted, so the model cannot fill in `##ers` from `sneak`.
    A picked piece becomes `[MASK]` with probability 0.8, a random vocabulary token with 0.1, and
    stays with 0.1. At most `max_predictions` pieces per text are predicted.

    Args:
        vocabulary: the tokenizer's vocabulary (`tokenizer.get_vocabulary()`).
        mask_rate: share of the words to pick.
        max_predictions: pieces predicted per text; the MLM head scores only these positions.

    Call `masker(features, seed)` on a batch of `TextPreprocessor` features with a `[2]` int seed.
    It returns `(x, labels, weights)`: `x` is the features with masked `token_ids` plus
    `mask_positions` (batch, max_predictions); `labels` are the original ids at those positions and
    `weights` 1.0 where a position is real, 0.0 where it pads.
    """

    def __init__(self, vocabulary: list[str], mask_rate: float = 0.15, max_predictions: int = 20):
        if not 0 < mask_rate < 1:
            raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
        missing = [token for token in SPECIAL_TOKENS if token not in vocabulary]
        if missing:
            raise ValueError(f"the vocabulary lacks the special tokens {missing}")
        self.mask_rate = mask_rate
        self.max_predictions = max_predictions
        self.mask_token_id = vocabulary.index("[MASK]")
        self.vocabulary_size = len(vocabulary)
        special = np.zeros(len(vocabulary), bool)
        special[[vocabulary.index(token) for token in SPECIAL_TOKENS]] = True
        self.is_special = tf.constant(special)
        self.is_continuation = tf.constant([token.startswith("##") for token in vocabulary])
        # Random replacements come from ordinary tokens: not specials, not [unusedN].
        self.first_word_id = next(
            i for i, t in enumerate(vocabulary) if not (t.startswith("[") or special[i])
        )

    def __call__(self, features: dict, seed) -> tuple[dict, tf.Tensor, tf.Tensor]:
        token_ids = features["token_ids"]  # (B, T)
        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        real = features["padding_mask"] & ~tf.gather(self.is_special, token_ids)
        starts = real & ~tf.gather(self.is_continuation, token_ids)  # (B, T) first piece of each word
        word_id = tf.cumsum(tf.cast(starts, tf.int32), axis=1) * tf.cast(real, tf.int32)  # 0 for non-words

        # Pick round(rate * words) words per text (at least one): the starts with the smallest scores.
        words = tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)
        to_pick = tf.maximum(tf.cast(tf.round(self.mask_rate * tf.cast(words, tf.float32)), tf.int32), 1)
        scores = tf.where(starts, tf.random.stateless_uniform([batch, length], seeds[0]), 2.0)
        rank = tf.argsort(tf.argsort(scores, axis=1, stable=True), axis=1, stable=True)
        picked_start = starts & (rank < to_pick[:, None])
        # A piece is picked if its word's start is: look the start up by (row, word id).
        picked_word = tf.math.unsorted_segment_max(
            tf.cast(picked_start, tf.int32),
            tf.range(batch)[:, None] * (length + 1) + word_id,
            num_segments=batch * (length + 1),
        )
        picked = real & (tf.gather(picked_word, tf.range(batch)[:, None] * (length + 1) + word_id) > 0)

        # The first `max_predictions` picked positions, padded with position 0 and weight 0.
        order = tf.argsort(
            tf.cast(~picked, tf.int32) * length + tf.range(length)[None, :], axis=1, stable=True
        )
        positions = order[:, : self.max_predictions]
        weights = tf.cast(tf.gather(picked, positions, batch_dims=1), tf.float32)
        pad = self.max_predictions - tf.shape(positions)[1]
        positions = tf.pad(positions, [[0, 0], [0, pad]])
        weights = tf.pad(weights, [[0, 0], [0, pad]])
        positions = positions * tf.cast(weights > 0, positions.dtype)
        labels = tf.gather(token_ids, positions, batch_dims=1)

        # 80% [MASK], 10% a random token, 10% unchanged, on the predicted positions only.
        predicted = tf.reduce_any(
            (tf.one_hot(positions, length, dtype=tf.float32) * weights[..., None]) > 0, axis=1
        )
        draw = tf.random.stateless_uniform([batch, length], seeds[1])
        random_ids = tf.random.stateless_uniform(
            [batch, length], seeds[2], minval=self.first_word_id, maxval=self.vocabulary_size, dtype=tf.int32
        )
        masked = tf.where(predicted & (draw < 0.8), self.mask_token_id, token_ids)
        masked = tf.where(predicted & (draw >= 0.8) & (draw < 0.9), random_ids, masked)
        x = dict(features, token_ids=masked, mask_positions=tf.cast(positions, tf.int32))
        return x, labels, weights
