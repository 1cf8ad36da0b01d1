"""A training task: the model a loss trains, the batches it reads, and its weight in a multi-task loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from ecomrec_tf.models.text_model import training_view

DatasetFn = Callable[[tf.distribute.InputContext | None], tf.data.Dataset]


@dataclass
class Task:
    """One loss over one stream of batches; several tasks sharing an encoder make a multi-task run.

    Args:
        name: names the task in logs, metrics (`val_<name>_<metric>`) and task ratios.
        model: the Keras model `fit` and the `Trainer` train, called on `x` of each batch: for the
            heads, `models.training_view` of the head (its `core` for text models) with the outputs
            their losses read.
        loss: a Keras loss; the loop reads its unreduced values (`loss.call`).
        train: `input_context -> tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)` batches,
            each replica's share of the global batch (see `tf.distribute.InputContext`), or a dataset.
        valid: the same for validation, or None.
        weight: this task's weight in the summed loss.
        output: the model output (and the key of `y`, if a dict) the loss reads, for models with
            several; tasks sharing a model and its batches (a reply model's retrieval and generation)
            each read their own.
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
        # No autotuning thread: at each epoch's end, deleting the iterator waits for that thread's
        # current optimisation period, which grows to ~5 s (measured: 1 epoch in 4 took 5 s longer;
        # none of 9 without it, at the same step rate). AUTOTUNE then means one call per core.
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)

    def example_weights(self, batch) -> tf.Tensor | None:
        """What each element of the loss weighs: the batch's sample weights; for a loss with
        `ignore_class` (per-token cross-entropy), 1 for every target that is not that class; None
        (every example weighs one) otherwise."""
        _, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        if sample_weight is not None:
            return tf.cast(self._select(sample_weight), tf.float32)
        ignored = self.loss.get_config().get("ignore_class")
        if ignored is not None:
            return tf.cast(tf.not_equal(self._select(y), ignored), tf.float32)
        return None

    def _select(self, values):
        return values[self.output] if self.output and isinstance(values, dict) else values

    def per_example_loss(self, batch, training: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(losses, weights, y, y_pred)` for a batch: unreduced float32 losses, their weights
        (`example_weights`, ones if none), the targets and the output the loss read (float32)."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        y, y_pred = self._select(y), self._select(self.model(x, training=training))
        y_pred = tf.cast(y_pred, tf.float32)  # losses in float32 under mixed precision
        losses = tf.cast(self.loss.call(y, y_pred), tf.float32)
        weights = self.example_weights(batch)
        return losses, tf.ones_like(losses) if weights is None else weights, y, y_pred


def compile_tasks(tasks: Task | list[Task], optimizer: keras.optimizers.Optimizer, **kwargs) -> keras.Model:
    """Compiles the model the tasks share for `model.fit`, with each task's loss, weight and metrics on
    its output: `fit(model, tasks[0].dataset("train"), ...)` then trains what the `Trainer` trains on
    the same batches. Returns the model."""
    tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
    model = tasks[0].model
    if any(task.model is not model for task in tasks):
        raise ValueError("model.fit trains one model: these tasks train several (use the Trainer)")
    if len(tasks) == 1 and not tasks[0].output:
        model.compile(optimizer=optimizer, loss=tasks[0].loss, metrics=tasks[0].metrics(), **kwargs)
    else:
        model.compile(
            optimizer=optimizer,
            loss={task.output: task.loss for task in tasks},
            loss_weights={task.output: task.weight for task in tasks},
            metrics={task.output: task.metrics() for task in tasks},
            **kwargs,
        )
    return model


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
    """A task for a `TextModel` on batches of raw strings, tokenised in the input pipeline (or of the
    model preprocessor's features), and `training_view(model.core, model.target_output)` trains.

    `pad_to_multiple` pads each batch's token length up to a multiple (e.g. 16), so that XLA
    (`Trainer(jit_compile=True)`) compiles a handful of shapes instead of one per length.
    """
    preprocessor = model.preprocessor

    def prepare(x, *rest):  # raw strings, or features already (`text_classification_dataset(preprocessor=)`)
        features = x if isinstance(x, dict) else preprocessor(x)
        if pad_to_multiple:
            length = tf.shape(features["token_ids"])[1]
            extra = (-length) % pad_to_multiple
            features = {key: tf.pad(value, [[0, 0], [0, extra]]) for key, value in features.items()}
        return (features, *rest)

    return Task(
        name=name,
        model=training_view(model.core, getattr(model, "target_output", None)),
        loss=loss,
        train=train,
        valid=valid,
        weight=weight,
        metrics=metrics,
        prepare=prepare,
    )
