import numpy as np

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


def test_purchase_batches_carry_ragged_histories_and_defined_prices():
    examples = [
        {"history": [], "item_id": "A", "query": None, "label": 1},  # a new user: empty history
        {"history": ["A", "B"], "item_id": "B", "query": "sony headphones", "label": 0},
    ]
    features, labels = next(iter(purchase_dataset(examples, ITEMS, batch_size=2)))
    assert features["history"].row_lengths().numpy().tolist() == [0, 2]
    assert (
        features["history"][1, 0].numpy().decode()
        == item_text(ITEMS["A"])
        == "Nike Air Max 90 | sneakers | black"
    )
    assert [q.decode() for q in features["query"].numpy()] == ["", "sony headphones"]
    np.testing.assert_allclose(features["log_price"].numpy(), [np.log1p(120.0), 0.0], rtol=1e-6)
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
    features, intents = next(iter(dialogue_dataset(dialogues, batch_size=2, max_turns=2)))
    assert [c.decode() for c in features["context"].numpy()] == [
        "[customer] cancel it",
        "[agent] Hello! [customer] refund?",
    ]
    assert [i.decode() for i in intents.numpy()] == ["cancel_order", ""]
