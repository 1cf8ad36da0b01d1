"""Slot values (order number, product, payment method...) read from a conversation, inside the graph."""

from __future__ import annotations

import re

import keras
import tensorflow as tf
import tensorflow_text as tf_text

ORDER_ID = r"#\d{5,}"  # the shop's order numbers as customers quote them: "#1234567"
# Phrases are matched word by word; punctuation between words does not count. Python's \w is Unicode-aware,
# RE2's is ASCII-only: the graph spells out letters and digits.
_SEPARATORS = r"[^\p{L}\p{N}_'-]+"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w'-]+", " ", text.lower()).split())


def flat_rows(ragged: tf.RaggedTensor) -> tf.Tensor:
    """A `(rows, 1)` int32 column of ones, one per row of `ragged`."""
    return tf.ones(tf.stack([ragged.nrows(out_type=tf.int32), 1]), tf.int32)


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class SlotExtractor(keras.layers.Layer):
    """Finds each slot's value in a text: the last match of a regular expression or of a known phrase.

    Vetted replies are filled only with what this layer finds, never with invented values. A
    `patterns` slot takes the last match of its RE2 expression, as written. A `vocabularies` slot
    takes the last mention of one of its phrases (case-insensitive, whole words, the longest phrase
    where several match at one place) and returns the phrase as the vocabulary spells it.

    Args:
        patterns: slot name -> RE2 regular expression, e.g. `{"order_id": ORDER_ID}`.
        vocabularies: slot name -> known phrases, e.g. `{"product": catalog product names}`.

    Returns (from `call(texts)`):
        Dict of slot name -> string tensor shaped like `texts`, "" where a text has no value.

    Example:
        >>> extractor = SlotExtractor({"order_id": ORDER_ID}, {"payment": ["PayPal", "visa card"]})
        >>> out = extractor(tf.constant(["paid with paypal for #1234567"]))
        >>> out["order_id"].numpy()[0], out["payment"].numpy()[0]
        (b'#1234567', b'PayPal')
    """

    def __init__(
        self,
        patterns: dict[str, str] | None = None,
        vocabularies: dict[str, list[str]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patterns = dict(patterns or {})
        self.vocabularies = {slot: sorted(set(values)) for slot, values in (vocabularies or {}).items()}
        overlap = set(self.patterns) & set(self.vocabularies)
        if overlap:
            raise ValueError(f"slots {sorted(overlap)} have both a pattern and a vocabulary")
        for slot, values in self.vocabularies.items():
            if not values or not all(value.strip() for value in values):
                raise ValueError(f"vocabulary of slot {slot!r} must be non-empty phrases")
        self._canonical, self._longest = {}, {}
        for slot, values in self.vocabularies.items():
            keys = [_words(value) for value in values]
            self._canonical[slot] = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)), default_value=""
            )
            self._longest[slot] = max(len(key.split()) for key in keys)
        self.built = True

    def _last_match(self, texts: tf.Tensor, expression: str) -> tf.Tensor:
        # Greedy `.*` before the group makes RE2 capture the last match.
        found = tf.strings.regex_full_match(texts, f"(?s).*(?:{expression}).*")
        value = tf.strings.regex_replace(texts, f"(?s).*({expression}).*", r"\1", replace_global=False)
        return tf.where(found, value, "")

    def call(self, texts):
        texts = tf.convert_to_tensor(texts, tf.string)
        texts = tf.strings.unicode_transcode(
            texts, "UTF-8", "UTF-8", errors="replace"
        )  # RE2 needs valid UTF-8
        values = {slot: self._last_match(texts, pattern) for slot, pattern in self.patterns.items()}
        flat = tf.reshape(texts, [-1])
        words = tf.strings.split(
            tf.strings.strip(
                tf.strings.regex_replace(tf.strings.lower(flat, encoding="utf-8"), _SEPARATORS, " ")
            )
        )  # (texts, words), ragged
        for slot in self.vocabularies:
            values[slot] = tf.reshape(self._last_phrase(words, slot), tf.shape(texts))
        return values

    def _last_phrase(self, words: tf.RaggedTensor, slot: str) -> tf.Tensor:
        """The vocabulary phrase starting last in each text (the longest one at that word), or ""."""
        table, longest = self._canonical[slot], self._longest[slot]
        best_rank, best_value = None, None
        for n in range(1, longest + 1):
            grams = tf_text.ngrams(words, n, reduction_type=tf_text.Reduction.STRING_JOIN)  # (texts, None)
            found = table.lookup(grams)  # "" where the n-gram is not a phrase
            starts = tf.ragged.range(tf.cast(found.row_lengths(), tf.int32))
            rank = tf.ragged.map_flat_values(
                lambda start, value, n=n: tf.where(
                    tf.strings.length(value) > 0, start * (longest + 1) + n, -1
                ),
                starts,
                found,
            )
            rank = tf.concat([rank.to_tensor(-1), -tf.ones_like(flat_rows(found))], axis=1)  # never empty
            found = tf.concat([found.to_tensor(""), tf.fill(tf.shape(flat_rows(found)), "")], axis=1)
            pick = tf.argmax(rank, axis=-1, output_type=tf.int32)
            rank_n, value_n = tf.gather(rank, pick, batch_dims=1), tf.gather(found, pick, batch_dims=1)
            if best_rank is None:
                best_rank, best_value = rank_n, value_n
            else:
                better = rank_n > best_rank
                best_rank, best_value = (
                    tf.where(better, rank_n, best_rank),
                    tf.where(better, value_n, best_value),
                )
        return best_value

    def compute_output_spec(self, texts):
        names = list(self.patterns) + list(self.vocabularies)
        return {name: keras.KerasTensor(texts.shape, dtype="string") for name in names}

    def get_config(self):
        return {**super().get_config(), "patterns": self.patterns, "vocabularies": self.vocabularies}
