from collections import Counter

from ecomrec_tf.data import generate_intent_data
from ecomrec_tf.data.intent_data import _Filler, split_templates
from ecomrec_tf.data.intent_templates import INTENT_TEMPLATES


def test_default_size_and_variety():
    data = generate_intent_data(seed=0)
    total = sum(len(records) for records in data.values())
    assert total >= 5000
    labels = Counter(record["label"] for record in data["train"])
    assert len(labels) >= 20 and min(labels.values()) == 200
    texts = [record["text"] for record in data["train"]]
    assert any(text.isupper() for text in texts)  # mixed case
    assert any(" pls" in text or " u " in text for text in texts)  # abbreviations


def test_same_seed_same_data_other_seed_other_data():
    assert generate_intent_data(seed=5, train_per_intent=20) == generate_intent_data(
        seed=5, train_per_intent=20
    )
    assert generate_intent_data(seed=5, train_per_intent=20) != generate_intent_data(
        seed=6, train_per_intent=20
    )


def test_evaluation_templates_and_slot_values_are_unseen_in_training():
    for intent, splits in split_templates(seed=0).items():
        assert len(splits["test"]) >= 2 and len(splits["valid"]) >= 2, intent
        assert not set(splits["test"]) & set(splits["train"])
        assert not set(splits["valid"]) & set(splits["train"])
        assert sorted(splits["test"] + splits["valid"] + splits["train"]) == sorted(INTENT_TEMPLATES[intent])
    sides = _Filler(seed=0).sides
    assert not set(sides["train"]["model"]) & set(sides["held_out"]["model"])
    for category, (items, brands) in sides["held_out"]["category"].items():
        train_items, train_brands = sides["train"]["category"][category]
        assert not set(items) & set(train_items) and not set(brands) & set(train_brands)


def test_no_text_in_two_splits():
    data = generate_intent_data(seed=1, train_per_intent=50, eval_per_intent=20)
    train = {r["text"] for r in data["train"]}
    assert not train & {r["text"] for r in data["test"]}
    assert not train & {r["text"] for r in data["valid"]}
