from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.data.corpus import shop_corpus
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.preprocessing import TextAugmenter
from ecomrec_tf.preprocessing.mlm_substituter import MLMSubstituter
from ecomrec_tf.training.mlm import ENCODER_DIR, MLM_FILE, pretrain_mlm

CORPUS = [
    "red running shoes for women",
    "blue running shoes for men",
    "cheap red dress for summer",
    "where is my parcel",
    "my parcel has not arrived",
    "black leather boots for winter",
] * 8


def test_pretraining_lowers_the_mlm_loss_and_writes_a_loadable_encoder(tmp_path):
    encoder, history = pretrain_mlm(
        CORPUS,
        tmp_path,
        encoder="tiny",
        epochs=3,
        batch_size=16,
        learning_rate=3e-3,
        sequence_length=16,
        valid_texts=CORPUS[:12],
        head_warmup_steps=2,
        verbose=0,
    )
    assert (tmp_path / "head_warmup" / "checkpoints" / "checkpoint").exists()  # the head trained alone first
    # 3 epochs of a few full batches each (length-sorted batches leave no partial ones): 10.1 -> 9.2
    assert history["mlm_loss"][-1] < history["mlm_loss"][0] - 0.5
    assert history["val_mlm_loss"][-1] < history["val_mlm_loss"][0]
    reloaded = load_encoder(tmp_path / ENCODER_DIR)
    for a, b in zip(encoder.backbone.weights, reloaded.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert reloaded.tokenizer.get_vocabulary() == encoder.tokenizer.get_vocabulary()
    assert isinstance(keras.models.load_model(tmp_path / MLM_FILE, compile=False), keras.Model)


def test_the_mlm_substituter_replaces_only_unprotected_words_inside_tf_data(tiny_encoder):
    from ecomrec_tf.training.mlm import masked_lm

    keras.utils.set_random_seed(0)
    substituter = MLMSubstituter(
        masked_lm(tiny_encoder), tiny_encoder.tokenizer, rate=1.0, max_words=2, protected_words=["nike"]
    )
    augment = TextAugmenter({}, token_substituter=substituter, protected_words=["nike"])
    texts = tf.constant(["nike running shoes size 10.5", "where is my parcel", "", "ORDER 123"])
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(lambda t: augment(t, seed=[0, 1]))
    out = [t.decode() for t in next(iter(dataset)).numpy()]
    first = out[0].split()
    assert first[0] == "nike" and first[3:] == ["size", "10.5"]  # brand, size and number kept
    assert first[1:3] != ["running", "shoes"]  # the first two free words replaced (max_words=2)
    assert out[1].split()[2:] == ["my", "parcel"] and out[1] != "where is my parcel"
    assert out[2] == "" and out[3] == "ORDER 123"
    assert all(word.isalpha() for word in first[1:3])  # whole-word tokens only
    again = [t.decode() for t in augment(texts, seed=[0, 1]).numpy()]
    assert again == out  # deterministic per seed


def test_the_corpus_collects_distinct_texts_from_shop_files(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(
        '{"item_id": "a", "title": "Red shoes", "description": "Nice red shoes.", "category": "shoes"}\n'
        '{"item_id": "b", "title": "Red shoes", "category": "shoes"}\n'
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"user_id": "u", "item_id": "a", "timestamp": 1700000000, "event": "view", "query": "red shoe"}\n'
        '{"user_id": "u", "item_id": "a", "timestamp": 1800000000, "event": "view", "query": "blue hat"}\n'
    )
    assert shop_corpus(items, events) == ["Red shoes", "Nice red shoes.", "red shoe", "blue hat"]
    assert shop_corpus(items, events, events_before=1800000000) == [
        "Red shoes",
        "Nice red shoes.",
        "red shoe",
    ]


def test_a_shop_folders_corpus_holds_no_text_an_evaluation_scores(tmp_path):
    import json

    from ecomrec_tf.data.corpus import shop_dir_corpus
    from ecomrec_tf.data.readers import split_file
    from ecomrec_tf.data.shop import ShopConfig, generate_shop

    generate_shop(tmp_path, ShopConfig(users=150, seed=4), progress=False)
    split = split_file(
        tmp_path / "dialogues.jsonl", tmp_path / "dialogues", 0.1, 0.1, seed=0, group_by="auto"
    )
    corpus = set(shop_dir_corpus(tmp_path))

    def lines(path):
        return [json.loads(line) for line in Path(path).read_text().splitlines()]

    held_out = {
        r["text"] for name in ("valid", "test") for r in lines(tmp_path / "intents" / f"{name}.jsonl")
    }
    test_replies = {d["reply"] for d in lines(split["test"])} - {d["reply"] for d in lines(split["train"])}
    events = sorted(lines(tmp_path / "events.jsonl"), key=lambda e: e["timestamp"])
    late = {e["query"] for e in events[int(0.8 * len(events)) :] if e.get("query")}
    early = {e["query"] for e in events[: int(0.8 * len(events))] if e.get("query")}
    assert held_out and test_replies and late - early
    assert not corpus & held_out and not corpus & test_replies and not corpus & (late - early)
    assert {r["text"] for r in lines(tmp_path / "intents" / "train.jsonl")} <= corpus
    assert {d["reply"] for d in lines(split["train"])} <= corpus and early <= corpus
