"""Shared fixtures: a tiny random encoder and a small intent data set, built once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pytest  # noqa: E402

import ecomrec_tf  # noqa: E402, F401

LABELS = ["order_status", "refund_status", "search_product"]
TEXTS = [
    "where is my parcel",
    "refund not received yet",
    "red running shoes size 10.5",
    "track order #12345",
    "when do i get my money back",
    "nike air max 90 black",
]


@pytest.fixture(scope="session")
def tiny_encoder():
    from ecomrec_tf.encoders import load_encoder

    return load_encoder("tiny")


@pytest.fixture()
def tiny_intent_model(tiny_encoder):
    """A fresh, untrained intent model on the session's tiny encoder weights (copied)."""
    import keras

    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.models import build_intent_model

    encoder = load_encoder("tiny")
    encoder.backbone.set_weights(tiny_encoder.backbone.get_weights())
    keras.utils.set_random_seed(1)
    return build_intent_model(encoder, LABELS, sequence_length=16)


@pytest.fixture(scope="session")
def tiny_intent_export(tmp_path_factory):
    """`(model, SavedModel version folder)`: one untrained tiny intent model and its export, shared by
    the export, check-export, client and bad-input tests (they read it; a test that breaks an export
    copies it first)."""
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.export import export_saved_model
    from ecomrec_tf.models import build_intent_model

    model = build_intent_model(load_encoder("tiny"), LABELS, sequence_length=16)
    return model, export_saved_model(model, tmp_path_factory.mktemp("sm") / "intent")


@pytest.fixture(scope="session")
def tiny_purchase_export(tmp_path_factory):
    """`(model, SavedModel version folder)`: one untrained tiny two-tower purchase model (every
    signature: scoring, both towers, rank) and its export, shared by the signature, Beam and serving
    guide tests (they read it)."""
    import keras

    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.export import export_saved_model
    from ecomrec_tf.models import build_purchase_model

    keras.utils.set_random_seed(0)
    sizes = {"user": 4, "item": 8, "category": 5}
    model = build_purchase_model(load_encoder("tiny"), 16, mode="two_tower", vocabulary_sizes=sizes)
    items = [f"SKU-{i}" for i in range(7)]
    model.set_vocabularies(
        {"user": ["u1", "u2"], "item": items, "category": ["kettle", "lamp", "shoes", "sofa"]}
    )
    return model, export_saved_model(model, tmp_path_factory.mktemp("sm") / "purchase")


@pytest.fixture(scope="session")
def intent_data_dir(tmp_path_factory):
    """The embedded intent set, small: train/valid/test JSONL."""
    from ecomrec_tf.data import write_intent_data

    out = tmp_path_factory.mktemp("intent_data")
    write_intent_data(out, seed=3, train_per_intent=12, eval_per_intent=4)
    return out


LONG = ("slow", "notebook", "subprocess")


def pytest_collection_modifyitems(items):
    """Long tests first: under `pytest -n` (what `make test` runs) they start while the short ones
    fill the other workers, instead of finishing alone at the end."""
    items.sort(key=lambda item: not any(item.get_closest_marker(name) for name in LONG))
