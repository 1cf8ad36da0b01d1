import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training.distill import DistillationLoss, distill_intent, intent_student, student_backbone

LABELS = ["order_status", "refund", "search_product"]


@pytest.fixture(scope="module")
def teacher():
    keras.utils.set_random_seed(0)
    encoder = load_encoder("small")  # 4 layers
    return build_intent_model(encoder, LABELS, sequence_length=16)


def test_the_student_copies_evenly_spaced_teacher_layers(teacher):
    student = student_backbone(teacher.backbone, 2)
    assert student.num_layers == 2 and student.hidden_dim == teacher.backbone.hidden_dim
    last = teacher.backbone.num_layers - 1
    for i, source in enumerate((0, last)):
        for mine, theirs in zip(
            student.get_layer(f"transformer_layer_{i}").weights,
            teacher.backbone.get_layer(f"transformer_layer_{source}").weights,
        ):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(
        student.get_layer("token_embedding").weights[0],
        teacher.backbone.get_layer("token_embedding").weights[0],
    )
    with pytest.raises(ValueError, match="a student has 1 to 4 layers"):
        student_backbone(teacher.backbone, 5)
    model = intent_student(teacher, 1)
    assert model.labels == LABELS and model.count_params() < teacher.count_params()


def test_the_loss_is_hintons():
    """KL at temperature T times T^2, plus cross-entropy on the label, weighted by alpha; on scores
    (here log-probabilities); `symmetric` also over the columns (in-batch retrieval)."""
    student = np.array([[0.7, 0.2, 0.1]], np.float32)
    teacher = np.array([[0.5, 0.4, 0.1]], np.float32)
    t, alpha = 2.0, 0.3
    soft = lambda p: np.exp(np.log(p) / t) / np.exp(np.log(p) / t).sum()  # noqa: E731
    kl = np.sum(soft(teacher) * np.log(soft(teacher) / soft(student)))
    expected = alpha * t * t * kl + (1 - alpha) * -np.log(0.2)
    scores = np.log(np.stack([student, teacher], axis=1))
    assert float(DistillationLoss(t, alpha)(np.array([1]), scores)) == pytest.approx(expected, rel=1e-4)
    same = np.log(np.stack([teacher, teacher], axis=1))
    assert float(DistillationLoss(t, 1.0)(np.array([1]), same)) == pytest.approx(0.0, abs=1e-5)
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(3, 2, 3)).astype(np.float32)  # (batch, student/teacher, batch)
    rows = DistillationLoss(t, alpha)(np.arange(3), batch)
    columns = DistillationLoss(t, alpha)(np.arange(3), np.transpose(batch, (2, 1, 0)))
    symmetric = DistillationLoss(t, alpha, symmetric=True)(np.arange(3), batch)
    assert float(symmetric) == pytest.approx((float(rows) + float(columns)) / 2, rel=1e-5)


@pytest.mark.slow
def test_distilling_trains_a_student_that_saves_and_exports(intent_data_dir, tmp_path):
    from ecomrec_tf.data import read_intent_file
    from ecomrec_tf.export import export_saved_model

    labels = sorted(set(read_intent_file(intent_data_dir / "train.jsonl")[1]))
    teacher = build_intent_model(load_encoder("tiny"), labels, sequence_length=16)
    other = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16)
    with pytest.raises(ValueError, match="are not the teacher's"):
        distill_intent(
            other, intent_data_dir / "train.jsonl", intent_data_dir / "valid.jsonl", tmp_path / "x"
        )
    student, history = distill_intent(
        teacher, intent_data_dir / "train.jsonl", intent_data_dir / "valid.jsonl", tmp_path / "run", layers=1,
        epochs=2, learning_rate=1e-3, verbose=0,
    )  # fmt: skip
    assert {"loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    restored = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert restored.backbone.num_layers == 1 and restored.labels == labels
    texts = tf.constant(["where is my order", "refund please"])
    np.testing.assert_allclose(restored(texts)["probabilities"], student(texts)["probabilities"], atol=1e-6)
    version_dir = export_saved_model(restored, tmp_path / "saved_models" / "intent")
    from ecomrec_tf.serving.check_export import check_export

    assert len(check_export(version_dir, restored)) == 3


@pytest.mark.slow
def test_distilling_a_reply_model_keeps_its_bank_and_replies_like_it(tmp_path):
    from ecomrec_tf.data.readers import read_dialogues, split_file
    from ecomrec_tf.data.shop import ShopConfig, generate_shop
    from ecomrec_tf.models import build_reply_model
    from ecomrec_tf.training.distill import distill_reply, reply_student

    generate_shop(tmp_path / "shop", ShopConfig(users=80, seed=1), progress=False)
    files = split_file(tmp_path / "shop" / "dialogues.jsonl", tmp_path / "d", 0.2, 0.2, group_by=None)
    bank = [{"text": reply} for reply in sorted({d["reply"] for d in read_dialogues(files["train"])})]
    keras.utils.set_random_seed(0)
    teacher = build_reply_model(load_encoder("tiny"), bank, 32)
    untrained = reply_student(teacher, 2)  # every layer: the student is the teacher
    contexts = tf.constant(["[customer] where is my order #1234567"])
    np.testing.assert_allclose(
        untrained.embed_contexts(contexts), teacher.embed_contexts(contexts), atol=1e-5
    )
    student, history = distill_reply(
        teacher,
        files["train"],
        files["valid"],
        tmp_path / "run",
        layers=1,
        epochs=1,
        batch_size=16,
        verbose=0,
    )
    assert {"loss", "val_in_batch_accuracy", "val_mrr"} <= set(history)
    assert (
        student.backbone.num_layers == 1
        and student.decoder is None
        and student.reply_bank == teacher.reply_bank
    )
    restored = keras.models.load_model(tmp_path / "run" / "model.keras")
    np.testing.assert_allclose(
        restored.reply(contexts)["scores"], student.reply(contexts)["scores"], atol=1e-5
    )
