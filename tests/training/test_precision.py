import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.training import precision
from ecomrec_tf.training.fit import save_model
from ecomrec_tf.training.precision import precision_scope, resolve_precision

from ..conftest import LABELS, TEXTS


def test_auto_is_bfloat16_only_where_the_hardware_computes_it(monkeypatch):
    monkeypatch.setattr(precision, "bfloat16_is_fast", lambda: True)
    assert resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "bfloat16_is_fast", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"  # asked for by name: as asked
    with pytest.raises(ValueError, match="precision must be one of auto, float32"):
        resolve_precision("fp8")


def test_the_scope_restores_the_policy_even_after_an_error():
    with pytest.raises(RuntimeError), precision_scope("mixed_bfloat16") as policy:
        assert policy == keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"


def test_a_model_trained_in_bfloat16_saves_and_serves_in_float32(tmp_path):
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model

    with precision_scope("mixed_bfloat16"):
        keras.utils.set_random_seed(1)
        model = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16)
    assert model.backbone.compute_dtype == "bfloat16"
    texts = tf.constant(TEXTS)
    in_bfloat16 = model.predict(texts, verbose=0)["probabilities"]
    save_model(model, tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    for loaded in (model, reloaded):  # the saved model and the one in memory both compute in float32
        assert {layer.compute_dtype for layer in loaded._flatten_layers()} <= {"float32", "int32", "string"}
    in_float32 = reloaded.predict(texts, verbose=0)["probabilities"]
    np.testing.assert_allclose(in_float32, model.predict(texts, verbose=0)["probabilities"], atol=1e-6)
    np.testing.assert_allclose(in_float32, in_bfloat16, atol=0.05)  # bfloat16 keeps ~3 digits
    assert not np.allclose(in_float32, in_bfloat16, atol=1e-6)


def test_the_reply_model_trains_in_bfloat16():
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models.reply_model import build_reply_model
    from ecomrec_tf.training import make_optimizer
    from ecomrec_tf.training.reply import reply_tasks
    from ecomrec_tf.training.task import compile_tasks

    dialogues = [{"context": [text], "reply": f"reply to {text}"} for text in TEXTS]
    with precision_scope("mixed_bfloat16"):
        model = build_reply_model(load_encoder("tiny"), [{"text": "ok", "intent": "x"}], 32)
        tasks = reply_tasks(model, dialogues, batch_size=3)
        compile_tasks(tasks, make_optimizer(1e-4, 10))
    history = tasks[0].model.fit(tasks[0].dataset("train"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
