"""Nested Keras objects (backbone, preprocessor, sub-models) in a layer's or model's config."""

from __future__ import annotations

import keras


def serialize_objects(**objects) -> dict:
    """`{name: serialized object}`; None stays None (an optional part)."""
    return {
        name: None if obj is None else keras.saving.serialize_keras_object(obj)
        for name, obj in objects.items()
    }


def deserialize_objects(config: dict, *names: str) -> dict:
    """A copy of `config` with the named entries turned back into objects (None stays None)."""
    config = dict(config)
    for name in names:
        if config.get(name) is not None:
            config[name] = keras.saving.deserialize_keras_object(config[name])
    return config
