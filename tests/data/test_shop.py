import json
import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecomrec_tf.data.events import read_events, read_items
from ecomrec_tf.data.readers import read_dialogues
from ecomrec_tf.data.shop import ShopConfig, ShopTruth, describe_shop, generate_catalog, generate_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    summary = generate_shop(out, ShopConfig(users=150, seed=4), progress=False)
    return out, summary


def test_writes_every_file_with_the_promised_shape(shop):
    out, summary = shop
    items = read_items(out / "items.jsonl")
    assert len(items) == summary["items"] == 960 and len({i["category"] for i in items.values()}) >= 20
    events, report = read_events(out / "events.jsonl", items)
    assert report.events == sum(summary["events"].values()) and not report.unknown_items
    assert {e["event"] for e in events} == {"view", "click", "cart", "purchase"}
    assert any(e["query"] for e in events)
    dialogues = read_dialogues(out / "dialogues.jsonl")
    assert len(dialogues) == summary["dialogues"] > 0
    assert all((out / "intents" / f"{split}.jsonl").is_file() for split in ("train", "valid", "test"))


def test_same_seed_same_shop(tmp_path):
    for name in ("a", "b"):
        generate_shop(tmp_path / name, ShopConfig(users=20, seed=9), progress=False)
    for file in ("items.jsonl", "events.jsonl", "dialogues.jsonl", "intents/test.jsonl"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    generate_shop(tmp_path / "c", ShopConfig(users=20, seed=10), progress=False)
    assert (tmp_path / "a" / "events.jsonl").read_bytes() != (tmp_path / "c" / "events.jsonl").read_bytes()


def test_oracle_auc_matches_sklearn_on_the_true_probabilities(shop):
    """The streamed, binned oracle AUC equals the exact AUC of the generator's probabilities."""
    out, summary = shop
    truth = ShopTruth(generate_catalog(seed=4), seed=4)
    events, _ = read_events(out / "events.jsonl")
    bought = {(e["user_id"], e["item_id"], e["query"]) for e in events if e["event"] == "purchase"}
    views = [e for e in events if e["event"] == "view"]
    scores = [truth.probability(int(e["user_id"][1:]), e["item_id"], e["query"]) for e in views]
    labels = [(e["user_id"], e["item_id"], e["query"]) in bought for e in views]
    assert summary["oracle_auc_views"] == pytest.approx(roc_auc_score(labels, scores), abs=2e-3)
    assert 0.7 < summary["oracle_auc_views"] < 0.95  # learnable, not trivial


def test_purchases_follow_the_ground_truth(shop):
    """Items with a higher true probability are bought more often (calibrated by construction)."""
    out, _ = shop
    truth = ShopTruth(generate_catalog(seed=4), seed=4)
    events, _ = read_events(out / "events.jsonl")
    bought = {(e["user_id"], e["item_id"]) for e in events if e["event"] == "purchase"}
    views = [e for e in events if e["event"] == "view"]
    p = np.array([truth.probability(int(e["user_id"][1:]), e["item_id"], e["query"]) for e in views])
    y = np.array([(e["user_id"], e["item_id"]) in bought for e in views])
    assert abs(y.mean() - p.mean()) < 0.02


def test_replies_fill_slots_only_from_the_conversation(shop):
    out, _ = shop
    for dialogue in read_dialogues(out / "dialogues.jsonl"):
        assert "{" not in dialogue["reply"] and dialogue["reply"].strip()
        for order_id in re.findall(r"#\d{7}", dialogue["reply"]):
            assert any(order_id in turn for turn in dialogue["context"]), dialogue


def test_describe(shop):
    out, summary = shop
    described = describe_shop(out)
    assert described["items"] == 960 and described["events"] == summary["events"]
    assert described["intents"] == 22 and described["intent_utterances"]["train"] == 4400
    json.dumps(described)  # printable as JSON


def test_dialogues_use_only_the_intent_training_templates(tmp_path, monkeypatch):
    """A reply model or MLM corpus reading the dialogues must never see a template held out for
    intent validation and test."""
    from ecomrec_tf.data import shop
    from ecomrec_tf.data.intent_data import split_templates

    used = []
    original = shop._conversation

    def recording(rng, catalog, templates):
        used.append(templates)
        return original(rng, catalog, templates)

    monkeypatch.setattr(shop, "_conversation", recording)
    shop.generate_shop(tmp_path, shop.ShopConfig(users=30, seed=3), progress=False)
    splits = split_templates(3)
    assert used and all(t == {intent: s["train"] for intent, s in splits.items()} for t in used)
    assert all(not set(s["train"]) & set(s["valid"] + s["test"]) for s in splits.values())


def test_a_shop_with_images_hides_a_style_only_the_images_show(tmp_path):
    """`image_dim`: 90% of items get an image vector near their hidden style's centre; the true
    probability rises for the user's preferred style; without images the shop is the text-only one."""
    from ecomrec_tf.cli import main
    from ecomrec_tf.data.item_features import ItemFeatures
    from ecomrec_tf.data.shop import STYLES, item_style

    assert main(["data", "generate", "--out", str(tmp_path / "s"), "--users", "40", "--image-dim", "8"]) == 0
    items = read_items(tmp_path / "s" / "items.jsonl")
    assert ItemFeatures.infer(items) == ItemFeatures(image_dim=8)
    with_image = [i for i in items.values() if i["image_vector"]]
    assert 0.85 < len(with_image) / len(items) < 0.95
    styles = np.array([item_style(0, i["item_id"]) for i in with_image])
    vectors = np.array([i["image_vector"] for i in with_image])
    centres = np.array([vectors[styles == s].mean(0) for s in range(STYLES)])
    nearest = np.argmin(((vectors[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == styles).mean() > 0.9  # the image tells the style
    truth = ShopTruth(list(items.values()), seed=0, image_dim=8)
    preferred = truth.preferred_style(3)
    scores = {s: [truth.probability(3, i["item_id"]) for i in with_image if item_style(0, i["item_id"]) == s]
              for s in range(STYLES)}  # fmt: skip
    assert np.mean(scores[preferred]) > max(np.mean(v) for s, v in scores.items() if s != preferred)
    generate_shop(tmp_path / "plain", ShopConfig(users=40, seed=0), progress=False)
    plain = read_items(tmp_path / "plain" / "items.jsonl")
    assert not ItemFeatures.infer(plain) and [i["title"] for i in plain.values()] == [
        i["title"] for i in items.values()
    ]
