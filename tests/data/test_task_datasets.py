import numpy as np

from ecomrec_tf.data.event_state import FEATURES
from ecomrec_tf.data.task_datasets import dialogue_context, dialogue_dataset, item_text, purchase_dataset

ITEMS = {
    "A": {
        "item_id": "A",
        "title": "Nike Air Max 90",
        "category": "sneakers",
        "description": "black",
        "price": 120.0,
    },
    "B": {
        "item_id": "B",
        "title": "Sony WH-1000XM5",
        "category": "headphones",
        "description": "",
        "price": None,
    },
}


def example(history, item_id, query=None, label=0, user_id="u", **features):
    """A purchase example as `events.purchase_examples` makes it."""
    counts = {name: 0.0 for name in FEATURES} | features
    return {"user_id": user_id, "history": history, "item_id": item_id, "query": query, "label": label,
            "features": counts, "timestamp": 0, "catalog_negative": False}  # fmt: skip


def test_purchase_batches_pad_histories_and_mark_unknown_prices():
    examples = [
        example([], "A", label=1, user_id="new"),  # a new user: empty history
        example(["A", "B"], "B", "sony headphones", user_views=7.0),
    ]
    features, labels = next(iter(purchase_dataset(examples, ITEMS, batch_size=2, bucket=False)))
    assert features["history"].shape == features["history_ids"].shape == (2, 2)
    assert features["history"][0].numpy().tolist() == [b"", b""]  # a new user: all padding
    assert features["history_ids"][1].numpy().tolist() == [b"A", b"B"]
    assert [u.decode() for u in features["user_id"].numpy()] == ["new", "u"]
    assert [c.decode() for c in features["category"].numpy()] == ["sneakers", "headphones"]
    assert features["user_views"].numpy().tolist() == [0.0, 7.0]
    assert (
        features["history"][1, 0].numpy().decode()
        == item_text(ITEMS["A"])
        == "Nike Air Max 90 | sneakers | black"
    )
    assert [q.decode() for q in features["query"].numpy()] == ["", "sony headphones"]
    assert features["price"].numpy()[0] == 120.0 and np.isnan(features["price"].numpy()[1])
    assert labels.numpy().tolist() == [1.0, 0.0]


def test_dialogue_context_keeps_the_last_turns_with_speakers():
    turns = [
        "hi",
        "Hello! How can I help?",
        "where is my order",
        "Could you share the number?",
        "it's #1234567",
    ]
    assert dialogue_context(turns, max_turns=3) == (
        "[customer] where is my order [agent] Could you share the number? [customer] it's #1234567"
    )
    assert dialogue_context(["cancel it"]) == "[customer] cancel it"


def test_dialogue_batches():
    dialogues = [{"context": ["cancel it"], "reply": "Which order?", "intent": "cancel_order"},
                 {"context": ["hi", "Hello!", "refund?"], "reply": "Refunds take 5 days."}]  # fmt: skip
    features, intents = next(iter(dialogue_dataset(dialogues, batch_size=2, max_turns=2, bucket=False)))
    assert [c.decode() for c in features["context"].numpy()] == [
        "[customer] cancel it",
        "[agent] Hello! [customer] refund?",
    ]
    assert [i.decode() for i in intents.numpy()] == ["cancel_order", ""]


def test_dialogues_from_csv(tmp_path):
    from ecomrec_tf.data.readers import read_dialogues

    path = tmp_path / "d.csv"
    path.write_text(
        'context,reply,intent\n"[""hi"", ""Hello!"", ""wo ist mein Paket?""]",Let me check.,order_status\n'
    )
    assert read_dialogues(path) == [
        {
            "context": ["hi", "Hello!", "wo ist mein Paket?"],
            "reply": "Let me check.",
            "intent": "order_status",
        }
    ]


def test_input_pipelines_split_in_memory_examples_and_augment_only_the_text():
    import tensorflow as tf

    from ecomrec_tf.data import text_classification_dataset

    dialogues = [{"context": [f"question {i}"], "reply": f"answer {i}"} for i in range(10)]
    upper = lambda text, seed: tf.strings.upper(text)  # noqa: E731
    shares = []
    for index in range(2):
        context = tf.distribute.InputContext(2, index, 2)
        batches = list(dialogue_dataset(dialogues, batch_size=4, input_context=context, augment=upper))
        assert max(len(features["context"]) for features, _ in batches) == 2  # per-replica share of 4
        for features, _ in batches:
            shares += [
                (c.decode(), r.decode())
                for c, r in zip(features["context"].numpy(), features["reply"].numpy())
            ]
        texts = text_classification_dataset(
            [f"t{i}" for i in range(10)], list(range(10)), 4, input_context=context
        )
        assert sum(len(batch) for batch, _ in texts) == 5
    assert sorted(shares) == sorted((f"[CUSTOMER] QUESTION {i}", f"answer {i}") for i in range(10))


def test_bucketing_groups_by_length_and_pads_histories_per_batch():
    items = {f"I{n}": {"item_id": f"I{n}", "title": "x" * n, "category": "c"} for n in (3, 4, 88, 90)}
    examples = [example(["I3"] * (n % 3), f"I{n}") for n in (3, 88, 4, 90)]
    batches = list(purchase_dataset(examples, items, batch_size=2))
    lengths = sorted(sorted(len(t) for t in features["item"].numpy()) for features, _ in batches)
    assert lengths == [[7, 8], [92, 94]]  # "x" * n + " | c"
    history_lengths = sorted(
        int(n) for features, _ in batches for n in np.sum(features["history"].numpy() != b"", axis=1)
    )
    assert history_lengths == [0, 0, 1, 1]
    assert all(features["history"].shape[1] >= 1 for features, _ in batches)  # never zero columns
