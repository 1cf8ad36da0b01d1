"""Faster training kernels for a keras-hub `BertBackbone`: the same outputs as keras-hub's own at inference.

`use_fast_kernels(backbone)` swaps these in place, each measured on the intent step (MiniLM-L6,
batch 32, bfloat16, 2 CPU cores; `python bench/profile_training.py`):

- The feed-forward GELU (tanh approximation, as BERT uses) as one function with its analytic gradient:
  autodiff through keras's `gelu(approximate=True)` keeps six intermediates and runs ~15 element-wise
  ops backward, ~14% of the step's op time.
- Layer norms with their analytic gradient instead of autodiff through `tf.nn.moments`.
- In training, on encoders at least `FUSED_MIN_WIDTH` wide: each layer norm, and the feed-forward's
  bias and GELU, forward and backward, as one XLA-compiled fusion each (`jit_compile` on the
  element-wise work only; the matmuls stay oneDNN's). TensorFlow runs element-wise ops one at a time,
  ~0.1-0.3 ms each on a batch's activations, and these two were ~20% of the step. XLA compiles a
  kernel per batch shape (0.1-0.2 s each, in the first epoch); inference keeps the unfused ops.
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

Outputs at inference are bit-identical to keras-hub's kernels on CPU, so saved models keep
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
    analytic layer-norm gradients, row gathers from the word embedding, matmul attention projections,
    dropout from random bits and, in training, fused layer norms and GELUs, in place; returns `model`.
    Layers not as keras-hub builds them (another activation, a quantised layer, an embedding with LoRA)
    keep their kernels, and so does every layer on a backend other than TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return model
    backbones = [
        layer for layer in model._flatten_layers(include_self=True)
        if isinstance(layer, keras_hub.models.BertBackbone)
    ]  # fmt: skip
    for backbone in backbones:  # only inside BERT backbones: a user's other layers stay as they are
        fuse = backbone.hidden_dim >= FUSED_MIN_WIDTH
        for layer in backbone._flatten_layers(include_self=False):
            dense = getattr(layer, "_feedforward_intermediate_dense", None)
            if dense is not None and _is_tanh_gelu(dense.activation):
                dense.activation = gelu_tanh
                if fuse and "call" not in vars(dense) and not dense.quantization_mode and dense.use_bias:
                    dense.call = _dense_gelu_call(dense)
            if isinstance(layer, keras.layers.EinsumDense) and layer.equation in _MATMUL_EQUATIONS:
                if not getattr(layer, "_matmul", False) and not layer.quantization_mode:
                    layer.call, layer._matmul = _matmul_call(layer), True
            if _is_plain_layer_norm(layer) and "call" not in vars(layer):
                layer.call = _layer_norm_call(layer)
                if fuse:
                    _pass_training(layer)
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


# Encoders at least this wide get the fused XLA kernels in training. XLA compiles each kernel once per
# batch shape (~0.1-0.2 s each); on MiniLM's 384 that is paid back within an epoch of a few hundred
# texts, on narrower encoders (the tests' tiny ones) the compilations cost more than they save.
FUSED_MIN_WIDTH = 384

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


def _is_plain_layer_norm(layer) -> bool:
    return (
        type(layer) is keras.layers.LayerNormalization
        and layer.axis in (-1, [-1])
        and layer.center
        and layer.scale
        and not layer.rms_scaling
    )


def _layer_norm_call(layer):
    def layer_norm_call(inputs, training=None):
        if training:  # one fused XLA kernel each way, on the tokens as rows
            rows = tf.reshape(inputs, [-1, inputs.shape[-1]])
            output = _fused_layer_norm(rows, layer.gamma.value, layer.beta.value, layer.epsilon)
            output = tf.reshape(output, tf.shape(inputs))
        else:
            axis = [inputs.shape.rank - 1]
            output = _layer_norm(inputs, layer.gamma.value, layer.beta.value, axis, layer.epsilon)
        return tf.cast(output, layer.compute_dtype)

    return layer_norm_call


def _pass_training(layer):
    """Makes Keras pass `training` to `layer.call` (as it does to a call declaring it): the layer-norm
    kernel fuses only in training, where its XLA compilations per shape are paid back over the run."""
    layer._call_has_training_arg = True
    layer._call_has_context_arg["training"] = True


def _layer_norm(x, gamma, beta, axis, epsilon):
    """keras's `ops.layer_normalization` over the last axis, op for op (bit-identical outputs), with the
    analytic gradient instead of autodiff through `tf.nn.moments`."""

    @tf.custom_gradient
    def layer_norm(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axis, keepdims=True)
        inv = tf.math.rsqrt(variance + epsilon)
        scale = inv * gamma
        output = tf.cast(x32 * scale + (-mean * scale + beta), x.dtype)

        def gradient(upstream):
            return _layer_norm_gradient(x, mean, inv, gamma, upstream, axis)

        return output, gradient

    return layer_norm(x, gamma, beta)


@tf.custom_gradient
def _fused_layer_norm(rows, gamma, beta, epsilon):
    """Layer norm of `rows` (N, H) for training: forward and backward each one XLA fusion."""
    output, mean, inv = _layer_norm_forward(rows, gamma, beta, epsilon)
    return output, lambda upstream: (*_layer_norm_backward(rows, mean, inv, gamma, upstream, [1]), None)


@tf.function(jit_compile=True)
def _layer_norm_forward(rows, gamma, beta, epsilon):
    x = tf.cast(rows, tf.float32)
    mean, variance = tf.nn.moments(x, [1], keepdims=True)  # (N, 1)
    inv = tf.math.rsqrt(variance + epsilon)
    return tf.cast((x - mean) * inv * gamma + beta, rows.dtype), mean, inv


def _layer_norm_gradient(x, mean, inv, gamma, upstream, axis):
    """(dx, dgamma, dbeta) of a layer norm over `axis` (the last) from its input and statistics."""
    upstream = tf.cast(upstream, tf.float32)
    normalised = (tf.cast(x, tf.float32) - mean) * inv
    scaled = upstream * gamma
    dx = inv * (
        scaled
        - tf.reduce_mean(scaled, axis, keepdims=True)
        - normalised * tf.reduce_mean(scaled * normalised, axis, keepdims=True)
    )
    reduced = list(range(upstream.shape.rank - 1))
    return (
        tf.cast(dx, x.dtype),
        tf.reduce_sum(upstream * normalised, reduced),
        tf.reduce_sum(upstream, reduced),
    )


_layer_norm_backward = tf.function(_layer_norm_gradient, jit_compile=True)


def _dense_gelu_call(dense):
    """The feed-forward's first dense layer: in training, its bias and tanh GELU forward and backward
    each one XLA fusion; otherwise Keras's own call (with `gelu_tanh`, the same numbers)."""
    plain_call = type(dense).call.__get__(dense)

    def dense_gelu_call(inputs, training=None):
        if not training or dense.lora_enabled:
            return plain_call(inputs, training=training)
        kernel = dense.kernel
        rows = tf.matmul(tf.reshape(inputs, [-1, kernel.shape[0]]), kernel)
        output = _fused_bias_gelu(rows, dense.bias)
        return tf.reshape(output, tf.concat([tf.shape(inputs)[:-1], [kernel.shape[1]]], axis=0))

    return dense_gelu_call


