import keras
import numpy as np
import pytest

from ecomrec_tf.training.optimizer import LayerwiseAdamW, LinearWarmupDecay, make_optimizer


def test_layer_wise_decay_shrinks_the_rate_from_the_head_down():
    optimizer = LayerwiseAdamW(layer_decay=0.5, num_layers=2, learning_rate=1.0)
    rate = optimizer.learning_rate_multiplier
    assert rate("intent_head/dense/kernel") == 1.0
    assert rate("transformer_layer_1/self_attention_layer/query/kernel") == 0.5
    assert rate("transformer_layer_0/feedforward_output_dense/kernel") == 0.25
    assert rate("token_embedding/embeddings") == rate("embeddings_layer_norm/gamma") == 0.125
    with pytest.raises(ValueError, match="layer_decay"):
        LayerwiseAdamW(layer_decay=0.0)
    faster = LayerwiseAdamW(num_layers=2, multipliers={"reply_decoder": 10.0}, learning_rate=1.0)
    assert faster.learning_rate_multiplier("reply_decoder/decoder_block_0/query/kernel") == 10.0
    assert faster.learning_rate_multiplier("reply_projection/kernel") == 1.0
    assert LayerwiseAdamW.from_config(faster.get_config()).multipliers == {"reply_decoder": 10.0}


def test_layer_wise_decay_scales_each_update(tiny_intent_model):
    """Adam's first update moves each weight by about its learning rate: the head 1e-3, lower layers less."""
    model = tiny_intent_model
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    optimizer = LayerwiseAdamW(layer_decay=0.5, num_layers=2, learning_rate=1e-3, weight_decay=0.0)
    model.compile(optimizer, loss="sparse_categorical_crossentropy")
    model.fit(np.array(["red shoes", "where is my parcel"]), np.array([0, 1]), epochs=1, verbose=0)
    step = {w.path: float(np.abs(w.numpy() - before[w.path]).max()) for w in model.trainable_weights}
    np.testing.assert_allclose(step["intent_head/intent_vector/projection/kernel"], 1e-3, rtol=0.05)
    np.testing.assert_allclose(step["position_embedding/embeddings"], 1e-3 * 0.5**3, rtol=0.05)
    top = step["transformer_layer_1/feedforward_output_dense/kernel"]
    bottom = step["transformer_layer_0/feedforward_output_dense/kernel"]
    np.testing.assert_allclose([top, bottom], [5e-4, 2.5e-4], rtol=0.05)


def test_schedules_warm_up_then_decay():
    linear = LinearWarmupDecay(1.0, warmup_steps=10, decay_steps=90)
    np.testing.assert_allclose([float(linear(s)) for s in (0, 5, 10, 55, 100, 200)], [0, 0.5, 1, 0.5, 0, 0])
    cosine = make_optimizer(1.0, total_steps=100, warmup_fraction=0.1)
    np.testing.assert_allclose(
        [float(cosine._learning_rate(s)) for s in (0, 10, 55, 100)], [0, 1, 0.5, 0], atol=1e-6
    )
    scaled = make_optimizer(1e-3, 10, loss_scale=True)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="decay"):
        make_optimizer(1e-3, 10, decay="step")


def test_weight_decay_skips_biases_and_layer_norms():
    optimizer = make_optimizer(1e-3, 10)
    kernel = keras.Variable(np.ones((2, 2)), name="kernel")
    bias = keras.Variable(np.ones(2), name="bias")
    gamma = keras.Variable(np.ones(2), name="gamma")
    assert optimizer._use_weight_decay(kernel)
    assert not optimizer._use_weight_decay(bias) and not optimizer._use_weight_decay(gamma)


def test_an_unknown_step_count_is_refused_not_silently_a_one_step_schedule():
    with pytest.raises(ValueError, match="total_steps must be >= 1, got -6"):
        make_optimizer(1e-3, total_steps=-2 * 3)
