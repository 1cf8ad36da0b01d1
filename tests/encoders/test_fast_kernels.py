import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import fast_kernels, load_encoder
from ecomrec_tf.encoders.fast_kernels import _layer_norm_call, gelu_tanh, use_fast_kernels


def test_gelu_tanh_matches_keras_gelu_and_its_gradient():
    x = tf.constant(np.linspace(-6, 6, 241), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = gelu_tanh(x), keras.activations.gelu(x, approximate=True)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())  # reloaded models predict alike
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy(), atol=1e-5)
    half = tf.cast(x, tf.bfloat16)  # under mixed precision the activation runs in bfloat16
    np.testing.assert_array_equal(
        gelu_tanh(half).numpy(), keras.activations.gelu(half, approximate=True).numpy()
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_layer_norm_kernel_matches_keras_and_its_gradients(policy):
    norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype=policy)
    x = tf.cast(tf.random.stateless_normal([3, 5, 48], [1, 2]) * 3 + 1, norm.compute_dtype)
    norm.build(x.shape)
    norm.gamma.assign(tf.random.stateless_normal([48], [3, 4]))
    norm.beta.assign(tf.random.stateless_normal([48], [5, 6]))
    fast = keras.layers.LayerNormalization.from_config(norm.get_config())
    fast.build(x.shape)
    fast.set_weights(norm.get_weights())
    fast.call = _layer_norm_call(fast)
    results = []
    for layer in (fast, norm):
        with tf.GradientTape() as tape:
            tape.watch(x)
            output = layer(x)
            loss = tf.reduce_sum(tf.cast(output, tf.float32) * tf.sin(tf.cast(output, tf.float32)))
        gradients = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        results.append([output] + [tf.cast(g, tf.float32).numpy() for g in gradients])
    np.testing.assert_array_equal(results[0][0].numpy(), results[1][0].numpy())  # bit-identical outputs
    for ours, theirs in zip(results[0][1:], results[1][1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_fast_backbone_computes_and_differentiates_as_keras_hubs(tiny_encoder):
    fast = load_encoder("tiny").backbone
    plain = keras_hub.models.BertBackbone.from_config(fast.get_config())
    plain.set_weights(tiny_encoder.backbone.get_weights())
    fast.set_weights(tiny_encoder.backbone.get_weights())
    ids = tf.constant([[101, 2417, 6007, 102, 0], [101, 2417, 2417, 4167, 102]])
    inputs = {"token_ids": ids, "padding_mask": ids != 0, "segment_ids": tf.zeros_like(ids)}
    results = []
    for backbone in (fast, plain):
        with tf.GradientTape() as tape:
            output = backbone(inputs, training=False)["sequence_output"]
            loss = tf.reduce_sum(output * tf.sin(output))
        variables = [variable.value for variable in backbone.trainable_variables]
        gradients = tape.gradient(loss, variables, unconnected_gradients="zero")
        results.append((output, [tf.convert_to_tensor(g) for g in gradients]))
    (fast_out, fast_grads), (plain_out, plain_grads) = results
    np.testing.assert_allclose(fast_out.numpy(), plain_out.numpy(), atol=1e-5)
    for variable, a, b in zip(fast.trainable_variables, fast_grads, plain_grads):
        atol = max(1e-5, 1e-6 * float(np.abs(b.numpy()).max()))  # cancelling sums round with their terms
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=atol, err_msg=variable.path)


def test_fused_training_kernels_compute_and_differentiate_as_keras_hubs(tiny_encoder, monkeypatch):
    monkeypatch.setattr(fast_kernels, "FUSED_MIN_WIDTH", 0)  # the tiny encoder is below the width
    config = {**tiny_encoder.backbone.get_config(), "dropout": 0.0}  # training outputs comparable
    fast = use_fast_kernels(keras_hub.models.BertBackbone.from_config(config))
    plain = keras_hub.models.BertBackbone.from_config(config)
    for backbone in (fast, plain):
        backbone.set_weights(tiny_encoder.backbone.get_weights())
    ids = tf.constant([[101, 2417, 6007, 102, 0], [101, 2417, 2417, 4167, 102]])
    inputs = {"token_ids": ids, "padding_mask": ids != 0, "segment_ids": tf.zeros_like(ids)}
    results, compiled = [], []
    for backbone in (fast, plain):

        @tf.function
        def step(training, backbone=backbone):
            with tf.GradientTape() as tape:
                output = backbone(inputs, training=training)["sequence_output"]
                loss = tf.reduce_sum(output * tf.sin(output))
            variables = [variable.value for variable in backbone.trainable_variables]
            return output, tape.gradient(loss, variables, unconnected_gradients="zero")

        results.append(step(True))
        for training in (True, False):
            graph = step.get_concrete_function(training).graph
            xla = [op for op in graph.get_operations() if op.node_def.attr["_XlaMustCompile"].b]
            compiled.append(len(xla))
    assert compiled == [14, 0, 0, 0]  # layer norms (5) and GELUs (2) forward and backward; training only
    (fast_out, fast_grads), (plain_out, plain_grads) = results
    np.testing.assert_allclose(fast_out.numpy(), plain_out.numpy(), atol=1e-5)
    for variable, a, b in zip(fast.trainable_variables, fast_grads, plain_grads):
        a, b = tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy()
        atol = max(1e-5, 1e-5 * float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol, err_msg=variable.path)


def test_the_word_embedding_is_gathered_and_attention_projects_by_matmul(tiny_encoder):
    # A whole-table read costs a 47 MB copy per step (MiniLM) once the lazy optimizer has scattered rows.
    backbone = tiny_encoder.backbone

    def step(ids):
        return backbone({"token_ids": ids, "padding_mask": ids != 0, "segment_ids": tf.zeros_like(ids)})

    step = tf.function(step)
    graph = step.get_concrete_function(tf.TensorSpec([None, None], tf.int32)).graph
    types = {op.name: op.type for op in graph.get_operations()}
    assert any("token_embedding" in name and kind == "ResourceGather" for name, kind in types.items())
    assert "Einsum" not in types.values() and "MatMul" in types.values()


def test_a_reloaded_model_trains_with_the_same_kernels(tiny_intent_model, tmp_path):
    tiny_intent_model.save(tmp_path / "intent.keras")
    backbone = keras.models.load_model(tmp_path / "intent.keras").backbone
    layer = backbone.get_layer("transformer_layer_0")
    assert layer._feedforward_intermediate_dense.activation is gelu_tanh
    assert layer._self_attention_layer._query_dense._matmul and backbone.token_embedding._gathers
    assert "call" in vars(layer._feedforward_layer_norm) and "call" in vars(
        backbone.get_layer("embeddings_layer_norm")
    )


def test_dropout_from_random_bits_keeps_one_minus_the_rate_and_rescales(tiny_encoder):
    layer = tiny_encoder.backbone.get_layer("transformer_layer_0")._feedforward_dropout
    ones = tf.ones([400, 500])
    first, second = layer(ones, training=True).numpy(), layer(ones, training=True).numpy()
    rate = layer.rate
    assert abs((first == 0).mean() - rate) < 0.005 and not np.array_equal(first, second)
    np.testing.assert_allclose(first[first != 0], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(layer(ones, training=False).numpy(), ones.numpy())
    assert "call" in vars(layer)  # the bits kernel, not keras's
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.1)])  # not a BERT backbone
    assert "call" not in vars(use_fast_kernels(other).layers[0])
