"""Faster training kernels for a keras-hub `BertBackbone`: the same outputs as keras-hub's own at inference.

`use_fast_kernels(backbone)` swaps four things in place, each measured on the intent step (MiniLM-L6,
batch 32, bfloat16, 2 CPU cores; `python bench/profile_training.py`):

- The feed-forward GELU (tanh approximation, as BERT uses) as one function with its analytic gradient:
  autodiff through keras's `gelu(approximate=True)` keeps six intermediates and runs ~15 element-wise
  ops backward, ~14% of the step's op time.
- The word-embedding lookup as a gather on the variable (`ResourceGather`) instead of a read of the
  whole table then a gather. Once an optimizer updates the table's rows in place (the lazy sparse
  update of `training.LayerwiseAdamW`), TensorFlow copies the whole table on every dense read:
  47 MB per step for MiniLM's 30,522 x 384 words.
- The attention's query, key, value and output projections (`EinsumDense`) as one 2-D `MatMul` on
  flattened tokens instead of an `Einsum`: the same product (bit-identical here), whose gradients run
  as plain matmuls; the einsums' backward pass took as long as the feed-forward matmuls' at half the
  FLOPs.
- Dropout masks from raw random bits (`StatelessRandomUniformFullIntV2`, kept where the bits are at least
  the rate's share of the 32-bit range) instead of uniform floats in the activations' dtype: the same
  Bernoulli masks in distribution (finer-grained than a bfloat16 uniform), from a cheaper generator.

Outputs without dropout (inference) are bit-identical to keras-hub's kernels on CPU, so saved models keep
keras-hub's layers and a reloaded model predicts exactly the same (it trains with keras's kernels unless
it is reloaded through `keras.saving.load_model` after `import ecomrec_tf`, which applies these).
"""

from __future__ import annotations

import math

import keras
import keras_hub
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


def use_fast_kernels(model: keras.Model) -> keras.Model:
    """Switches the keras-hub BERT backbones in `model` (or `model` itself, a backbone) to `gelu_tanh`,
    row gathers from the word embedding, matmul attention projections and dropout from random bits, in
    place; returns `model`.
    Layers not as keras-hub builds them (another activation, a quantised layer, an embedding with LoRA)
    keep their kernels, and so does every layer on a backend other than TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return model
    backbones = [
        layer for layer in model._flatten_layers(include_self=True)
        if isinstance(layer, keras_hub.models.BertBackbone)
    ]  # fmt: skip
    for backbone in backbones:  # only inside BERT backbones: a user's other layers stay as they are
        for layer in backbone._flatten_layers(include_self=False):
            dense = getattr(layer, "_feedforward_intermediate_dense", None)
            if dense is not None and _is_tanh_gelu(dense.activation):
                dense.activation = gelu_tanh
            if isinstance(layer, keras.layers.EinsumDense) and layer.equation in _MATMUL_EQUATIONS:
                if not getattr(layer, "_matmul", False) and not layer.quantization_mode:
                    layer.call, layer._matmul = _matmul_call(layer), True
            if (
                type(layer) is keras.layers.Dropout
                and layer.noise_shape is None
                and "call" not in vars(layer)
            ):
                layer.call = _bits_dropout_call(layer)
        embedding = backbone.token_embedding
        if not getattr(embedding, "_gathers", False):
            embedding.call, embedding._gathers = _gathering_call(embedding, embedding.call), True
    return model


# keras MultiHeadAttention's projections: equation -> leading kernel axes the input contracts.
_MATMUL_EQUATIONS = {"abc,cde->abde": 1, "abcd,cde->abe": 2}


def _matmul_call(layer):
    contracted = _MATMUL_EQUATIONS[layer.equation]

    def matmul_call(inputs, training=None):
        kernel = layer.kernel  # with LoRA's factors when enabled, as EinsumDense's own call
        inner = math.prod(kernel.shape[:contracted])
        x = tf.matmul(tf.reshape(inputs, [-1, inner]), tf.reshape(kernel, [inner, -1]))
        x = tf.reshape(x, tf.concat([tf.shape(inputs)[:2], kernel.shape[contracted:]], axis=0))
        if layer.bias is not None:
            x = tf.add(x, layer.bias)
        return x if layer.activation is None else layer.activation(x)

    return matmul_call


def _bits_dropout_call(layer):
    def bits_dropout_call(inputs, training=False):
        if not training or layer.rate == 0:
            return inputs
        seed = tf.cast(layer.seed_generator.next(), tf.int32)
        bits = tf.random.stateless_uniform(tf.shape(inputs), seed, minval=None, maxval=None, dtype=tf.int32)
        keep = bits >= int(-(2**31) + layer.rate * 2**32)  # P(keep) = 1 - rate
        return tf.where(keep, inputs * tf.cast(1 / (1 - layer.rate), inputs.dtype), tf.zeros_like(inputs))

    return bits_dropout_call


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
