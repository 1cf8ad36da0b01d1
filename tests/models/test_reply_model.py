import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models.reply_model import FALLBACK, build_reply_model, template_parts
from ecomrec_tf.preprocessing import SlotExtractor
from ecomrec_tf.preprocessing.slot_extractor import ORDER_ID
from ecomrec_tf.serving.check_export import check_export
from ecomrec_tf.training.reply import reply_losses, reply_targets
from tests.helpers import assert_config_round_trip, assert_keras_round_trip

BANK = [
    {"text": "Order {order_id} is on its way.", "intent": "order_status"},
    {"text": "Could you share your order number?", "intent": "order_status"},
    {"text": "You can return the {product} within 30 days.", "intent": "return_item"},
    {"text": "Refunds take 5 working days.", "intent": "refund_status"},
]
PAIRS = {
    "context": ["[customer] where is order #1234567", "[customer] where is my parcel",
                "[customer] i want to return my Acme Pro 2 kettle", "[customer] refund still missing"],
    "reply": ["Order #1234567 is on its way.", "Could you share your order number?",
              "You can return the Acme Pro 2 kettle within 30 days.", "Refunds take 5 working days."],
}  # fmt: skip


@pytest.fixture()
def model():
    keras.utils.set_random_seed(0)
    extractor = SlotExtractor({"order_id": ORDER_ID}, {"product": ["Acme Pro 2 kettle"]})
    return build_reply_model(load_encoder("tiny"), BANK, 32, slot_extractor=extractor, threshold=-1.0)


def test_template_parts_split_at_slots():
    segments, fields, needs = template_parts(["A {x} b {y}.", "none"], ["x", "y"])
    assert segments.tolist() == [["A ", " b ", "."], ["none", "", ""]]
    assert fields.tolist() == [[0, 1, 2], [2, 2, 2]] and needs.tolist() == [[True, True], [False, False]]
    with pytest.raises(ValueError, match="slots \\['z'\\] with no extractor"):
        template_parts(["{z}"], ["x"])


def test_in_batch_logits_mask_twin_replies(model):
    replies = tf.constant(["same", "other", "same"])
    logits = model({"context": tf.constant(PAIRS["context"][:3]), "reply": replies}, training=False)["logits"]
    assert logits.shape == (3, 3)
    assert logits[0, 2] < -1e8 and logits[2, 0] < -1e8 and logits[0, 0] > -1e8


def test_fit_with_in_batch_negatives_learns_the_pairs(model):
    model.compile(
        keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    data = (
        tf.data.Dataset.from_tensor_slices(PAIRS)
        .batch(4)
        .map(lambda x: (x, tf.range(tf.shape(x["reply"])[0])))
    )
    before = model.evaluate(data.repeat(1), verbose=0)
    model.fit(data.repeat(25), epochs=1, verbose=0)
    assert model.evaluate(data, verbose=0) < before / 2
    chosen = model.reply(tf.constant(PAIRS["context"]), k=2)
    assert [r.decode() for r in chosen["reply"].numpy()] == PAIRS["reply"]  # slots filled from the context


def test_an_untrained_model_scores_as_the_pretrained_encoder_does(model):
    """Identity projections: before training, scores are the encoder's own mean-pooled cosines."""
    from ecomrec_tf.encoders.sentence_encoder import SentenceEncoder
    from ecomrec_tf.preprocessing import TextPreprocessor

    encoder = SentenceEncoder(model.backbone, TextPreprocessor(model.preprocessor.tokenizer, 32))
    replies = tf.constant(PAIRS["reply"])
    expected = tf.math.l2_normalize(encoder(replies)[0], axis=-1)
    assert model.vector_dim is None and model.embed_replies(replies).shape == (4, model.backbone.hidden_dim)
    np.testing.assert_allclose(model.embed_replies(replies), expected, atol=1e-5)


def test_unfillable_templates_are_skipped_and_nothing_is_invented(model):
    out = model.reply(tf.constant(["[customer] where is my order", "[customer] order #7654321"]), k=4)
    ids = out["reply_ids"].numpy()
    assert 0 not in ids[0] and 2 not in ids[0]  # no order number, no product: those templates never come
    assert -1 in ids[0]  # only two fillable replies: the rest is padding
    assert all("{" not in r.decode() for r in out["replies"].numpy().ravel())
    assert b"#7654321" in out["replies"].numpy()[1].tolist()[list(ids[1]).index(0)]


def test_below_the_threshold_the_fallback_answers(model):
    contexts = tf.constant(["", "   ", "hola, ¿dónde está mi pedido?", "word " * 3000])
    model.threshold = 1.01  # nothing reaches a cosine above 1
    out = model.reply(contexts)
    assert out["fallback"].numpy().all()
    assert all(r.decode() == FALLBACK for r in out["reply"].numpy())


def test_long_conversations_lose_their_oldest_turns_first(model):
    latest = "[customer] where is my order #1234567"
    old, older = "[agent] ok " * 200, "[customer] hi " + "[agent] ok " * 300
    vectors = model.embed_contexts(tf.constant([old + latest, older + latest, latest]))
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)  # only the last 30 tokens are read
    assert not np.allclose(vectors[0], vectors[2], atol=1e-3)


