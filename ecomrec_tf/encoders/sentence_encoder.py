"""Raw strings of any shape -> one mean-pooled BERT vector per string, each distinct string encoded once."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.progress import progress_bar
from ecomrec_tf.serialization import deserialize_objects, serialize_objects


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class SentenceEncoder(keras.layers.Layer):
    """Encodes a string tensor of any shape into vectors of the same shape plus `hidden_dim`.

    Texts are tokenised by `preprocessor`, run through `backbone` and mean-pooled over their tokens,
    as sentence-transformers checkpoints (MiniLM) were trained to be used. Each distinct string in
    the batch is encoded once: a user's history, repeated for each of 100 candidates, costs the
    encoder one pass per item, not 100.

    Args:
        backbone: keras-hub `BertBackbone`; frozen unless `trainable`.
        preprocessor: `TextPreprocessor` for the backbone's vocabulary.
        trainable: whether the backbone trains with the model that uses this layer.

    Returns (from `call(texts)`):
        `(vectors, present)`: float32 vectors `texts.shape + (hidden_dim,)`, and a boolean
        `texts.shape` that is False where a text is empty or whitespace (history padding, no query).

    Example:
        >>> from ecomrec_tf.encoders import load_encoder
        >>> from ecomrec_tf.preprocessing import TextPreprocessor
        >>> encoder = load_encoder("tiny")
        >>> layer = SentenceEncoder(encoder.backbone, TextPreprocessor(encoder.tokenizer, 32))
        >>> vectors, present = layer(tf.constant([["red shoes", ""], ["red shoes", "blue hat"]]))
        >>> vectors.shape, present.numpy().tolist()
        (TensorShape([2, 2, 64]), [[True, False], [True, True]])
    """

    def __init__(self, backbone, preprocessor, trainable: bool = False, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.backbone.trainable = trainable
        self.pooling = keras.layers.GlobalAveragePooling1D()
        self.hidden_dim = backbone.hidden_dim

    def call(self, texts, training=None):
        """`texts`: a string tensor, or a list of them, encoded in one backbone pass (one graph, and
        a text found in several is encoded once); a list gives a list of `(vectors, present)`."""
        if not isinstance(texts, (list, tuple)):
            return self.call([texts], training)[0]
        flat = [tf.reshape(part, [-1]) for part in texts]
        unique, index = tf.unique(tf.concat(flat, axis=0))
        features = self.preprocessor(unique)
        tokens = self.backbone(features, training=training)["sequence_output"]
        vectors = tf.gather(tf.cast(self.pooling(tokens, mask=features["padding_mask"]), tf.float32), index)
        outputs = []
        for part, vectors_of_part in zip(texts, tf.split(vectors, [tf.size(f) for f in flat])):
            shape = tf.concat([tf.shape(part), [self.hidden_dim]], axis=0)
            present = tf.strings.length(tf.strings.strip(part)) > 0
            outputs.append((tf.reshape(vectors_of_part, shape), present))
        return outputs

    def compute_output_spec(self, texts, training=None):
        if isinstance(texts, (list, tuple)):
            return [self.compute_output_spec(part) for part in texts]
        return (
            keras.KerasTensor(tuple(texts.shape) + (self.hidden_dim,), dtype="float32"),
            keras.KerasTensor(tuple(texts.shape), dtype="bool"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            **serialize_objects(backbone=self.backbone, preprocessor=self.preprocessor),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_objects(config, "backbone", "preprocessor"))


def encode_in_batches(
    function, texts: list[str], batch_size: int = 128, progress: bool = False, description: str = "encoding"
):
    """`function` (strings -> a tensor, or a dict of tensors, e.g. a `tf.function`) over `texts` in
    batches of similar length (little padding): numpy arrays (or a dict of them), rows back in input
    order; a tqdm bar when `progress`."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    parts = []
    for start in progress_bar(
        range(0, len(texts), batch_size), desc=description, unit="batch", disable=not progress, leave=False
    ):
        batch = function(tf.constant([texts[i] for i in order[start : start + batch_size]]))
        parts.append(tf.nest.map_structure(lambda tensor: tensor.numpy(), batch))
    inverse = np.argsort(order)
    return tf.nest.map_structure(lambda *arrays: np.concatenate(arrays)[inverse], *parts)
