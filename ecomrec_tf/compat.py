"""Every hook into a private API of Keras, keras-hub or TensorFlow, in one place.

The stack is pinned (see pyproject.toml), so these names are stable for us; on an upgrade, this module
is the one to check. Each hook says what public behaviour it needs and why no public API gives it.
`training/fit.py`'s `CrashSafeBackup` also overrides two methods of `keras.callbacks.BackupAndRestore`
(`_save_model`, `_load_model` and the paths they use): that is subclassing, kept with the class.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
from keras.src.backend.tensorflow import core as keras_tf_core

# Called eagerly, keras-hub tokenizers run a pure-Python path and return Python lists unless the layer
# opts out of that path and is called in this scope, as keras-hub's own preprocessors do: the
# preprocessor tokenises in it.
from keras_hub.src.utils.tensor_utils import no_convert_scope  # noqa: F401  (re-exported)


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
    """Within this block, `keras.ops.slice_update` on tensors builds `TensorStridedSliceUpdate`.

    Keras 3 implements `keras.ops.slice_update` on TensorFlow with `XlaDynamicUpdateSlice`, an XLA op
    that TF Serving's model server does not register (tensorflow/serving#2217). keras-hub's samplers
    and `CachedMultiHeadAttention` update their prompt and key/value caches with it, so a generating
    model traced as is cannot be served; this swaps in a TF core op with the same result while a
    function is traced.
    """
    original = keras_tf_core.slice_update
    keras_tf_core.slice_update = slice_update
    try:
        yield
    finally:
        keras_tf_core.slice_update = original


def apply_gradients_as_given(optimizer) -> None:
    """Makes a Keras optimizer apply gradients without summing them over replicas first.

    Under a `tf.distribute` strategy, `apply` all-reduces the gradients; the `Trainer` has already
    summed them itself (to clip by the global norm of the sum), and Keras has no public switch.
    """
    optimizer._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars
