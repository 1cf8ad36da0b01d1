import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.heads.id_embedding import IdEmbedding


def test_known_new_and_empty_ids_get_their_own_rows():
    layer = IdEmbedding(3, dim=4)
    layer.set_vocabulary(["a", "b", "c"])
    index = layer.lookup(tf.constant(["a", "c", "new", "other new", ""])).numpy()
    assert index.tolist() == [2, 4, 1, 1, 0]  # "" padding 0, out of vocabulary 1, then the vocabulary
    vectors, biases = layer(tf.constant([["a", ""], ["new", "b"]]))
    assert vectors.shape == (2, 2, 4) and biases.shape == (2, 2)


def test_untrained_layer_maps_everything_out_of_vocabulary():
    layer = IdEmbedding(5)
    assert set(layer.lookup(tf.constant(["x", "y"])).numpy().tolist()) == {1}


def test_the_penalty_counts_only_in_training():
    layer = IdEmbedding(2, dim=3, l2=0.5)
    layer.set_vocabulary(["a", "b"])
    layer(tf.constant(["a"]), training=False)
    assert not layer.losses
    vectors, _ = layer(tf.constant(["a", "b"]), training=True)
    expected = 0.5 * np.mean(np.sum(vectors.numpy() ** 2, axis=-1))
    assert len(layer.losses) == 1 and np.isclose(float(layer.losses[0]), expected)


def test_vocabulary_survives_a_keras_file(tmp_path):
    layer = IdEmbedding(3, dim=2, name="ids")
    layer.set_vocabulary(["a", "b", "c"])
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, layer(inputs)[0])
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    ids = tf.constant(["c", "a", "zzz"])
    np.testing.assert_array_equal(restored(ids), model(ids))
    assert not np.allclose(model(tf.constant(["a"])), model(tf.constant(["zzz"])))
