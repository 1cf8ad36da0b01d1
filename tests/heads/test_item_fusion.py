import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.heads.item_fusion import ItemFusion
from tests.helpers import assert_config_round_trip

FEATURES = ItemFeatures(image_dim=3, numeric=("weight",), categorical=("brand", "color"))
NAN = np.nan
SIDE = {
    "image_vector": tf.constant([[1.0, 2.0, 2.0], [NAN, NAN, NAN], [NAN, NAN, NAN], [2.0, 4.0, 4.0]]),
    "numeric_attributes": tf.constant([[3.0], [NAN], [1.0], [3.0]]),
    "categorical_attributes": tf.constant([["acme", "red"], ["", ""], ["", ""], ["acme", "red"]]),
}  # row 1: nothing but the text; row 3: row 0's image at twice the scale
TEXT = tf.constant(np.random.default_rng(0).normal(size=(4, 8)), tf.float32)


@pytest.mark.parametrize("fusion", ["gated", "concat"])
def test_an_item_with_no_side_feature_keeps_its_text_vector(fusion):
    layer = ItemFusion(FEATURES, fusion, side_dim=5)
    layer(TEXT, SIDE)
    rng = np.random.default_rng(1)  # trained weights: biases too (untrained ones are 0)
    for weight in layer.trainable_weights:
        weight.assign(rng.normal(size=weight.shape))
    fused = layer(TEXT, SIDE).numpy()
    assert fused.shape == (4, 8 if fusion == "gated" else 13)
    np.testing.assert_array_equal(fused[1, :8], TEXT.numpy()[1])  # no image, attribute or category
    if fusion == "concat":
        np.testing.assert_array_equal(fused[1, 8:], 0.0)
    for row in (0, 2):  # an image and attributes; a numeric attribute alone
        changed = fused[row, :8] - TEXT.numpy()[row] if fusion == "gated" else fused[row, 8:]
        assert np.abs(changed).max() > 1e-4


def test_image_scale_and_histories_of_any_rank():
    """Image vectors are normalised (an image model's scale does not matter); the layer takes
    `(batch, items, ...)` histories as well as `(batch, ...)` items."""
    layer = ItemFusion(FEATURES)
    text = tf.concat([TEXT[:1], TEXT[:1]], axis=0)
    side = {name: tf.gather(value, [0, 3]) for name, value in SIDE.items()}
    fused = layer(text, side).numpy()
    np.testing.assert_allclose(fused[0], fused[1], atol=1e-6)
    history = layer(TEXT[None], {name: value[None] for name, value in SIDE.items()}).numpy()
    np.testing.assert_allclose(history[0], layer(TEXT, SIDE).numpy(), atol=1e-6)


def test_adapt_standardises_numeric_attributes_from_the_catalog():
    layer = ItemFusion(FEATURES)
    layer(TEXT, SIDE)
    layer.adapt(np.array([[1.0], [3.0], [NAN]]))
    assert layer.means.numpy().tolist() == [2.0] and layer.scales.numpy().tolist() == [1.0]
    assert_config_round_trip(layer)
    with pytest.raises(ValueError, match="fusion must be one of"):
        ItemFusion(FEATURES, "sum")
