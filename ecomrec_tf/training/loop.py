"""One `tf.function` training loop under any `tf.distribute.Strategy`, for every model and task mix.

`model.fit` and this loop train the same models: the loop is for scripts that run under
`MirroredStrategy` (several GPUs), `MultiWorkerMirroredStrategy` (several machines, via `TF_CONFIG`) or
`TPUStrategy`, for multi-task runs, and for runs that must checkpoint every N steps. It computes the same
loss as `fit` (it matches `fit` step for step, see the tests).

Per step, for the tasks drawn (all of them with `mixing="sum"`, one by ratio or temperature otherwise):
    loss = sum_t weight_t * sum(loss_t * w_t) / sum_global(w_t)
so each task's loss is a mean over its global batch (all replicas), partial batches included. Gradients
are summed over replicas by the loop itself, then clipped by their global norm, then applied once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.compat import apply_gradients_as_given
from ecomrec_tf.training.fit import write_atomically
from ecomrec_tf.training.task import Task

SUM = tf.distribute.ReduceOp.SUM


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().jobs
    )


def task_probabilities(sizes: Sequence[float], temperature: float = 1.0) -> np.ndarray:
    """Task probabilities `p_t ~ size_t ** (1 / temperature)`: 1 keeps the ratios, large evens them."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scaled = np.asarray(sizes, dtype=np.float64) ** (1.0 / temperature)
    return scaled / scaled.sum()


def _slice(batch, start, stop):
    return tf.nest.map_structure(lambda t: t[start:stop], batch)


