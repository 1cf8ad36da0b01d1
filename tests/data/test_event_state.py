import math
import random

import pytest

from ecomrec_tf.data.event_state import FEATURES, EventState
from ecomrec_tf.data.events import EVENT_TYPES, purchase_examples

ITEMS = {
    "A": {"category": "shoes", "price": 80.0},
    "B": {"category": "shoes", "price": 120.0},
    "C": {"category": "audio", "price": None},
}


def event(user, item, time, kind):
    return {"user_id": user, "item_id": item, "timestamp": time, "event": kind, "query": None}


def test_counts_rates_recency_and_history_by_hand():
    state = EventState(ITEMS, history_size=2)
    for e in [
        event("u", "A", 10, "view"),
        event("u", "A", 11, "purchase"),
        event("u", "B", 20, "view"),
        event("v", "B", 25, "view"),
        event("u", "C", 30, "view"),
        event("u", "C", 31, "click"),
        event("u", "B", 40, "cart"),
    ]:
        state.apply(e)
    features = state.features("u", "B", now=100)
    assert features["user_views"] == 3 and features["user_purchases"] == 1
    assert features["user_purchases_last5"] == 1 and features["user_purchases_last50"] == 1
    assert features["user_idle_seconds"] == 60 and features["user_mean_price"] == 80.0
    assert features["item_views"] == 2 and features["item_purchases"] == 0  # u and v viewed B
    assert features["category_views"] == 2 and features["category_purchases"] == 1  # shoes: A and B
    assert state.history("u") == ["B", "C"]  # most recent first, at most history_size
    new = state.features("nobody", "C", now=5)
    assert (
        new["user_views"] == 0 and math.isnan(new["user_idle_seconds"]) and math.isnan(new["user_mean_price"])
    )


def test_a_purchase_marks_only_a_recent_view_of_the_same_item():
    state = EventState(ITEMS)
    state.apply(event("u", "A", 0, "view"))
    state.apply(event("u", "B", 10, "view"))
    state.apply(event("u", "A", 2 * 86_400, "purchase"))  # two days after the view: not its purchase
    assert state.features("u", "A", 3 * 86_400)["user_purchases_last5"] == 0
    state.apply(event("u", "B", 3 * 86_400, "purchase"))  # more than a day too
    state.apply(event("u", "C", 3 * 86_400 + 5, "view"))
    state.apply(event("u", "C", 3 * 86_400 + 9, "purchase"))
    assert state.features("u", "A", 4 * 86_400)["user_purchases_last5"] == 1


def random_log(seed: int, events: int = 400) -> list[dict]:
    rng = random.Random(seed)
    log, time = [], 0
    for _ in range(events):
        time += rng.choice([0, 0, 1, 5, 3600])  # several events often share a second
        user, item = rng.choice("uvw"), rng.choice("ABC")
        log.append(event(user, item, time, "view"))
        if rng.random() < 0.4:
            log.append(event(user, item, time + rng.choice([0, 2, 100_000]), "purchase"))
        if rng.random() < 0.3:
            log.append(event(user, item, time + 1, "click"))
    return log


@pytest.mark.parametrize("seed", [0, 1])
def test_examples_see_exactly_the_events_strictly_before_them(seed):
    """The oracle: a fresh state fed only the events strictly earlier than each example."""
    log = random_log(seed)
    for example in purchase_examples(log, ITEMS):
        earlier = EventState(ITEMS)
        for e in sorted(log, key=lambda e: (e["timestamp"], EVENT_TYPES.index(e["event"]))):
            if e["timestamp"] < example["timestamp"]:
                earlier.apply(e)
        expected = earlier.features(example["user_id"], example["item_id"], example["timestamp"])
        assert example["features"].keys() == FEATURES.keys()
        for name, value in expected.items():
            assert example["features"][name] == pytest.approx(value, nan_ok=True), name
        assert example["history"] == earlier.history(example["user_id"])


def test_future_events_never_change_an_example():
    log = random_log(2)
    cut = log[len(log) // 2]["timestamp"]
    past = [e for e in log if e["timestamp"] < cut]
    settled = cut - 86_400  # examples whose label window closes before the cut

    def examples(events):
        return {
            (e["user_id"], e["item_id"], e["timestamp"]): e
            for e in purchase_examples(events, ITEMS)
            if e["timestamp"] < settled
        }

    before, after = examples(past), examples(log)
    assert len(before) > 20 and before == after


def test_earlier_logs_give_counts_and_histories_but_no_examples():
    train = [event("u", "A", 10, "view"), event("u", "A", 10, "purchase"), event("v", "A", 12, "view")]
    test = [event("u", "B", 50, "view"), event("u", "B", 50, "purchase")]
    (example,) = purchase_examples(test, ITEMS, earlier=train)
    assert example["item_id"] == "B" and example["label"] == 1
    assert example["history"] == ["A"]
    assert example["features"]["user_views"] == 1 and example["features"]["category_purchases"] == 1
    assert example["features"]["item_views"] == 0  # B's own view at t=50 is not before itself


def test_a_serving_request_holds_what_the_model_reads():
    state = EventState(ITEMS)
    for e in [event("u", "A", 10, "view"), event("u", "A", 11, "purchase"), event("u", "C", 20, "view")]:
        state.apply(e)
    texts = {"A": "Acme runner | shoes", "B": "Acme trail | shoes", "C": "Tone buds | audio"}
    request = state.request("u", ["B", "C"], now=60, texts=texts)
    assert request["history_ids"] == ["A"] and request["history"] == ["Acme runner | shoes"]
    assert request["candidates"] == [texts["B"], texts["C"]] and request["candidate_ids"] == ["B", "C"]
    assert request["user_views"] == 2 and request["user_idle_seconds"] == 40
    assert request["candidate_category_purchases"] == [1.0, 0.0]
    assert request["candidate_item_views"] == [0.0, 1.0]
    assert math.isnan(request["candidate_price"][1])


def test_a_session_is_ranked_with_the_state_at_its_first_view():
    log = [
        event("u", "A", 0, "view"),
        event("u", "A", 5, "purchase"),
        event("u", "B", 60, "view"),  # the same session: less than 30 minutes after the last view
        event("u", "C", 4000, "view"),  # a new session
    ]
    live = purchase_examples(log, ITEMS)
    frozen = purchase_examples(log, ITEMS, session_gap=1800)
    assert [e["label"] for e in frozen] == [e["label"] for e in live] == [1, 0, 0]
    assert live[1]["features"]["user_purchases"] == 1 and live[1]["history"] == ["A"]
    assert frozen[1]["features"]["user_purchases"] == 0 and frozen[1]["history"] == []  # as at t=0
    assert frozen[1]["features"]["category_views"] == 0  # B is shoes too, but the view of A came later
    assert frozen[2]["features"] == live[2]["features"]  # the next session starts from the live state
