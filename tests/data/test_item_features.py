import json
import math

import numpy as np
import pytest

from ecomrec_tf.data.event_state import EventState
from ecomrec_tf.data.events import read_items
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.data.readers import DataError, write_tfrecord
from ecomrec_tf.models.purchase_model import input_specs, request_tensors

ITEMS = [
    {"item_id": "A", "title": "Acme kettle", "category": "kitchen", "image_vector": [0.5, 1.0],
     "attributes": {"weight": 1.2, "brand": "Acme", "rating": 4}},
    {"item_id": "B", "title": "Zeta lamp", "category": "home", "attributes": {"brand": "Zeta"}},
    {"item_id": "C", "title": "Nike shoes", "category": "shoes", "image_vector": None},
]  # fmt: skip


def test_formats_give_the_same_features(tmp_path):
    """JSONL (an attributes object), CSV (`attributes.<name>` columns) and TFRecord read alike."""
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    (tmp_path / "items.csv").write_text(
        "item_id,title,category,image_vector,attributes.weight,attributes.brand,attributes.rating\n"
        "A,Acme kettle,kitchen,0.5 1.0,1.2,Acme,4\nB,Zeta lamp,home,,,Zeta,\nC,Nike shoes,shoes,[],,,\n"
    )
    flat = [{k: v for k, v in item.items() if k != "attributes"} for item in ITEMS]
    for item, record in zip(ITEMS, flat):
        record |= {f"attributes.{k}": v for k, v in item.get("attributes", {}).items()}
    write_tfrecord(flat, tmp_path / "items.tfrecord")
    read = {suffix: read_items(tmp_path / f"items.{suffix}") for suffix in ("jsonl", "csv", "tfrecord")}
    features = {suffix: ItemFeatures.infer(items) for suffix, items in read.items()}
    assert features["jsonl"] == ItemFeatures(2, ("rating", "weight"), ("brand",))
    for suffix, items in read.items():
        assert features[suffix] == features["jsonl"], suffix
        matrices = features[suffix].matrices(["A", "B", "C"], items)
        np.testing.assert_allclose(matrices["image_vector"], [[0.5, 1.0], [np.nan] * 2, [np.nan] * 2])
        np.testing.assert_allclose(matrices["numeric_attributes"], [[4, 1.2], [np.nan] * 2, [np.nan] * 2])
        assert matrices["categorical_attributes"].tolist() == [["Acme"], ["Zeta"], [""]]


def test_a_catalog_without_features_has_none():
    items = {"A": {"item_id": "A", "category": "c"}}
    assert not ItemFeatures.infer(items) and ItemFeatures.infer(items).shapes() == {}
    assert ItemFeatures.from_config(ItemFeatures(3, ["w"]).get_config()) == ItemFeatures(3, ("w",))


def test_requests_carry_the_features_of_history_and_candidates(tmp_path):
    """`EventState.request` rows hold each history item's and candidate's features (missing ones NaN or
    ""), and `request_tensors` pads them into the model's input shapes."""
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    items = read_items(tmp_path / "items.jsonl")
    state = EventState(items)
    state.apply({"user_id": "u", "item_id": "A", "timestamp": 10, "event": "click"})
    texts = {i: items[i]["title"] for i in items}
    row = state.request("u", ["B", "A"], 20, texts)
    assert row["history_image_vector"] == [[0.5, 1.0]]
    assert row["candidate_categorical_attributes"] == [["Zeta"], ["Acme"]]
    assert all(math.isnan(v) for v in row["candidate_numeric_attributes"][0])
    new_user = state.user_request("new", 20, texts)
    assert all(math.isnan(v) for v in new_user["history_image_vector"][0])
    features = state.catalog_features
    specs = input_specs((), "user", features)
    tensors = request_tensors([state.user_request("u", 20, texts), new_user], specs)
    assert tensors["history_image_vector"].shape == (2, 1, 2)
    assert tensors["history_categorical_attributes"].numpy().tolist() == [[[b"Acme"]], [[b""]]]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"image_vector": "0.5 x"}, "field 'image_vector' is not a list of numbers"),
        ({"image_vector": [1.0, True]}, "field 'image_vector' must be a list of numbers"),
        ({"attributes": [1, 2]}, "field 'attributes' must be an object"),
        ({"attributes": "{not json"}, "field 'attributes' is not a JSON object"),
        ({"attributes": {"tags": {"a": 1}}}, "attribute 'tags' must be a number or a string"),
    ],
)
def test_bad_features_name_the_line_and_field(tmp_path, record, message):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(ITEMS[1]) + "\n" + json.dumps({**ITEMS[2], **record}) + "\n")
    with pytest.raises(DataError, match=f"items.jsonl:2: {message}"):
        read_items(path)
