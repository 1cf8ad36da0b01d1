"""Text augmentation inside the tf.data graph, seeded and stateless, that never touches protected tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from ecomrec_tf.preprocessing.keyboard import KEY_NEIGHBOURS

SYNONYMS_FILE = Path(__file__).parent / "synonyms.json"
# Model numbers, sizes, SKUs, prices, codes: any token with a digit, or two capitals in a row (XL, SAVE);
# and markers such as [customer] / [agent] in dialogue contexts.
PROTECTED_PATTERN = r".*[0-9].*|.*[A-Z][A-Z].*|[#$€£].*|\[[a-z_]+\]"
OPS = ("synonym", "insertion", "deletion", "swap", "typo", "space")
RANDOM_STREAMS = (*OPS, "typo_detail", "paraphrase")  # each draws from its own stateless stream


def load_synonyms(extra: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The shipped e-commerce synonym lexicon, updated with `extra` (word -> synonyms)."""
    synonyms = {k: v for k, v in json.loads(SYNONYMS_FILE.read_text(encoding="utf-8")).items() if k[0] != "_"}
    synonyms.update(extra or {})
    return synonyms


def protected_table(words: list[str] | None) -> tf.lookup.StaticHashTable:
    """Lower-cased `words` -> 1, anything else -> 0: the words augmentation leaves alone."""
    keys = [word.lower() for word in words or []] or [""]
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.ones([len(keys)], tf.int32)), 0
    )


