"""A training task: the model a loss trains, the batches it reads, and its weight in a multi-task loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf

DatasetFn = Callable[[tf.distribute.InputContext | None], tf.data.Dataset]


@dataclass
class Task:
    """One loss over one stream of batches; several tasks sharing an encoder make a multi-task run.

    Args:
        name: names the task in logs, metrics (`val_<name>_<metric>`) and task ratios.
        model: a Keras model called on `x` of each batch (for text models, their `core`).
        loss: a Keras loss; the loop reads its unreduced values (`loss.call`).
        train: `input_context -> tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)` batches,
            each replica's share of the global batch (see `tf.distribute.InputContext`), or a dataset.
        valid: the same for validation, or None.
        weight: this task's weight in the summed loss.
        output: the model output the loss reads, for models with several.
        metrics: builds fresh Keras metrics for validation, e.g. `lambda: [SparseCategoricalAccuracy()]`.
        prepare: a `tf.data` map from the raw batch to the model's `x` (tokenisation), run in the
            input pipeline.
    """

    name: str
    model: keras.Model
    loss: keras.losses.Loss
    train: DatasetFn | tf.data.Dataset
    valid: DatasetFn | tf.data.Dataset | None = None
    weight: float = 1.0
    output: str | None = None
    metrics: Callable[[], list[keras.metrics.Metric]] = field(default=list)
    prepare: Callable | None = None

    def dataset(self, split: str, input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        source = self.train if split == "train" else self.valid
        dataset = source if isinstance(source, tf.data.Dataset) else source(input_context)
        if self.prepare is not None:
            dataset = dataset.map(self.prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def per_example_loss(self, batch, training: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(losses, weights, y, y_pred)` for a batch: unreduced float32 losses, their weights (ones if
        none given), the targets and the output the loss read (float32)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = self.model(x, training=training)
        if self.output:
            y_pred = y_pred[self.output]
        y_pred = tf.cast(y_pred, tf.float32)  # losses in float32 under mixed precision
        losses = tf.cast(self.loss.call(y, y_pred), tf.float32)
        weights = tf.ones_like(losses) if sample_weight is None else tf.cast(sample_weight, tf.float32)
        return losses, weights, y, y_pred


def text_task(
    name: str,
    model,
    loss: keras.losses.Loss,
    train: DatasetFn | tf.data.Dataset,
    valid: DatasetFn | tf.data.Dataset | None = None,
    weight: float = 1.0,
    metrics: Callable[[], list[keras.metrics.Metric]] = list,
    pad_to_multiple: int | None = None,
) -> Task:
    """A task for a `TextModel` on batches of raw strings: tokenised in the input pipeline, `core` trains.

    `pad_to_multiple` pads each batch's token length up to a multiple (e.g. 16), so that XLA
    (`Trainer(jit_compile=True)`) compiles a handful of shapes instead of one per length.
    """
    preprocessor = model.preprocessor

    def prepare(x, *rest):
        features = preprocessor(x)
        if pad_to_multiple:
            length = tf.shape(features["token_ids"])[1]
            extra = (-length) % pad_to_multiple
            features = {key: tf.pad(value, [[0, 0], [0, extra]]) for key, value in features.items()}
        return (features, *rest)

    return Task(
        name=name,
        model=model.core,
        loss=loss,
        train=train,
        valid=valid,
        weight=weight,
        output=getattr(model, "target_output", None),
        metrics=metrics,
        prepare=prepare,
    )
