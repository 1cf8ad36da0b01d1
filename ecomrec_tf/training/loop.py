"""A `tf.function` training loop under any `tf.distribute.Strategy`, for every ecomrec_tf model.

`model.fit` and this loop train the same models on the same datasets: the loop is for scripts that
run under `MirroredStrategy` (several GPUs) or `MultiWorkerMirroredStrategy` (several machines), and
computes the same loss as `fit` (it matches `fit` step for step, see the tests).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from ecomrec_tf.models.text_model import training_output


class Trainer:
    """Trains `model` with `strategy.run` steps; build the model and optimizer inside `strategy.scope()`.

    Args:
        model: a Keras model; for models with several outputs, `model.target_output` names the one
            the loss reads (as in `TextModel`).
        optimizer: a Keras optimizer, created in `strategy.scope()`.
        loss: a Keras loss; each replica's per-example losses are divided by the number of examples
            in this step over all replicas (`tf.nn.compute_average_loss`), so the summed gradients
            are those of the mean loss over the global batch, partial last batches included.
        strategy: defaults to the current one.

    Example:
        >>> strategy = tf.distribute.MirroredStrategy()  # doctest: +SKIP
        >>> with strategy.scope():  # doctest: +SKIP
        ...     model = build_intent_model(load_encoder("tiny"), labels)
        ...     loss = keras.losses.SparseCategoricalCrossentropy()
        ...     trainer = Trainer(model, keras.optimizers.AdamW(1e-4), loss)
        >>> dataset = strategy.distribute_datasets_from_function(  # doctest: +SKIP
        ...     lambda ctx: text_classification_dataset(texts, ids, 32, input_context=ctx))
        >>> trainer.train_epoch(dataset)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        loss: keras.losses.Loss,
        strategy: tf.distribute.Strategy | None = None,
    ):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        with self.strategy.scope():
            # Built here, not lazily inside tf.function (which fails under a strategy).
            self.optimizer.build(model.trainable_variables)
        self._step = tf.function(self._distributed_step, reduce_retracing=True)

    def _per_example_loss(self, y, y_pred) -> tf.Tensor:
        return self.loss.call(y, training_output(self.model, y_pred))  # unreduced, one value per example

    def _replica_step(self, x, y):
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            per_example = self._per_example_loss(y, y_pred)
            replica = tf.distribute.get_replica_context()
            examples = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.shape(per_example)[0])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=examples)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _distributed_step(self, x, y):
        losses = self.strategy.run(self._replica_step, args=(x, y))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def train_epoch(self, dataset, on_step: Callable[[int, float], None] | None = None) -> float:
        """One pass over `dataset` (a distributed dataset, or a plain one); returns the mean step loss."""
        total, steps = 0.0, 0
        for x, y in dataset:
            loss = float(self._step(x, y))
            total, steps = total + loss, steps + 1
            if on_step is not None:
                on_step(steps, loss)
        return total / max(steps, 1)
