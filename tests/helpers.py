"""Checks every model and layer gets, in the spirit of keras-hub's TestCase: a few lines per model."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def assert_config_round_trip(obj) -> None:
    """`get_config` -> `from_config` -> the same config (as JSON)."""
    config = obj.get_config()
    restored = type(obj).from_config(json.loads(json.dumps(config)))
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)


def _numpy(outputs):
    return keras.tree.map_structure(lambda t: np.asarray(t), outputs)


def assert_keras_round_trip(model: keras.Model, inputs, tmp_path: Path) -> keras.Model:
    """Saves to `.keras`, loads it back, and checks outputs are identical."""
    path = Path(tmp_path) / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    expected, actual = _numpy(model(inputs, training=False)), _numpy(restored(inputs, training=False))
    keras.tree.map_structure(lambda a, b: np.testing.assert_array_equal(a, b), expected, actual)
    assert type(restored) is type(model)
    return restored


def assert_saved_model_parity(
    model: keras.Model, texts: list[str], tmp_path: Path, atol: float = 1e-5
) -> Path:
    """Exports with `export_saved_model`, reloads with `tf.saved_model.load`, compares every output."""
    from ecomrec_tf.export import export_saved_model

    version_dir = export_saved_model(model, Path(tmp_path) / "saved_models" / "model")
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    served = {name: value.numpy() for name, value in serve(text=tf.constant(texts)).items()}
    expected = _numpy(model(tf.constant(texts), training=False))
    for name, value in expected.items():
        np.testing.assert_allclose(served[name], value, atol=atol, err_msg=name)
    return version_dir
