import pytest
import tensorflow as tf

from ecomrec_tf.preprocessing.slot_extractor import ORDER_ID, SlotExtractor
from tests.helpers import assert_config_round_trip

PRODUCTS = [
    "Nike Air 20 running shoes",
    "Nike Air 20",
    "Sony Max 9 headphones",
    "Fjällräven Classic 97 backpack",
]


@pytest.fixture(scope="module")
def extractor():
    return SlotExtractor({"order_id": ORDER_ID}, {"product": PRODUCTS, "payment": ["PayPal", "visa card"]})


def run(extractor, texts):
    return {
        slot: [v.decode() for v in values.numpy()] for slot, values in extractor(tf.constant(texts)).items()
    }


def test_last_mention_wins_and_phrases_come_back_as_the_vocabulary_spells_them(extractor):
    out = run(
        extractor,
        ["[customer] order #1234567 or maybe #7654321? [agent] ok", "my NIKE AIR 20 RUNNING SHOES broke"],
    )
    assert out["order_id"] == ["#7654321", ""]
    assert out["product"] == ["", "Nike Air 20 running shoes"]  # the longest phrase, canonical spelling


def test_whole_words_only_and_nothing_is_invented(extractor):
    out = run(extractor, ["i paid with paypalx", "order 12 please", "", "   ", "nike air 200 shoes"])
    assert out == {"order_id": [""] * 5, "product": [""] * 5, "payment": [""] * 5}


def test_keeps_the_input_shape_and_survives_odd_bytes(extractor):
    values = extractor(tf.constant([[b"\xff\xfe #123456", b"visa card"]]))
    assert values["order_id"].shape == (1, 2)
    assert values["order_id"].numpy()[0, 0] == b"#123456" and values["payment"].numpy()[0, 1] == b"visa card"


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="both a pattern and a vocabulary"):
        SlotExtractor({"product": "x"}, {"product": ["a"]})
    with pytest.raises(ValueError, match="non-empty phrases"):
        SlotExtractor(vocabularies={"product": ["", "a"]})


def test_config_round_trip(extractor):
    assert_config_round_trip(extractor)


def test_a_thousand_product_names_inside_a_traced_function():
    from ecomrec_tf.data.reply_bank import shop_slot_values
    from ecomrec_tf.data.shop import generate_catalog

    products = shop_slot_values(generate_catalog(items_per_category=50))["product"]
    assert len(products) > 1000
    extractor = SlotExtractor(vocabularies={"product": products})
    text = f"hi. can I return the {products[7].upper()}, please? (not the {products[3]})"
    found = tf.function(extractor)(tf.constant([text, "nothing here"]))["product"].numpy()
    assert found.tolist() == [products[3].encode(), b""]
