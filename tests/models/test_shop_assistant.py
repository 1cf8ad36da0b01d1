import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models import ShopAssistant, build_intent_model, build_purchase_model
from ecomrec_tf.models.reply_model import build_reply_model
from ecomrec_tf.serving.check_export import check_export
from tests.conftest import LABELS

pytestmark = pytest.mark.slow  # exports checked end to end; the module's fixtures are shared

HEAD_SIGNATURES = {
    "intent",
    "purchase_probability",
    "embed_user",
    "embed_item",
    "rank",
    "reply",
    "embed_context",
    "embed_reply",
    "generate",
}


@pytest.fixture(scope="module")
def heads():
    """Three heads on one encoder, as a multi-task run trains them."""
    keras.utils.set_random_seed(0)
    encoder = load_encoder("tiny")
    bank = [{"text": "Your order is on its way.", "intent": "order_status"}, {"text": "Refunds take 5 days."}]
    return {
        "intent": build_intent_model(encoder, LABELS, sequence_length=16),
        "purchase": build_purchase_model(encoder, sequence_length=16),
        "reply": build_reply_model(
            encoder, bank, 16, decoder_layers=1, decoding="greedy", max_reply_length=8
        ),
    }


def test_one_saved_model_serves_every_head_and_passes_check_export(heads, tmp_path):
    assistant = ShopAssistant(heads)
    version_dir = export_saved_model(assistant, tmp_path / "shop_assistant")
    report = check_export(version_dir, assistant)  # ops, session-based load, warm-up, outputs == Keras
    assert len(report) == 3
    loaded = tf.saved_model.load(str(version_dir))
    assert set(loaded.signatures) == HEAD_SIGNATURES | {"serving_default"}
    served = loaded.signatures["serving_default"](text=np.array(["where is my order"], dtype=object))
    assert set(served) == {"label", "label_id", "probabilities", "intent_vector"}  # the intent head's
    # The shared encoder is stored once: fewer variables than the heads exported one by one.
    distinct = {id(v) for model in heads.values() for v in model.variables}
    assert len(loaded.variables) == len(distinct) < sum(len(model.variables) for model in heads.values())


def test_signature_names_clash_default_and_errors(heads):
    second = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16)
    assistant = ShopAssistant({"intent": heads["intent"], "intent_de": second}, default="intent_de")
    signatures = assistant.serving_signatures()
    assert set(signatures) == {"serving_default", "intent", "intent_de"}
    text = tf.constant(["refund still missing"])
    np.testing.assert_allclose(
        signatures["serving_default"][0](text)["probabilities"], second(text)["probabilities"], atol=1e-6
    )
    twice = ShopAssistant({"purchase": heads["purchase"], "old": heads["purchase"]}).serving_signatures()
    assert {"purchase_probability", "old_purchase_probability", "rank", "old_rank"} <= set(twice)
    with pytest.raises(ValueError, match="at least one head"):
        ShopAssistant({})
    with pytest.raises(ValueError, match="default head 'chat' is not one of the heads"):
        ShopAssistant(heads, default="chat")
    with pytest.raises(ValueError, match="head 'encoder'.*has no serving_signatures"):
        ShopAssistant({"encoder": keras.layers.Dense(2)})
