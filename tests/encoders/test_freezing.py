import keras
import numpy as np
import pytest

from ecomrec_tf.encoders import train_top_layers
from tests.conftest import TEXTS


def test_only_the_top_layers_train(tiny_intent_model):
    model = tiny_intent_model
    train_top_layers(model.backbone, 1)
    trainable = {w.path for w in model.backbone.trainable_weights}
    assert trainable and all(path.startswith("transformer_layer_1/") for path in trainable)
    frozen_before = [w.numpy().copy() for w in model.backbone.non_trainable_weights]
    top_before = [w.numpy().copy() for w in model.backbone.trainable_weights]
    model.compile(keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(np.array(TEXTS), np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    for before, weight in zip(frozen_before, model.backbone.non_trainable_weights):
        np.testing.assert_array_equal(before, weight.numpy())
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(top_before, model.backbone.trainable_weights))


def test_zero_freezes_the_encoder_and_none_trains_all(tiny_intent_model):
    backbone = tiny_intent_model.backbone
    train_top_layers(backbone, 0)
    assert backbone.trainable_weights == []
    train_top_layers(backbone, None)
    assert not any(w.path.startswith("pooled_dense") for w in backbone.trainable_weights)
    assert len(backbone.trainable_weights) == len(backbone.weights) - 2  # all but the unused pooler


def test_more_layers_than_the_encoder_has_trains_them_all(tiny_intent_model):
    backbone = tiny_intent_model.backbone
    train_top_layers(backbone, 5)
    assert {w.path.split("/")[0] for w in backbone.trainable_weights} == {
        "transformer_layer_0",
        "transformer_layer_1",
    }
    with pytest.raises(ValueError, match="0 or more, got -1"):
        train_top_layers(backbone, -1)


def test_the_choice_is_part_of_the_intent_model_and_survives_saving(tmp_path):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model
    from tests.conftest import LABELS

    model = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16, train_top_layers=1)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert restored.train_top_layers == 1
    assert [w.path for w in restored.trainable_weights] == [w.path for w in model.trainable_weights]


def test_lora_trains_only_the_lora_factors_and_the_head(tmp_path):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model
    from tests.conftest import LABELS

    keras.utils.set_random_seed(0)
    model = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16, lora_rank=4)
    encoder_trainable = {w.path for w in model.backbone.trainable_weights}
    assert encoder_trainable and all("lora_kernel" in path for path in encoder_trainable)
    assert len(encoder_trainable) == 2 * 2 * 2  # 2 layers x (query, value) x (a, b)
    before = {w.path: w.numpy().copy() for w in model.weights}
    model.compile(keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(np.array(TEXTS), np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    changed = {w.path for w in model.weights if not np.array_equal(before[w.path], w.numpy())}
    assert any("lora_kernel" in path for path in changed)
    assert any(path.startswith("intent_head") for path in changed)
    encoder_changed = {path for path in changed if not path.startswith("intent_head")}
    assert encoder_changed and all("lora_kernel" in path for path in encoder_changed)

    model.save(tmp_path / "lora.keras")
    restored = keras.models.load_model(tmp_path / "lora.keras")
    assert {w.path for w in restored.backbone.trainable_weights} == encoder_trainable
    np.testing.assert_allclose(
        restored.predict(TEXTS, verbose=0)["probabilities"],
        model.predict(TEXTS, verbose=0)["probabilities"],
        atol=1e-5,
    )
