"""Keras's `slice_update` with TensorFlow core ops, so graphs that use it load in stock TF Serving.

Keras 3 implements `keras.ops.slice_update` on TensorFlow with `XlaDynamicUpdateSlice`, an XLA op
that TF Serving's model server does not register (tensorflow/serving#2217). keras-hub's samplers and
`CachedMultiHeadAttention` update their prompt and key/value caches with it, so a generating model
traced as is cannot be served. `core_slice_update()` swaps in `TensorStridedSliceUpdate`, a TF core
op with the same result, while a function is traced.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
from keras.src.backend.tensorflow import core as keras_tf_core


def slice_update(inputs, start_indices, updates):
    """`inputs` with `updates` written at `start_indices` (one index per axis), as
    `keras.ops.slice_update`; the update must fit (XLA's version would shift it inside)."""
    inputs = tf.convert_to_tensor(inputs)
    updates = tf.cast(updates, inputs.dtype)
    if isinstance(start_indices, (list, tuple)):
        start_indices = tf.stack([tf.cast(i, tf.int32) for i in start_indices])
    begin = tf.cast(start_indices, tf.int32)
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=inputs, begin=begin, end=begin + tf.shape(updates), strides=tf.ones_like(begin), value=updates
    )


@contextlib.contextmanager
def core_slice_update():
    """Within this block, `keras.ops.slice_update` on tensors builds `TensorStridedSliceUpdate`."""
    original = keras_tf_core.slice_update
    keras_tf_core.slice_update = slice_update
    try:
        yield
    finally:
        keras_tf_core.slice_update = original
