import json

import pytest

from ecomrec_tf.data import DataError
from ecomrec_tf.data.readers import split_file
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.training.reply import evaluate_reply, read_reply_bank, train_reply


@pytest.fixture(scope="module")
def dialogue_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    generate_shop(out, ShopConfig(users=240, seed=5), progress=False)
    return split_file(out / "dialogues.jsonl", out / "dialogues", valid_fraction=0.2, test_fraction=0.2)


def test_split_file_shuffles_every_record_into_one_split(dialogue_files, tmp_path):
    parts = {split: f.read_text().splitlines() for split, f in dialogue_files.items()}
    source = (dialogue_files["train"].parent.parent / "dialogues.jsonl").read_text().splitlines()
    assert sorted(sum(parts.values(), [])) == sorted(source)
    assert len(parts["test"]) == round(0.2 * len(source)) and parts["train"][:5] != source[:5]
    (tmp_path / "two.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    with pytest.raises(DataError, match="two.jsonl: 2 records"):
        split_file(tmp_path / "two.jsonl", tmp_path / "out")


def test_train_then_evaluate_beside_the_tfidf_baseline(dialogue_files, tmp_path):
    model, history = train_reply(dialogue_files["train"], dialogue_files["valid"], tmp_path, encoder="tiny",
                                 epochs=2, batch_size=16, sequence_length=48, train_top_layers=None,
                                 learning_rate=1e-3, verbose=0)  # fmt: skip
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "curves.png").is_file()
    assert "val_in_batch_accuracy" in history
    assert history["loss"][1] < history["loss"][0]  # it learns (the schedule knows the epoch's steps)
    result = evaluate_reply(model, dialogue_files["test"], dialogue_files["train"], tmp_path, examples=3)
    for name in ("dual_encoder", "tfidf"):
        metrics = result[name]
        assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= 1 and 0 < metrics["mrr"] <= 1
        assert 0 <= metrics["bleu"] <= 100 and 0 <= metrics["rouge_l"] <= 1
    assert result["tfidf"]["recall@1"] > 0.2  # the baseline works on the shop's phrasing
    replies = {json.loads(line)["reply"] for f in ("train", "test") for line in dialogue_files[f].open()}
    assert result["dual_encoder"]["candidates"] == min(100, len(replies))  # topped up from training replies
    assert len(result["examples"]) == 3 and all(e["reply"] for e in result["examples"])  # never empty
    assert json.loads((tmp_path / "reply_metrics.json").read_text())["dialogues"] == result["dialogues"]


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