class TextAugmenter:
    """Augments a batch of strings in the graph; each op has its own rate (chance per word or gap).

    Ops, in order: synonym replacement from a lexicon; insertion of a synonym after a word; random
    deletion; swap of neighbouring words; keyboard typos (adjacent key, dropped, doubled or swapped
    letter); a missing space between two words. Protected tokens (`protected_words` such as your
    brands, anything with a digit, runs of capitals, prices) are never changed, dropped or typo'd,
    and no output is ever empty.

    Randomness is stateless: the same texts and the same `seed` give the same output, on any
    machine, in any order of calls.

    Args:
        rates: op name -> rate; ops left out are off. Names: synonym, insertion, deletion, swap, typo, space.
        synonyms: extra lexicon entries (word -> list of synonyms), added to the shipped lexicon.
        protected_words: words never changed, e.g. your brands' words (case-insensitive); for the
            generated shop, `data.lexicon.brand_words()`.
        paraphraser: a function over a batch of Python strings returning as many strings (an offline
            paraphrase model, where back-translation would stand); applied to `paraphrase_rate` of texts.
        token_substituter: seam for MLM-based substitution: a graph function
            `(words: RaggedTensor, seed) -> RaggedTensor`, run after the other word ops.

    Example:
        >>> augment = TextAugmenter({"synonym": 1.0})
        >>> augment(tf.constant(["cheap Nike sneakers size 10.5"]), seed=[0, 1]).shape
        TensorShape([1])
    """

    def __init__(
        self,
        rates: dict[str, float],
        synonyms: dict[str, list[str]] | None = None,
        protected_words: list[str] | None = None,
        paraphraser: Callable[[list[str]], list[str]] | None = None,
        paraphrase_rate: float = 0.0,
        token_substituter: Callable[[tf.RaggedTensor, tf.Tensor], tf.RaggedTensor] | None = None,
    ):
        unknown = set(rates) - set(OPS)
        if unknown:
            raise ValueError(f"unknown augmentation ops {sorted(unknown)}; use {', '.join(OPS)}")
        self.rates = {op: float(rates.get(op, 0.0)) for op in OPS}
        lexicon_ = load_synonyms(synonyms)
        self.synonyms = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                list(lexicon_), ["|".join(options) for options in lexicon_.values()]
            ),
            default_value="",
        )
        self.protected = protected_table(protected_words)
        self.neighbours = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(KEY_NEIGHBOURS), list(KEY_NEIGHBOURS.values())), ""
        )
        self.paraphraser = paraphraser
        self.paraphrase_rate = paraphrase_rate
        self.token_substituter = token_substituter

    # --- helpers over the flat list of words -------------------------------------------------
    def _is_protected(self, words: tf.Tensor) -> tf.Tensor:
        return tf.logical_or(
            tf.strings.regex_full_match(words, PROTECTED_PATTERN),
            self.protected.lookup(tf.strings.lower(words)) > 0,
        )

    @staticmethod
    def _uniform(seed, op: str, shape) -> tf.Tensor:
        op_seed = tf.random.experimental.stateless_fold_in(seed, RANDOM_STREAMS.index(op) + 1)
        return tf.random.stateless_uniform(shape, seed=op_seed)

    def _synonym_for(self, words: tf.Tensor, seed, op: str) -> tf.Tensor:
        """A random synonym of each word ("" where the lexicon has none)."""
        options = tf.strings.split(self.synonyms.lookup(tf.strings.lower(words)), "|")
        count = tf.cast(options.row_lengths(), tf.float32)
        pick = tf.cast(self._uniform(seed, op, tf.shape(words)) * count, tf.int64)
        pick = tf.minimum(pick, tf.maximum(options.row_lengths() - 1, 0))
        has = options.row_lengths() > 0
        flat_index = options.row_starts() + tf.where(has, pick, 0)
        return tf.where(has, tf.gather(tf.concat([options.flat_values, [""]], 0), flat_index), "")

    def _typo(self, words: tf.Tensor, seed) -> tf.Tensor:
        ok = (tf.strings.length(words, unit="UTF8_CHAR") >= 4) & tf.strings.regex_full_match(
            words, r"[^\W\d_]+"
        )
        safe = tf.where(ok, words, "xxxx")  # every position below is valid in `safe`
        length = tf.strings.length(safe, unit="UTF8_CHAR")
        u = self._uniform(seed, "typo_detail", tf.stack([tf.size(words), 2]))
        i = 1 + tf.cast(u[:, 0] * tf.cast(length - 2, tf.float32), tf.int32)  # an inner letter
        kind = tf.cast(u[:, 1] * 4, tf.int32)

        def part(start, size):
            return tf.strings.substr(safe, start, tf.broadcast_to(size, tf.shape(start)), unit="UTF8_CHAR")

        end = 1 << 20
        head, char, prev, tail = part(0 * i, i), part(i, 1), part(i - 1, 1), part(i + 1, end)
        near = self.neighbours.lookup(tf.strings.lower(char))
        near_len = tf.strings.length(near)
        pick = tf.cast(u[:, 0] * 997, tf.int32) % tf.maximum(near_len, 1)
        near_pick = tf.strings.substr(near, pick, tf.ones_like(pick))
        adjacent = tf.strings.join([head, tf.where(near_len > 0, near_pick, char), tail])
        dropped = tf.strings.join([head, tail])
        doubled = tf.strings.join([head, char, char, tail])
        swapped = tf.strings.join([part(0 * i, i - 1), char, prev, tail])
        typo = tf.gather(tf.stack([adjacent, dropped, doubled, swapped], axis=1), kind, batch_dims=1)
        return tf.where(ok, typo, words)

    # --- the augmentation --------------------------------------------------------------------
    def __call__(self, text: tf.Tensor, seed) -> tf.Tensor:
        """Augments `text` (a batch of strings) with the stateless `seed` (two integers)."""
        text = tf.convert_to_tensor(text, tf.string)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        words = tf.strings.split(text)  # (B, None)
        flat, rows = words.flat_values, words.value_rowids()
        free = tf.logical_not(self._is_protected(flat))
        n = tf.shape(flat)

        if self.rates["synonym"]:
            synonym = self._synonym_for(flat, seed, "synonym")
            replace = free & (synonym != "") & (self._uniform(seed, "synonym", n) < self.rates["synonym"])
            flat = tf.where(replace, synonym, flat)
        if self.rates["insertion"]:
            synonym = self._synonym_for(flat, seed, "insertion")
            insert = free & (synonym != "") & (self._uniform(seed, "insertion", n) < self.rates["insertion"])
            flat = tf.where(insert, tf.strings.join([flat, synonym], " "), flat)
        if self.rates["deletion"]:
            keep = ~free | (self._uniform(seed, "deletion", n) >= self.rates["deletion"])
            flat, rows, free = flat[keep], rows[keep], free[keep]
        if self.rates["swap"]:
            # Each word moves by at most one place: sort by position + a small jitter for chosen words.
            position = tf.cast(tf.range(tf.size(flat)), tf.float32)
            move = free & (self._uniform(seed, "swap", tf.shape(flat)) < self.rates["swap"])
            key = tf.cast(rows, tf.float32) * 1e6 + position + tf.where(move, 1.5, 0.0)
            order = tf.argsort(key, stable=True)
            flat, free = tf.gather(flat, order), tf.gather(free, order)
        if self.rates["typo"]:
            typo = free & (self._uniform(seed, "typo", tf.shape(flat)) < self.rates["typo"])
            flat = tf.where(typo, self._typo(flat, seed), flat)
        words = tf.RaggedTensor.from_value_rowids(flat, rows, nrows=tf.shape(text, out_type=tf.int64)[0])
        if self.token_substituter is not None:
            words = self.token_substituter(words, seed)
        if self.rates["space"]:
            # A missing space: the separator after a word becomes "" (the last word's is stripped), only
            # between two unprotected words, so "Nike" never becomes "Nikesneakers".
            flat = words.flat_values
            free = tf.logical_not(self._is_protected(flat))
            next_free = tf.concat([free[1:], [False]], 0)
            gap = free & next_free & (self._uniform(seed, "space", tf.shape(flat)) < self.rates["space"])
            sep = tf.where(gap, "", " ")
            words = words.with_flat_values(tf.strings.join([words.flat_values, sep]))
            joined = tf.strings.reduce_join(words, axis=-1)
            joined = tf.strings.regex_replace(joined, r"\s+$", "")
        else:
            joined = tf.strings.reduce_join(words, axis=-1, separator=" ")
        if self.paraphraser is not None and self.paraphrase_rate > 0:
            chosen = self._uniform(seed, "paraphrase", tf.shape(joined)) < self.paraphrase_rate
            paraphrased = tf.numpy_function(self._paraphrase, [joined], tf.string, stateful=False)
            joined = tf.where(chosen, tf.reshape(paraphrased, tf.shape(joined)), joined)
        return tf.where(tf.strings.length(tf.strings.strip(joined)) > 0, joined, text)

    def _paraphrase(self, texts):
        import numpy as np

        out = self.paraphraser([t.decode("utf-8") for t in texts])
        if len(out) != len(texts):
            raise ValueError(f"the paraphraser returned {len(out)} texts for {len(texts)}")
        return np.asarray([t.encode("utf-8") for t in out], dtype=object)
