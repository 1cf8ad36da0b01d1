"""Faster training kernels for a keras-hub `BertBackbone`, same numbers as keras-hub's own.

`use_fast_kernels(backbone)` swaps two things in place, both measured on the intent step (MiniLM-L6,
batch 32, bfloat16, 2 CPU cores; `python bench/profile_training.py`):

- The feed-forward GELU (tanh approximation, as BERT uses) as one function with its analytic gradient:
  autodiff through keras's `gelu(approximate=True)` keeps six intermediates and runs ~15 element-wise
  ops backward, ~14% of the step's op time.
- The word-embedding lookup as a gather on the variable (`ResourceGather`) instead of a read of the
  whole table then a gather. Once an optimizer updates the table's rows in place (the lazy sparse
  update of `training.LayerwiseAdamW`), TensorFlow copies the whole table on every dense read:
  47 MB per step for MiniLM's 30,522 x 384 words.

Saved models keep keras-hub's layers (a reloaded model computes the same, with keras's kernels).
"""

from __future__ import annotations

import keras
import tensorflow as tf

_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi), as tf.nn.gelu writes it


@tf.custom_gradient
def gelu_tanh(x):
    """`keras.activations.gelu(x, approximate=True)` with its analytic gradient: the forward pass is
    `tf.nn.gelu`'s, op for op (bit-identical outputs, so a model reloaded with keras's GELU predicts
    exactly the same), and only `x` and the tanh are kept for the backward pass."""
    coeff = tf.cast(0.044715, x.dtype)
    tanh = tf.tanh(_SQRT_2_OVER_PI * (x + coeff * tf.pow(x, 3)))

    def gradient(upstream):
        slope = 0.5 * (1.0 + tanh) + 0.5 * x * (1.0 - tanh * tanh) * _SQRT_2_OVER_PI * (
            1.0 + 3 * coeff * x * x
        )
        return upstream * slope

    return 0.5 * x * (1.0 + tanh), gradient


def use_fast_kernels(backbone: keras.Model) -> keras.Model:
    """Switches a keras-hub BERT backbone to `gelu_tanh` and to row gathers from the word embedding, in
    place; returns it. A no-op for a layer that is not as keras-hub builds it (another activation, an
    embedding with LoRA or quantised), and for a backend other than TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return backbone
    for layer in backbone._flatten_layers(include_self=False):
        dense = getattr(layer, "_feedforward_intermediate_dense", None)
        if dense is not None and _is_tanh_gelu(dense.activation):
            dense.activation = gelu_tanh
    embedding = getattr(backbone, "token_embedding", None)
    if embedding is not None and not getattr(embedding, "_gathers_rows", False):
        embedding.call = _gathering_call(embedding, embedding.call)
        embedding._gathers_rows = True
    return backbone


def _is_tanh_gelu(activation) -> bool:
    probe = tf.constant([-3.0, -1.0, 0.5, 2.0])
    expected = keras.activations.gelu(probe, approximate=True)
    return bool(tf.reduce_all(tf.abs(activation(probe) - expected) < 1e-6))


def _gathering_call(embedding, call):
    def gathering_call(inputs, *args, **kwargs):
        if args or kwargs.get("reverse") or embedding.lora_enabled or embedding.quantization_mode:
            return call(inputs, *args, **kwargs)
        ids = inputs if inputs.dtype in (tf.int32, tf.int64) else tf.cast(inputs, tf.int32)
        return tf.cast(tf.gather(embedding.embeddings.value, ids), embedding.compute_dtype)

    return gathering_call
