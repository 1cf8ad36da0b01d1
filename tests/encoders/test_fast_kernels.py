import keras
import keras_hub
import numpy as np
import tensorflow as tf

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.encoders.fast_kernels import gelu_tanh, use_fast_kernels


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
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=variable.path)


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
