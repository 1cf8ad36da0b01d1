import keras
import numpy as np
import pytest
import tensorflow as tf

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


def _adamw_pair(**kwargs):
    """Keras's AdamW and ours, same settings, on copies of the same weights."""
    settings = dict(learning_rate=0.1, weight_decay=0.05, global_clipnorm=1.0, **kwargs)
    return keras.optimizers.AdamW(**settings), LayerwiseAdamW(**settings)


def test_fused_dense_updates_match_keras_adamw_step_for_step():
    """The fused Adam kernel, weight decay and global-norm clipping move dense weights exactly as
    Keras's AdamW does, over several steps."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype("float32")
    weights = [keras.Variable(start, name="kernel"), keras.Variable(start, name="kernel")]
    gradients = [3 * (step - 1.5 + rng.normal(size=(4, 3))).astype("float32") for step in range(4)]
    gradients += [0.05 * gradient for gradient in gradients]  # within the clipping norm
    for optimizer, variable in zip(_adamw_pair(), weights):
        for gradient in gradients:
            optimizer.apply([tf.constant(gradient)], [variable])
    # Within 1e-5: the fused kernel adds epsilon to sqrt(v) before the bias correction, Keras after.
    np.testing.assert_allclose(weights[1].numpy(), weights[0].numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(weights[0].numpy(), start)


def test_sparse_gradients_update_only_the_rows_looked_up():
    """An embedding's gradient stays sparse (lazy Adam): looked-up rows (a row twice counts twice)
    move as Keras's dense AdamW moves them on the first step; untouched rows and their moments stay."""
    table = np.arange(12, dtype="float32").reshape(6, 2) / 10
    ids = tf.constant([1, 4, 1])
    dense, lazy = keras.Variable(table, name="embeddings"), keras.Variable(table, name="embeddings")
    keras_adamw, ours = _adamw_pair()
    for optimizer, variable in ((keras_adamw, dense), (ours, lazy)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(variable.value, ids) ** 2)
        gradient = tape.gradient(loss, variable.value)
        assert isinstance(gradient, tf.IndexedSlices)
        optimizer.apply([gradient], [variable])
    np.testing.assert_allclose(lazy.numpy()[[1, 4]], dense.numpy()[[1, 4]], rtol=1e-6)
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(lazy.numpy()[untouched], table[untouched])  # not even weight decay
    assert not np.allclose(dense.numpy()[untouched], table[untouched])  # dense AdamW decays them
    assert not np.any(ours._momentums[0].numpy()[untouched])


def test_sparse_and_dense_gradients_share_one_global_norm():
    optimizer = LayerwiseAdamW(learning_rate=1.0, global_clipnorm=1.0)
    sparse = tf.IndexedSlices(tf.constant([[3.0, 0.0], [0.0, 0.0]]), tf.constant([0, 2]), tf.constant([5, 2]))
    clipped = optimizer._clip_gradients([sparse, tf.constant([4.0])])
    np.testing.assert_allclose(clipped[0].values.numpy(), [[0.6, 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(clipped[1].numpy(), [0.8], rtol=1e-6)
    assert isinstance(clipped[0], tf.IndexedSlices)
    small = tf.IndexedSlices(sparse.values * 0.1, sparse.indices, sparse.dense_shape)
    within = optimizer._clip_gradients([None, small, tf.constant([0.4])])  # norm 0.5: as they are
    assert within[0] is None and isinstance(within[1], tf.IndexedSlices)
    np.testing.assert_allclose(within[1].values.numpy(), [[0.3, 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(within[2].numpy(), [0.4], rtol=1e-6)
