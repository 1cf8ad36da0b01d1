"""Raw strings -> `token_ids`, `padding_mask`, `segment_ids`, inside the TensorFlow graph."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from ecomrec_tf.compat import no_convert_scope


def normalize_text(text: tf.Tensor) -> tf.Tensor:
    """Hugging Face `BertNormalizer` (uncased) on a string tensor.

    Invalid UTF-8 bytes become U+FFFD and are then dropped, control and format characters are
    dropped, whitespace becomes spaces, text is lowercased (per character, like Python's
    `str.lower`, not NFKC case folding: `ß`, `ﬁ` and full-width letters stay as Hugging Face keeps
    them) and accents are stripped (NFD, then marks removed). Known difference: a final capital
    sigma lowers to `σ`, where Python gives `ς`.
    """
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    text = tf.strings.regex_replace(text, r"[\t\n\r]", " ")
    text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf_text.normalize_utf8(text, "NFD")
    return tf.strings.regex_replace(text, r"\p{Mn}", "")


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class TextPreprocessor(keras.layers.Layer):
    """Tokenises raw strings for a BERT encoder, padded to the longest text in the batch.

    Padding to the batch's longest text rather than to `sequence_length` is what keeps short shop
    queries cheap: a batch of 8-token queries costs 10 positions, not 128.

    Args:
        tokenizer: keras-hub `BertTokenizer` (no normalisation of its own).
        sequence_length: most tokens per text, `[CLS]` and `[SEP]` included.
        truncate: which side of a longer text is cut: `"end"` (default), or `"start"` for
            conversations, whose latest turn (at the end) matters most.

    Returns (from `call`):
        Dict of `token_ids` (int32), `padding_mask` (bool), `segment_ids` (int32), each
        `(batch, min(longest, sequence_length))`.

    Example:
        >>> from ecomrec_tf.encoders import load_encoder
        >>> pre = TextPreprocessor(load_encoder("tiny").tokenizer, sequence_length=16)
        >>> pre(tf.constant(["red shoes", "where is my order"]))["token_ids"].shape
        TensorShape([2, 6])
    """

    def __init__(self, tokenizer, sequence_length: int = 128, truncate: str = "end", **kwargs):
        super().__init__(**kwargs)
        if sequence_length < 3:
            raise ValueError(f"sequence_length must be at least 3, got {sequence_length}")
        if truncate not in ("end", "start"):
            raise ValueError(f"truncate must be 'end' or 'start', got {truncate!r}")
        self.truncate = truncate
        tokenizer._allow_python_workflow = False
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.built = True

    def call(self, text):
        return self.features(self.token_ids(text))

    def token_ids(self, text) -> tf.RaggedTensor:
        """Raw strings -> each text's ids, `[CLS]` and `[SEP]` included, at most `sequence_length`
        (ragged int32): what `features` pads. Tokenising once (e.g. `data.text_classification_dataset(
        preprocessor=...)`) then padding each batch keeps the tokenizer out of every epoch."""
        text = tf.convert_to_tensor(text)
        if text.dtype != tf.string:
            raise TypeError(f"TextPreprocessor takes strings, got {text.dtype.name}")
        text = tf.reshape(text, [-1])
        with no_convert_scope():
            pieces = self.tokenizer(normalize_text(text))
        keep = self.sequence_length - 2
        pieces = pieces[:, :keep] if self.truncate == "end" else pieces[:, -keep:]
        ids = tf_text.pad_along_dimension(
            pieces,
            axis=-1,
            left_pad=tf.constant([self.tokenizer.cls_token_id], pieces.dtype),
            right_pad=tf.constant([self.tokenizer.sep_token_id], pieces.dtype),
        )
        return tf.cast(ids, tf.int32)

    def features(self, ids: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        """`token_ids` output -> the encoder's inputs, padded to the longest text of the batch."""
        token_ids = ids.to_tensor(self.tokenizer.pad_token_id)
        padding_mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1])
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "segment_ids": tf.zeros_like(token_ids, dtype="int32"),
        }

    def compute_output_spec(self, text):
        shape = (text.shape[0] if text.shape else None, None)
        return {
            "token_ids": keras.KerasTensor(shape, dtype="int32"),
            "padding_mask": keras.KerasTensor(shape, dtype="bool"),
            "segment_ids": keras.KerasTensor(shape, dtype="int32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "sequence_length": self.sequence_length,
                "truncate": self.truncate,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


def token_lengths(preprocessor: TextPreprocessor):
    """`texts -> tokens each` (`[CLS]` and `[SEP]` included, at most `sequence_length`): the key by
    which `data.text_classification_dataset(length=...)` groups texts that pad alike."""

    def length(texts: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.cast(preprocessor(texts)["padding_mask"], tf.int32), axis=1)

    return length


def fitting_sequence_length(
    tokenizer, texts, percentile: float = 95.0, limit: int = 512, batch_size: int = 1024
) -> tuple[int, float]:
    """The sequence length that holds `percentile`% of `texts` whole (`[CLS]` and `[SEP]` included),
    rounded up to a multiple of 8 and at most `limit`, and the share of `texts` longer than it.

    Real texts vary: tweets need ~64 tokens, reviews and reports several hundred. Choosing from the
    data keeps short texts cheap and long ones readable.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("fitting_sequence_length needs at least one text")
    preprocessor = TextPreprocessor(tokenizer, sequence_length=1 << 20)
    lengths = np.concatenate([
        np.sum(preprocessor(tf.constant(texts[start : start + batch_size]))["padding_mask"].numpy(), axis=1)
        for start in range(0, len(texts), batch_size)
    ])  # fmt: skip
    length = int(min(limit, max(8, -(-np.percentile(lengths, percentile) // 8) * 8)))
    return length, float(np.mean(lengths > length))