def test_config_and_keras_file_round_trip(model, tmp_path):
    assert_config_round_trip(model)
    restored = assert_keras_round_trip(model, {k: tf.constant(v) for k, v in PAIRS.items()}, tmp_path)
    np.testing.assert_allclose(restored.bank_vectors(), model.bank_vectors(), atol=1e-6)


@pytest.mark.slow
def test_saved_model_replies_like_the_keras_model(model, tmp_path):
    version_dir = export_saved_model(model, tmp_path / "saved_models" / "reply")
    assert len(check_export(version_dir, model)) == 3  # ops, session loader + warm-up, outputs
    loaded = tf.saved_model.load(str(version_dir))
    assert {"serving_default", "reply", "embed_context", "embed_reply"} <= set(loaded.signatures)
    contexts = tf.constant(PAIRS["context"] + [""])
    served, expected = loaded.signatures["reply"](context=contexts), model.reply(contexts)
    np.testing.assert_array_equal(served["replies"].numpy(), expected["replies"].numpy())
    np.testing.assert_allclose(served["scores"], expected["scores"], atol=1e-5)
    vectors = loaded.signatures["embed_reply"](reply=tf.constant(PAIRS["reply"]))["reply_vector"]
    np.testing.assert_allclose(vectors, model.embed_replies(tf.constant(PAIRS["reply"])), atol=1e-5)


def test_unanswerable_contexts_get_the_fallback_whatever_the_score(model):
    contexts = ["", "   \n ", "[customer] 我的订单在哪里？", "[customer] где мой заказ", "[customer] ?!",
                "[customer] where is my parcel", "[agent] 您好 [customer] order #1234567 please"]  # fmt: skip
    assert model.answerable(tf.constant(contexts)).numpy().tolist() == [False] * 5 + [True] * 2
    out = model.reply(tf.constant(contexts))  # threshold -1: every answerable context is answered
    assert out["fallback"].numpy().tolist() == [True] * 5 + [False] * 2
    assert [r.decode() for r in out["reply"].numpy()[:5]] == [FALLBACK] * 5


def test_the_intent_model_boosts_and_filters_replies(tiny_encoder, tiny_intent_model):
    # tiny_intent_model knows order_status, refund_status, search_product; return_item is unknown to it.
    # Made to call every message refund_status: its intent vector is one constant direction u (zero
    # projection kernel, bias u), refund_status's prototype is u and the others' -u.
    head = tiny_intent_model.get_layer("core").get_layer("intent_head")
    u = np.random.default_rng(0).normal(size=head.vector.projection.bias.shape).astype("float32")
    head.vector.projection.kernel.assign(np.zeros(head.vector.projection.kernel.shape, "float32"))
    head.vector.projection.bias.assign(u)
    prototypes = np.tile(-u[:, None], (1, len(tiny_intent_model.labels)))
    prototypes[:, tiny_intent_model.labels.index("refund_status")] = u
    head.prototypes.assign(prototypes)
    extractor = SlotExtractor({"order_id": ORDER_ID}, {"product": ["Acme Pro 2 kettle"]})
    contexts = tf.constant(PAIRS["context"])

    def top_intents(**kwargs) -> list[str]:
        model = build_reply_model(tiny_encoder, BANK, 32, slot_extractor=extractor, threshold=-1.0,
                                  intent_model=tiny_intent_model, **kwargs)  # fmt: skip
        out = model.reply(contexts, k=4)
        assert [i.decode() for i in out["intent"].numpy()] == ["refund_status"] * 4
        return [BANK[row[0]]["intent"] for row in out["reply_ids"].numpy()]

    assert top_intents(intent_weight=0.0) != ["refund_status"] * 4  # by cosine alone: other replies first
    assert top_intents(intent_weight=100.0) == ["refund_status"] * 4  # the boost outranks any cosine

    strict = build_reply_model(tiny_encoder, BANK, 32, slot_extractor=extractor, threshold=-1.0,
                               intent_model=tiny_intent_model, intent_filter=1.01)  # fmt: skip
    ids = strict.reply(contexts, k=4)["reply_ids"].numpy()
    kept = {i for i in ids.ravel() if i >= 0}
    assert kept and {BANK[i]["intent"] for i in kept} == {"return_item"}  # only intents it does not know
    assert_config_round_trip(strict)