@tf.custom_gradient
def _fused_bias_gelu(rows, bias):
    output, one_plus = _bias_gelu_forward(rows, bias)
    return output, lambda upstream: _bias_gelu_backward(rows, bias, one_plus, upstream)


@tf.function(jit_compile=True)
def _bias_gelu_forward(rows, bias):
    x = rows + bias
    one_plus = 1.0 + tf.tanh(_SQRT_2_OVER_PI * (x + tf.cast(0.044715, x.dtype) * x * x * x))
    return 0.5 * x * one_plus, one_plus


@tf.function(jit_compile=True)
def _bias_gelu_backward(rows, bias, one_plus, upstream):
    # d/dx 0.5 x (1 + t) = 0.5 s (1 + (2 - s)(c1 x + 3 c1 c3 x^3)), s = 1 + t = 1 + tanh(c1 (x + c3 x^3))
    x = tf.cast(rows + bias, tf.float32)
    s = tf.cast(one_plus, tf.float32)
    inner = (0.5 * _SQRT_2_OVER_PI) * x + (1.5 * _SQRT_2_OVER_PI * 0.044715) * x * x * x
    dx = tf.cast(upstream, tf.float32) * s * (0.5 + (2.0 - s) * inner)
    return tf.cast(dx, rows.dtype), tf.cast(tf.reduce_sum(dx, 0), bias.dtype)


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
