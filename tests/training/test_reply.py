import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.readers import read_dialogues, split_file
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.evaluation.reply import evaluate_reply
from ecomrec_tf.training import Trainer
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.reply import (
    bank_from_replies,
    items_slot_extractor,
    read_reply_bank,
    reply_tasks,
    train_reply,
)

pytestmark = pytest.mark.slow  # trained dual encoders and exports; the module's fixtures are shared


@pytest.fixture(scope="module")
def dialogue_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    generate_shop(out, ShopConfig(users=240, seed=5), progress=False)
    # Grouped by answer, as `data split` does by default: no test answer is a training answer.
    return split_file(out / "dialogues.jsonl", out / "dialogues", valid_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="module")
def seen_answers(dialogue_files):
    """Record by record: valid answers also appear in training, what the tiny model, trained for two
    epochs on ~70 dialogues, can learn to rank; for the tests of training, not for quality numbers."""
    source = dialogue_files["train"].parent.parent / "dialogues.jsonl"
    return split_file(source, source.parent / "record_by_record", 0.2, 0.2, group_by=None)


def test_split_file_shuffles_every_record_into_one_split_and_no_answer_into_two(dialogue_files, tmp_path):
    parts = {split: f.read_text().splitlines() for split, f in dialogue_files.items()}
    source = (dialogue_files["train"].parent.parent / "dialogues.jsonl").read_text().splitlines()
    assert sorted(sum(parts.values(), [])) == sorted(source)
    assert len(parts["test"]) >= round(0.2 * len(source)) and parts["train"][:5] != source[:5]

    def answers(split):  # replies with digits masked, as the split groups them
        return {re.sub(r"\d+", "0", json.loads(line)["reply"].lower()) for line in parts[split]}

    assert not answers("test") & answers("train") and not answers("valid") & answers("train")
    record_by_record = split_file(source_file := dialogue_files["train"].parent.parent / "dialogues.jsonl",
                                  tmp_path / "plain", 0.2, 0.2, group_by=None)  # fmt: skip
    plain = {split: f.read_text().splitlines() for split, f in record_by_record.items()}
    assert len(plain["test"]) == round(0.2 * len(source)) and source_file.exists()
    (tmp_path / "two.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    with pytest.raises(DataError, match="two.jsonl: 2 records"):
        split_file(tmp_path / "two.jsonl", tmp_path / "out")
    (tmp_path / "same.jsonl").write_text(
        '{"context": ["a"], "reply": "order 1"}\n' * 2 + '{"context": ["b"], "reply": "order 22"}\n'
    )
    with pytest.raises(DataError, match="same.jsonl: 1 distinct 'reply' values"):
        split_file(tmp_path / "same.jsonl", tmp_path / "out")


@pytest.fixture(scope="module")
def trained(seen_answers, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reply_run")
    model, history = train_reply(seen_answers["train"], seen_answers["valid"], run_dir, encoder="tiny",
                                 epochs=2, batch_size=16, sequence_length=48, train_top_layers=None,
                                 decoder_layers=1, learning_rate=1e-3, verbose=0)  # fmt: skip
    return model, history, run_dir


def test_train_then_evaluate_beside_the_tfidf_baseline(seen_answers, trained, tmp_path):
    model, history, run_dir = trained
    assert (run_dir / "model.keras").is_file() and (run_dir / "curves.png").is_file()
    assert {"val_logits_in_batch_accuracy", "next_token_logits_loss", "logits_loss", "val_mrr"} <= set(
        history
    )
    assert history["loss"][1] < history["loss"][0]  # it learns (the schedule knows the epoch's steps)
    assert history["next_token_logits_loss"][1] < history["next_token_logits_loss"][0]
    assert max(history["val_mrr"]) > history["untrained_val_mrr"][0]  # it beats where it started
    result = evaluate_reply(model, seen_answers["test"], seen_answers["train"], tmp_path, examples=3,
                            decoding="greedy", zero_shot="tiny")  # fmt: skip
    for name in ("dual_encoder", "tfidf"):
        metrics = result[name]
        assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= 1 and 0 < metrics["mrr"] <= 1
        assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["rouge_l"] <= 1
    for name in ("bm25", "zero_shot"):
        assert 0 <= result[name]["recall@1"] <= result[name]["recall@5"] <= 1 and 0 < result[name]["mrr"] <= 1
    assert result["tfidf"]["recall@1"] > 0.2  # the baseline works on the shop's phrasing
    assert result["bm25"]["recall@1"] > 5 / result["bm25"]["candidates"]  # far above a random guess
    references = {json.loads(line)["reply"] for line in seen_answers["test"].open()}
    assert result["distinct_replies"] == min(
        100, len(references | {json.loads(line)["reply"] for line in seen_answers["train"].open()})
    )
    # The bank is the training file's own replies, with order numbers as slots.
    bank = {r["text"] for r in model.reply_bank}
    assert any("{order_id}" in text for text in bank) and not any("#" in text for text in bank)
    assert len(result["examples"]) == 3 and all(e["reply"] and e["generated"] for e in result["examples"])
    generated = result["generated"]
    assert (
        generated["decoding"] == "greedy" and 0 <= generated["bleu"] <= 100 and 0 <= generated["rouge_l"] <= 1
    )
    assert json.loads((tmp_path / "reply_metrics.json").read_text())["dialogues"] == result["dialogues"]


def test_the_distributed_loop_trains_retrieval_and_generation_tasks(dialogue_files, trained, tmp_path):
    model = trained[0]
    train, valid = read_dialogues(dialogue_files["train"]), read_dialogues(dialogue_files["valid"])
    tasks = reply_tasks(model, train, valid[:32], batch_size=32)
    assert [t.name for t in tasks] == ["reply", "generation"]
    before = Trainer(tasks, make_optimizer(1e-3, 10)).evaluate(tasks[1])
    history = Trainer(tasks, make_optimizer(1e-3, 10)).fit(epochs=1, run_dir=tmp_path, verbose=0)
    assert history["val_generation_loss"][-1] < before["generation_loss"]
    assert "val_reply_in_batch_accuracy" in history


def test_a_bank_from_training_replies_templates_the_values_it_finds(tmp_path):
    (tmp_path / "items.jsonl").write_text(
        '{"item_id": "1", "title": "Acme Pro 2 kettle, white", "category": "kitchen"}\n'
    )
    dialogues = [
        {"context": ["where is #1234567"], "reply": "Order #1234567 ships today.", "intent": "order_status"},
        {"context": ["and #7654321"], "reply": "Order #7654321 ships today.", "intent": "order_status"},
        {"context": ["eh"], "reply": "Order #7654321 ships today.", "intent": "other"},
        {"context": ["kettle?"], "reply": "The Acme Pro 2 kettle is in stock {today}.", "intent": ""},
        {"context": ["hi"], "reply": "Hello!", "intent": "greeting"},
    ]
    bank = bank_from_replies(dialogues, items_slot_extractor(tmp_path / "items.jsonl"))
    assert bank == [
        {"text": "Hello!", "intent": "greeting"},
        {"text": "Order {order_id} ships today.", "intent": "order_status"},  # one template, the usual intent
        {"text": "The {product} is in stock {{today}}.", "intent": ""},  # literal braces stay literal
    ]
    assert [r["text"] for r in bank_from_replies(dialogues[:1], items_slot_extractor(None))] == [
        "Order {order_id} ships today."
    ]


def test_training_never_ends_below_the_untrained_encoder(dialogue_files, tmp_path):
    """A learning rate that wrecks the encoder: the run keeps the weights it started from."""
    from ecomrec_tf.encoders import load_encoder

    model, history = train_reply(dialogue_files["train"], dialogue_files["valid"], tmp_path, encoder="tiny",
                                 epochs=1, batch_size=16, sequence_length=32, train_top_layers=None,
                                 decoder_layers=0, learning_rate=50.0, patience=None, verbose=0)  # fmt: skip
    assert history["val_mrr"][0] < history["untrained_val_mrr"][0]
    keras.utils.set_random_seed(0)  # train_reply's seed: the same random start
    start = load_encoder("tiny").backbone
    for trained, initial in zip(model.backbone.weights, start.weights):
        np.testing.assert_array_equal(trained.numpy(), initial.numpy())


def test_a_reply_bank_file_and_its_errors(tmp_path):
    (tmp_path / "bank.jsonl").write_text(
        '{"text": "Order {order_id} ships today.", "intent": "order_status"}\n'
    )
    assert read_reply_bank(tmp_path / "bank.jsonl") == [
        {"text": "Order {order_id} ships today.", "intent": "order_status"}
    ]
    (tmp_path / "bad.jsonl").write_text('{"intent": "x"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: missing field 'text'"):
        read_reply_bank(tmp_path / "bad.jsonl")


def test_a_multi_task_run_of_intent_and_reply_exports_one_shop_assistant(
    dialogue_files, intent_data_dir, tmp_path, capsys
):
    from ecomrec_tf.cli import main
    from ecomrec_tf.training.config import parse_config
    from ecomrec_tf.training.run import run

    intent = {"train": str(intent_data_dir / "train.jsonl"), "valid": str(intent_data_dir / "valid.jsonl")}
    reply = {"train": str(dialogue_files["train"]), "valid": str(dialogue_files["valid"]), "weight": 0.5}
    config = parse_config({"encoder": "tiny", "epochs": 1, "steps_per_epoch": 6, "batch_size": 16,
                           "sequence_length": 32, "learning_rate": 1e-3,
                           "tasks": {"intent": intent, "reply": reply}})  # fmt: skip
    history = run(config, tmp_path / "run", verbose=0)
    assert {"intent_loss", "reply_loss", "val_intent_accuracy", "val_reply_in_batch_accuracy"} <= set(history)
    heads = ["--model", f"intent={tmp_path / 'run' / 'model.keras'}"]
    heads += ["--model", f"reply={tmp_path / 'run' / 'reply_model.keras'}"]
    base = tmp_path / "saved_models"
    assert main(["export", *heads, "--name", "shop_assistant", "--out", str(base)]) == 0
    # (check-export of a shop assistant against its Keras heads: tests/models/test_shop_assistant.py)
    assert (base / "shop_assistant" / "1" / "saved_model.pb").is_file()
    assert main(["export", "--model", str(tmp_path / "run"), "--model", "x", "--out", str(base)]) == 2
    assert "name each head: HEAD=PATH" in capsys.readouterr().err
    # A fresh process (as `ecomrec-tf export`) knows every model class without importing its module.
    load = (
        "import sys; from ecomrec_tf.cli.options import load_model as f; print(type(f(sys.argv[1])).__name__)"
    )
    loaded = subprocess.run([sys.executable, "-c", load, str(tmp_path / "run" / "reply_model.keras")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert loaded.stdout.split()[-1] == "ReplyModel"