@pytest.fixture(scope="module")
def generator():
    """A reply model with a one-block decoder, trained until it writes the four replies."""
    keras.utils.set_random_seed(0)
    extractor = SlotExtractor({"order_id": ORDER_ID}, {"product": ["Acme Pro 2 kettle"]})
    model = build_reply_model(load_encoder("tiny"), BANK, 32, slot_extractor=extractor, threshold=-1.0,
                              decoder_layers=1, max_reply_length=16)  # fmt: skip
    losses = reply_losses(model)
    model.compile(keras.optimizers.Adam(3e-3), loss=losses)
    data = reply_targets(tf.data.Dataset.from_tensor_slices((PAIRS, [""] * 4)).batch(4), model)
    model.fit(data.repeat(60), epochs=1, verbose=0)
    return model


@pytest.mark.slow
def test_teacher_forcing_targets_are_the_next_tokens(generator):
    out = generator({k: tf.constant(v) for k, v in PAIRS.items()}, training=False)
    targets = generator.generation_targets(tf.constant(PAIRS["reply"]))
    assert out["next_token_logits"].shape[:2] == targets.shape
    assert out["next_token_logits"].shape[-1] == generator.backbone.vocabulary_size
    tokens = generator.preprocessor(tf.constant(PAIRS["reply"]))["token_ids"]
    np.testing.assert_array_equal(targets, tokens[:, 1:])  # input [CLS] r1 .. rn -> target r1 .. rn [SEP]


@pytest.mark.parametrize("decoding", ["greedy", "beam"])
@pytest.mark.slow
def test_trained_decoder_writes_the_replies(generator, decoding):
    out = generator.generate(tf.constant(PAIRS["context"]), decoding)
    assert [r.decode().lower() for r in out["reply"].numpy()] == [r.lower() for r in PAIRS["reply"]]
    assert not out["fallback"].numpy().any()


@pytest.mark.slow
def test_generation_never_invents_numbers_or_answers_empty_input(generator):
    out = generator.generate(
        tf.constant(["[customer] where is order #7654321", "", "[customer] 我的订单在哪里"]), "greedy"
    )
    assert out["fallback"].numpy().all()  # #1234567 (learnt) is not in the conversation: never said
    assert all(r.decode() == FALLBACK for r in out["reply"].numpy())
    sampled = generator.generate(tf.constant(PAIRS["context"]), "top_k")["reply"].numpy()
    assert all(r.decode().strip() for r in sampled)
    with pytest.raises(ValueError, match="decoding must be one of"):
        generator.generate(tf.constant(["hi"]), "nucleus")
    with pytest.raises(ValueError, match="no decoder"):
        build_reply_model(load_encoder("tiny"), BANK[1:2], 16).generate(tf.constant(["hi"]))


def test_a_reply_that_ends_at_once_detokenises_to_empty_then_falls_back(generator):
    tokenizer = generator.preprocessor.tokenizer
    cls, sep, word = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.token_to_id("where")
    text = generator._detokenize(tf.constant([[cls, sep, word], [cls, word, sep]])).numpy()
    assert text.tolist() == [b"", b"Where"]  # `generate` answers the empty one with the fallback


@pytest.mark.slow
def test_generator_keras_file_and_saved_model_round_trip(generator, tmp_path):
    assert_config_round_trip(generator)
    restored = assert_keras_round_trip(generator, {k: tf.constant(v) for k, v in PAIRS.items()}, tmp_path)
    contexts = tf.constant(PAIRS["context"] + [""])
    expected = generator.generate(contexts)["reply"].numpy()  # beam search, the model's default
    np.testing.assert_array_equal(restored.generate(contexts)["reply"].numpy(), expected)
    version_dir = export_saved_model(generator, tmp_path / "saved_models" / "reply")
    # keras-hub's cache and prompt updates are traced with TF core ops, not XlaDynamicUpdateSlice.
    check_export(version_dir, generator)
    loaded = tf.saved_model.load(str(version_dir))
    assert {"reply", "embed_context", "embed_reply", "generate"} <= set(loaded.signatures)
    np.testing.assert_array_equal(loaded.signatures["generate"](context=contexts)["reply"].numpy(), expected)
