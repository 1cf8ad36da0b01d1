"""Learned embeddings of string ids (users, items, categories) that tolerate ids never seen in training."""

from __future__ import annotations

import keras
from keras import ops

NO_ID = "\x1f"  # the placeholder vocabulary of an untrained layer: no real id matches it


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class IdEmbedding(keras.layers.Layer):
    """String ids -> vectors, through a `StringLookup` vocabulary and an `Embedding` table.

    Index 0 is the empty id (padding, an anonymous user), index 1 every id outside the vocabulary.
    Build the vocabulary from ids seen at least twice in training (`set_vocabulary`): the rarer ones
    then train the out-of-vocabulary row, so an id new at serving time gets what a rarely seen id is
    worth, not an untrained vector. The vocabulary is a hash table (millions of ids are fine) saved
    as an asset of the `.keras` file, not in its config. Each call also returns a scalar bias per id
    (`bias_dim` 1), for factorisation-machine style wide terms.

    Args:
        vocabulary_size: ids in the vocabulary (the table has 2 more rows).
        dim: embedding size.
        l2: weight of the L2 penalty on the embeddings looked up in a training batch.

    Returns (from `call(ids)`): `(vectors ids.shape + (dim,), biases ids.shape)`.
    """

    def __init__(self, vocabulary_size: int, dim: int = 32, l2: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.dim = dim
        self.l2 = l2
        self.lookup = keras.layers.StringLookup(mask_token="", num_oov_indices=1, name="lookup")
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size + 2, dim, embeddings_initializer=keras.initializers.RandomNormal(0, 0.01)
        )
        self.bias = keras.layers.Embedding(self.vocabulary_size + 2, 1, embeddings_initializer="zeros")
        self.set_vocabulary([])  # every id out of vocabulary until trained on data

    def set_vocabulary(self, ids) -> None:
        """Sets the vocabulary (distinct non-empty ids, at most `vocabulary_size` of them)."""
        ids = [str(i) for i in dict.fromkeys(ids) if str(i)]
        if len(ids) > self.vocabulary_size:
            raise ValueError(f"{len(ids)} ids for a vocabulary of {self.vocabulary_size}")
        self.lookup.set_vocabulary(ids or [NO_ID])

    def build(self, input_shape):
        self.embedding.build(tuple(input_shape))
        self.bias.build(tuple(input_shape))

    def call(self, ids, training=None):
        index = self.lookup(ids)
        vectors = self.embedding(index)
        if training and self.l2:
            self.add_loss(self.l2 * ops.mean(ops.sum(ops.square(vectors), axis=-1)))
        return vectors, ops.squeeze(self.bias(index), -1)

    def compute_output_spec(self, ids, training=None):
        shape = tuple(ids.shape)
        return keras.KerasTensor(shape + (self.dim,), "float32"), keras.KerasTensor(shape, "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "dim": self.dim,
            "l2": self.l2,
        }
