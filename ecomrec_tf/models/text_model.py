"""Base class for functional models whose inputs are raw strings."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def strings_to_tensors(x):
    """Numpy string arrays and lists of str -> `tf.string` tensors; anything else unchanged.

    Keras's array adapter rejects numpy unicode arrays, but takes `tf.string` tensors.
    """
    if isinstance(x, dict):
        return {key: strings_to_tensors(value) for key, value in x.items()}
    if isinstance(x, (list, tuple)) and x and all(isinstance(item, (str, bytes)) for item in x):
        return tf.constant(x, dtype=tf.string)
    if isinstance(x, np.ndarray) and x.dtype.kind in "USO":
        return tf.constant(x.astype(object) if x.dtype.kind == "U" else x, dtype=tf.string)
    return x


class TextModel(keras.Model):
    """A functional Keras model that takes raw strings in `fit`, `evaluate` and `predict`.

    Subclasses build their graph in `__init__` and call `super().__init__(inputs=..., outputs=...)`.
    Numpy string arrays and lists of strings are turned into `tf.string` tensors; `tf.data`
    datasets pass through.
    """

    def fit(self, x=None, y=None, *args, **kwargs):
        return super().fit(strings_to_tensors(x), y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(strings_to_tensors(x), y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(strings_to_tensors(x), *args, **kwargs)
