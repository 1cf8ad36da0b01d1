"""Base class for functional models whose inputs are raw strings."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def strings_to_tensors(x):
    """Numpy string arrays and lists of str -> `tf.string` tensors; anything else unchanged.

    Keras's array adapter rejects numpy unicode arrays, but takes `tf.string` tensors.
    """
    if isinstance(x, dict):
        return {key: strings_to_tensors(value) for key, value in x.items()}
    if isinstance(x, (list, tuple)) and x and all(isinstance(item, (str, bytes)) for item in x):
        return tf.constant(x, dtype=tf.string)
    if isinstance(x, np.ndarray) and x.dtype.kind in "USO":
        return tf.constant(x.astype(object) if x.dtype.kind == "U" else x, dtype=tf.string)
    return x


def targets_to_arrays(y):
    """Python lists of targets (ints, floats, lists of them) -> numpy arrays, which Keras's adapter takes."""
    if isinstance(y, dict):
        return {key: targets_to_arrays(value) for key, value in y.items()}
    if isinstance(y, (list, tuple)) and y and not any(isinstance(item, (str, bytes)) for item in y):
        return np.asarray(y)
    return y


def feature_inputs() -> dict[str, keras.KerasTensor]:
    """Symbolic `token_ids`, `padding_mask`, `segment_ids` inputs, as `TextPreprocessor` returns them."""
    return {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
        "segment_ids": keras.Input((None,), dtype="int32", name="segment_ids"),
    }


def training_output(model: keras.Model, y_pred):
    """The output(s) a model trains on: `y_pred[model.target_output]`, a dict of several when it names a
    tuple (then `y`, losses and metrics are dicts by output name), or `y_pred` if it names none."""
    target = getattr(model, "target_output", None)
    if isinstance(target, tuple):
        return {name: y_pred[name] for name in target}
    return y_pred[target] if target else y_pred


def training_view(model: keras.Model, outputs: str | tuple[str, ...] | None) -> keras.Model:
    """A functional model over `model` (sharing its weights) with only the output(s) a loss reads:
    `outputs` one name (the view returns that tensor), a tuple of names (a dict of them), or None
    (`model` itself). What both `fit` and the `Trainer` train, so saving `model` keeps what trained."""
    if outputs is None:
        return model

    def like(tensor, name):
        return keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)

    if isinstance(model.input, dict):
        inputs = {name: like(tensor, name) for name, tensor in model.input.items()}
    else:
        inputs = like(model.input, model.input.name)
    y = model(inputs)
    selected = y[outputs] if isinstance(outputs, str) else {name: y[name] for name in outputs}
    return keras.Model(inputs, selected, name=f"{model.name}_training")


class TextModel(keras.Model):
    """A functional Keras model that takes raw strings in `fit`, `evaluate` and `predict`.

    Subclasses build their graph in `__init__` and call `super().__init__(inputs=..., outputs=...)`.
    Numpy string arrays and lists of strings are turned into `tf.string` tensors, lists of targets
    into numpy arrays; `tf.data` datasets pass through.

    Subclasses split their graph in two: `preprocessor` (strings -> token features, tf-text ops)
    and `core` (a functional model from `feature_inputs()` to the outputs). The training loop runs
    `preprocessor` in the input pipeline and `core` on the accelerator, where XLA can compile it.

    Models with several named outputs train on one of them, `target_output`: `compile(loss=...,
    metrics=[...])` and `fit(x, y)` then take plain targets for that output, while `predict` and
    serving return every output. A tuple of names trains on several, with dicts of targets and
    losses keyed by output name.
    """

    target_output: str | None = None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x, y, training_output(self, y_pred), sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, training_output(self, y_pred), sample_weight)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Like `keras.Model.fit`; a `tf.data` dataset is taken as shuffled by its pipeline (Keras would
        warn that it ignores `shuffle`)."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)
        return super().fit(strings_to_tensors(x), targets_to_arrays(y), *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(strings_to_tensors(x), targets_to_arrays(y), *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """Like `keras.Model.predict`; a 1-D batch of strings runs sorted by length.

        Sorting puts texts of similar length in the same batch, so batches carry little padding;
        outputs come back in input order.
        """
        x = strings_to_tensors(x)
        if not (isinstance(x, tf.Tensor) and x.dtype == tf.string and x.shape.rank == 1):
            return super().predict(x, *args, **kwargs)
        order = np.argsort(tf.strings.length(x).numpy(), kind="stable")
        outputs = super().predict(tf.gather(x, order), *args, **kwargs)
        inverse = np.argsort(order)
        return keras.tree.map_structure(lambda array: array[inverse], outputs)
