"""Slot values (order number, product, payment method...) read from a conversation, inside the graph."""

from __future__ import annotations

import re

import keras
import tensorflow as tf

ORDER_ID = r"#\d{5,}"  # the shop's order numbers as customers quote them: "#1234567"


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
        self._canonical = {}
        for slot, values in self.vocabularies.items():
            keys = tf.constant([value.lower() for value in values])
            self._canonical[slot] = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, tf.constant(values)), default_value=""
            )
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
        lowered = tf.strings.lower(texts, encoding="utf-8")
        for slot, phrases in self.vocabularies.items():
            alternatives = "|".join(re.escape(p.lower()) for p in sorted(phrases, key=len, reverse=True))
            found = self._last_match(lowered, rf"\b(?:{alternatives})\b")
            values[slot] = self._canonical[slot].lookup(found)
        return values

    def compute_output_spec(self, texts):
        names = list(self.patterns) + list(self.vocabularies)
        return {name: keras.KerasTensor(texts.shape, dtype="string") for name in names}

    def get_config(self):
        return {**super().get_config(), "patterns": self.patterns, "vocabularies": self.vocabularies}