class Trainer:
    """Trains one or several tasks sharing an encoder; build models and optimizer in `strategy.scope()`.

    Args:
        tasks: a `Task` or a list of them (see `training.task.text_task`).
        optimizer: a Keras optimizer (see `make_optimizer`); a `LossScaleOptimizer` for float16.
        strategy: defaults to the current one.
        mixing: `"sum"` — every step takes one batch of every task and sums their weighted losses;
            `"sample"` — every step draws one task with probability `ratios` (default: each task's number
            of training batches) raised to `1 / temperature` and normalised.
        ratios, temperature: see `mixing`.
        accumulation_steps: split each replica's batch into this many micro-batches and sum their
            gradients before one update: the update of a batch that size, with the activation memory
            of one micro-batch.
        jit_compile: compile the forward and backward pass with XLA.
        seed: seeds task sampling.

    Example:
        >>> strategy = tf.distribute.MirroredStrategy()  # doctest: +SKIP
        >>> with strategy.scope():  # doctest: +SKIP
        ...     model = build_intent_model(load_encoder("tiny"), labels)
        ...     task = text_task("intent", model, keras.losses.SparseCategoricalCrossentropy(),
        ...         train=lambda ctx: text_classification_dataset(texts, ids, 32, input_context=ctx))
        ...     trainer = Trainer(task, make_optimizer(1e-4, total_steps=1000))
        >>> trainer.fit(epochs=3, run_dir="runs/intent")  # doctest: +SKIP
    """

    def __init__(
        self,
        tasks: Task | Sequence[Task],
        optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy | None = None,
        mixing: str = "sum",
        ratios: Sequence[float] | None = None,
        temperature: float = 1.0,
        accumulation_steps: int = 1,
        jit_compile: bool = False,
        seed: int = 0,
    ):
        self.tasks = [tasks] if isinstance(tasks, Task) else list(tasks)
        names = [task.name for task in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must differ, got {names}")
        if mixing not in ("sum", "sample"):
            raise ValueError(f"mixing must be 'sum' or 'sample', got {mixing!r}")
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be 1 or more, got {accumulation_steps}")
        self.strategy = strategy or tf.distribute.get_strategy()
        self.optimizer = optimizer
        self.mixing, self.ratios, self.temperature = mixing, ratios, temperature
        self.accumulation_steps = accumulation_steps
        inner = getattr(optimizer, "inner_optimizer", optimizer)  # under a LossScaleOptimizer
        if inner.clipnorm or inner.clipvalue:
            raise ValueError("the Trainer clips by global norm: create the optimizer with global_clipnorm")
        if inner.gradient_accumulation_steps:
            raise ValueError("pass accumulation_steps to the Trainer, not to the optimizer")
        # The loop sums gradients over replicas itself, then clips them by their global norm (the
        # optimizer would clip each replica's part, before the sum) and has the optimizer apply them
        # without summing them a second time.
        self.clipnorm, inner.global_clipnorm = inner.global_clipnorm, None
        apply_gradients_as_given(inner)
        self.jit_compile = jit_compile
        self.seed = seed
        with self.strategy.scope():
            self.variables = self._trainable_variables()
            # Built here, not lazily inside tf.function (which fails under a strategy).
            self.optimizer.build(self.variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.consumed = {t.name: tf.Variable(0, dtype=tf.int64, trainable=False) for t in self.tasks}
            self.best = tf.Variable(np.nan, dtype=tf.float64, trainable=False, name="best")
            self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")
        self._grads = tf.function(self._grads_and_losses, jit_compile=jit_compile, reduce_retracing=True)
        self._steps: dict[tuple[str, ...], Callable] = {}
        self._eval_steps: dict[str, tuple] = {}
        self._specs: dict[str, tf.TypeSpec] = {}  # element specs of the training data, per task
        self.is_chief = _is_chief(self.strategy)

    def _trainable_variables(self) -> list:
        seen, variables = set(), []
        for task in self.tasks:
            for variable in task.model.trainable_variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        return variables

    def _all_variables(self) -> list:
        return list({id(v): v for task in self.tasks for v in task.model.variables}.values())

    # --- one step ------------------------------------------------------------------------------
    def _grads_and_losses(self, batches: dict, denominators: dict):
        """Gradients of the weighted loss over `accumulation_steps` micro-batches, and each task's loss."""
        k = self.accumulation_steps
        grads = [None] * len(self.variables)  # None for variables these tasks do not use
        task_losses = {name: tf.constant(0.0) for name in batches}
        for i in range(k):
            with tf.GradientTape() as tape:
                total = tf.constant(0.0)
                for name, batch in batches.items():
                    task = self._task(name)
                    size = tf.shape(tf.nest.flatten(batch)[0])[0]
                    micro = (size + k - 1) // k
                    chunk = _slice(batch, i * micro, (i + 1) * micro) if k > 1 else batch
                    losses, weights, _, _ = task.per_example_loss(chunk, training=True)
                    loss = tf.reduce_sum(losses * weights) / denominators[name]
                    task_losses[name] += loss
                    total += task.weight * loss
                regularization = [loss for task in self._tasks(batches) for loss in task.model.losses]
                if regularization and i == 0:
                    total += tf.nn.scale_regularization_loss(tf.add_n(regularization))
                scaled = self.optimizer.scale_loss(total)
            step_grads = tape.gradient(scaled, self.variables)
            grads = [
                s if g is None else tf.convert_to_tensor(g) + tf.convert_to_tensor(s)
                for g, s in zip(grads, step_grads)
            ]
        return grads, task_losses

    def _task(self, name: str) -> Task:
        return next(task for task in self.tasks if task.name == name)

    def _tasks(self, batches: dict) -> list[Task]:
        return [self._task(name) for name in batches]

    def _replica_step(self, batches: dict):
        context = tf.distribute.get_replica_context()
        denominators = {}
        for name, batch in batches.items():
            weights = self._task(name).example_weights(batch)
            if weights is None:
                local = tf.cast(tf.shape(tf.nest.flatten(batch[1])[0])[0], tf.float32)
            else:
                local = tf.reduce_sum(weights)
            denominators[name] = tf.maximum(context.all_reduce(SUM, local), 1e-9)
        grads, task_losses = self._grads(batches, denominators)
        used = [(g, v) for g, v in zip(grads, self.variables) if g is not None]
        grads, variables = context.all_reduce(SUM, [g for g, _ in used]), [v for _, v in used]
        unit = tf.cast(self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)  # the loss scale, 1 without
        raw_norm = tf.linalg.global_norm([_rows_once(g) for g in grads])  # the norm of the update applied
        if self.clipnorm is not None:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm * unit, use_norm=raw_norm)
        self.optimizer.apply(grads, variables)
        return task_losses, raw_norm / unit

    def _distributed_step(self, batches: dict):
        task_losses, grad_norm = self.strategy.run(self._replica_step, args=(batches,))
        losses = {name: self.strategy.reduce(SUM, value, axis=None) for name, value in task_losses.items()}
        replicas = self.strategy.num_replicas_in_sync
        return losses, self.strategy.reduce(SUM, grad_norm, axis=None) / replicas

    def train_step(self, batches: dict) -> tuple[dict, tf.Tensor]:
        """One update from `{task name: distributed batch}`; returns each task's loss, the gradient norm."""
        key = tuple(sorted(batches))
        if key not in self._steps:
            if all(name in self._specs for name in key):
                # Traced once for every batch shape of these datasets (lengths and partial batches).
                signature = [{name: self._specs[name] for name in key}]
                self._steps[key] = tf.function(self._distributed_step, input_signature=signature)
            else:
                self._steps[key] = tf.function(self._distributed_step, reduce_retracing=True)
        return self._steps[key](batches)

    # --- data ----------------------------------------------------------------------------------
    def distribute(self, task: Task, split: str, skip: int = 0, repeat: bool = False):
        """`task`'s batches through `distribute_datasets_from_function`; skips `skip` batches (resume)."""

        def dataset_fn(input_context):
            dataset = task.dataset(split, input_context)
            if repeat:
                dataset = dataset.repeat()
            return dataset.skip(skip) if skip else dataset

        distributed = self.strategy.distribute_datasets_from_function(dataset_fn)
        if split == "train":
            self._specs[task.name] = distributed.element_spec
        return distributed

    def steps_per_epoch(self) -> int:
        """Batches in one pass over the first task's training data."""
        steps = int(self.tasks[0].dataset("train").cardinality())
        if steps < 0:
            raise ValueError(f"task {self.tasks[0].name!r}: unknown dataset length, pass steps_per_epoch")
        return steps

    def _draw(self, step: int) -> list[str]:
        if self.mixing == "sum" or len(self.tasks) == 1:
            return [task.name for task in self.tasks]
        if self.ratios is None:
            self.ratios = [max(int(t.dataset("train").cardinality()), 1) for t in self.tasks]
        rng = np.random.default_rng([self.seed, step])  # the same draw on every worker, and after a resume
        return [
            self.tasks[rng.choice(len(self.tasks), p=task_probabilities(self.ratios, self.temperature))].name
        ]

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate(self, task: Task) -> dict[str, float]:
        """Weighted mean loss and the task's metrics over its validation data, as `<task>_<metric>`."""
        if task.name not in self._eval_steps:
            with self.strategy.scope():
                metrics = task.metrics()

            def replica_fn(batch):
                losses, weights, y, y_pred = task.per_example_loss(batch, training=False)
                for metric in metrics:
                    metric.update_state(y, y_pred, sample_weight=weights)
                return tf.reduce_sum(losses * weights), tf.reduce_sum(weights)

            @tf.function(reduce_retracing=True)
            def step(batch):
                total, count = self.strategy.run(replica_fn, args=(batch,))
                return self.strategy.reduce(SUM, total, axis=None), self.strategy.reduce(
                    SUM, count, axis=None
                )

            self._eval_steps[task.name] = (metrics, step)
        metrics, step = self._eval_steps[task.name]
        for metric in metrics:
            metric.reset_state()
        total = count = 0.0
        for batch in self.distribute(task, "valid"):
            batch_total, batch_count = step(batch)
            total, count = total + float(batch_total), count + float(batch_count)
        results = {f"{task.name}_loss": total / max(count, 1e-9)}
        results.update({f"{task.name}_{metric.name}": float(metric.result()) for metric in metrics})
        return results

    # --- the run -------------------------------------------------------------------------------
    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            models=[task.model for task in self.tasks],
            # Dropout's random state, so a resumed run draws the masks the uninterrupted one would.
            random_states=[v for v in self._all_variables() if "seed_generator_state" in v.path],
            optimizer=self.optimizer,
            step=self.step,
            epoch=self.epoch,
            consumed=self.consumed,
            best=self.best,
            wait=self.wait,
        )

    def _write_dir(self, directory: Path) -> str:
        # Every worker saves (saving reads distributed variables), but only the chief's copy is kept.
        if self.is_chief:
            return str(directory)
        resolver = self.strategy.cluster_resolver
        return tempfile.mkdtemp(prefix=f"{directory.name}-{resolver.task_type}{resolver.task_id}-")

    def fit(
        self,
        epochs: int,
        run_dir: str | os.PathLike,
        steps_per_epoch: int | None = None,
        checkpoint_every: int | None = 100,
        monitor: str | None = None,
        mode: str = "min",
        patience: int | None = None,
        log_every: int = 10,
        on_step: Callable[[int, dict], None] | None = None,
        on_epoch_end: Sequence[Callable] = (),
        verbose: int = 1,
    ) -> dict[str, list[float]]:
        """Trains for `epochs`, resuming from `run_dir/checkpoints` if a previous run left one.

        Checkpoints (`tf.train.CheckpointManager`, last 3 kept) every `checkpoint_every` steps and at
        each epoch end hold the models, the optimizer, the step, epoch and data position, so a run
        killed at any point resumes where its last checkpoint was and sees the same batches. With
        `monitor` (e.g. `"val_intent_accuracy"`, `mode="max"`) the best epoch's weights are kept in
        `run_dir/best` and restored at the end; `patience` stops after that many epochs without
        improvement. TensorBoard logs go to `run_dir/train` and `run_dir/validation`.

        Args:
            on_step: called as `on_step(step, logs)` after each step.
            on_epoch_end: functions called as `f(trainer, epoch, logs)` after each epoch's validation.

        Returns:
            History: lists of each epoch's `<task>_loss`, `val_<task>_<metric>` and throughput.
        """
        run_dir = Path(run_dir)
        steps_per_epoch = steps_per_epoch or self.steps_per_epoch()
        checkpoint = self._checkpoint()
        manager = tf.train.CheckpointManager(
            checkpoint,
            self._write_dir(run_dir / "checkpoints"),
            max_to_keep=3,
            step_counter=self.step,
            checkpoint_interval=checkpoint_every,
        )
        latest = tf.train.latest_checkpoint(run_dir / "checkpoints")
        if latest:
            checkpoint.restore(latest)
            if verbose:
                print(
                    f"resuming from {latest} "
                    f"(epoch {int(self.epoch.numpy()) + 1}, step {int(self.step.numpy())})"
                )
        best = tf.train.Checkpoint(models=[task.model for task in self.tasks])
        best_manager = tf.train.CheckpointManager(best, self._write_dir(run_dir / "best"), max_to_keep=1)
        history = _history_at(run_dir / "checkpoints", int(self.step.numpy())) if latest else {}
        writers = {
            split: tf.summary.create_file_writer(str(run_dir / split))
            if self.is_chief
            else tf.summary.create_noop_writer()
            for split in ("train", "validation")
        }
        iterators = {
            task.name: iter(
                self.distribute(task, "train", skip=int(self.consumed[task.name].numpy()), repeat=True)
            )
            for task in self.tasks
        }
        while int(self.epoch.numpy()) < epochs:
            epoch = int(self.epoch.numpy())
            done_in_epoch = int(self.step.numpy()) - epoch * steps_per_epoch
            progress = keras.utils.Progbar(steps_per_epoch, verbose=verbose if self.is_chief else 0)
            if done_in_epoch:
                progress.update(done_in_epoch)
            start, examples, tokens, sums = time.perf_counter(), 0, 0, {}
            for _ in range(done_in_epoch, steps_per_epoch):
                names = self._draw(int(self.step.numpy()))
                batches = {name: next(iterators[name]) for name in names}
                losses, grad_norm = self.train_step(batches)
                for name in names:
                    self.consumed[name].assign_add(1)
                self.step.assign_add(1)
                examples += sum(self._count(batch, "examples") for batch in batches.values())
                tokens += sum(self._count(batch, "tokens") for batch in batches.values())
                logs = {f"{name}_loss": float(value) for name, value in losses.items()}
                for key, value in logs.items():
                    sums.setdefault(key, []).append(value)
                step = int(self.step.numpy())
                if step % log_every == 0:
                    seconds = time.perf_counter() - start
                    with writers["train"].as_default(step=step):
                        for key, value in logs.items():
                            tf.summary.scalar(f"loss/{key}", value)
                        tf.summary.scalar("gradient_norm", float(grad_norm))
                        tf.summary.scalar("learning_rate", float(np.asarray(self.optimizer.learning_rate)))
                        tf.summary.scalar("examples_per_second", examples / seconds)
                        tf.summary.scalar("tokens_per_second", tokens / seconds)
                if checkpoint_every:
                    manager.save(checkpoint_number=step)  # saves once `checkpoint_every` steps have passed
                progress.update(step - epoch * steps_per_epoch, [(k, v) for k, v in logs.items()])
                if on_step is not None:
                    on_step(step, logs)
            seconds = time.perf_counter() - start
            epoch_logs = {key: float(np.mean(values)) for key, values in sums.items()}
            epoch_logs["examples_per_second"] = examples / max(seconds, 1e-9)
            epoch_logs["tokens_per_second"] = tokens / max(seconds, 1e-9)
            for task in self.tasks:
                if task.valid is not None:
                    epoch_logs.update({f"val_{k}": v for k, v in self.evaluate(task).items()})
            with writers["validation"].as_default(step=int(self.step.numpy())):
                for key, value in epoch_logs.items():
                    if key.startswith("val_"):
                        tf.summary.scalar(f"epoch/{key[4:]}", value)
            for callback in on_epoch_end:
                callback(self, epoch, epoch_logs)
            for key, value in epoch_logs.items():
                history.setdefault(key, []).append(value)
            if verbose and self.is_chief:
                print(
                    f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in epoch_logs.items())
                )
            stop = False
            if monitor is not None:
                if monitor not in epoch_logs:
                    raise KeyError(f"monitor {monitor!r} is not among the epoch logs {sorted(epoch_logs)}")
                value = epoch_logs[monitor]
                better = np.isnan(float(self.best.numpy())) or (
                    value < float(self.best.numpy()) if mode == "min" else value > float(self.best.numpy())
                )
                if better:
                    self.best.assign(value)
                    self.wait.assign(0)
                    best_manager.save(checkpoint_number=int(self.step.numpy()))
                else:
                    self.wait.assign_add(1)
                    stop = patience is not None and int(self.wait.numpy()) >= patience
            self.epoch.assign_add(1)
            if self.is_chief:  # the history as of this checkpoint, for a resumed run to continue
                text = json.dumps(history, indent=2)
                write_atomically(Path(manager.directory) / f"history-{int(self.step.numpy())}.json", text)
                write_atomically(run_dir / "history.json", text)
            manager.save(checkpoint_number=int(self.step.numpy()), check_interval=False)
            if stop:
                if verbose:
                    print(f"early stopping: {monitor} did not improve for {patience} epochs")
                break
        if monitor is not None and tf.train.latest_checkpoint(run_dir / "best"):
            best.restore(tf.train.latest_checkpoint(run_dir / "best")).expect_partial()
            if verbose and self.is_chief:
                print(f"restored the best weights ({monitor} {float(self.best.numpy()):.4g})")
        for writer in writers.values():
            writer.flush()
        if not self.is_chief:
            for directory in (manager.directory, best_manager.directory):
                shutil.rmtree(directory, ignore_errors=True)
        return history

    def _count(self, batch, what: str) -> int:
        """Examples or real (non-padding) tokens in a distributed batch, over all replicas."""
        x = batch[0]
        local = self.strategy.experimental_local_results(
            x["padding_mask"] if isinstance(x, dict) and "padding_mask" in x else tf.nest.flatten(x)[0]
        )
        if what == "tokens":
            if not (isinstance(x, dict) and "padding_mask" in x):
                return 0
            return int(sum(tf.reduce_sum(tf.cast(t, tf.int64)) for t in local))
        return int(sum(tf.shape(t)[0] for t in local))


def _rows_once(grad):
    """An `IndexedSlices` gradient (an embedding's) with each row once, its repeats summed: a token
    that appears several times in a batch has several slices, and the norm of the slices is not the
    norm of the gradient the optimizer applies; a dense gradient as it is."""
    if not isinstance(grad, tf.IndexedSlices):
        return grad
    rows, position = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, grad.dense_shape)


def _history_at(directory: Path, step: int) -> dict[str, list[float]]:
    """The history written at the last epoch end at or before checkpoint `step`: the epochs a
    resumed run has already finished (a later one belongs to an epoch it runs again)."""
    saved = {int(path.stem.split("-")[1]): path for path in directory.glob("history-*.json")}
    earlier = [at for at in saved if at <= step]
    return json.loads(saved[max(earlier)].read_text()) if earlier else {}
