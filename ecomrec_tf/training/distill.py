"""Distillation: a small student encoder trained on a large teacher's soft targets, for a model to serve
where the teacher is too slow or too big."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import keras
import keras_hub
import numpy as np
from keras import ops

from ecomrec_tf.data.pipeline import class_weights
from ecomrec_tf.data.readers import read_dialogues
from ecomrec_tf.defaults import INTENT, REPLY
from ecomrec_tf.evaluation import plot_history
from ecomrec_tf.evaluation.reply import RetrievalSet
from ecomrec_tf.models import IntentModel, ReplyModel, training_view
from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.training.fit import MODEL_FILE, fit, save_model, save_run_config
from ecomrec_tf.training.intent import intent_metrics, intent_task, read_intent_splits
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.reply import RetrievalValidation, reply_tasks
from ecomrec_tf.training.task import compile_tasks
from ecomrec_tf.training.tensorboard import log_hparams

EPSILON = 1e-7


def student_backbone(teacher: keras_hub.models.BertBackbone, layers: int) -> keras_hub.models.BertBackbone:
    """A `layers`-deep copy of a BERT backbone: its embeddings and `layers` of its transformer layers,
    evenly spaced from the first to the last (2 of 6: layers 0 and 5), as DistilBERT starts from its
    teacher's layers; the width stays the teacher's, so every weight is copied, none is random."""
    if not 1 <= layers <= teacher.num_layers:
        raise ValueError(f"a student has 1 to {teacher.num_layers} layers (the teacher's), got {layers}")
    student = keras_hub.models.BertBackbone.from_config({**teacher.get_config(), "num_layers": layers})
    chosen = np.linspace(0, teacher.num_layers - 1, layers).round().astype(int)
    for layer in student.layers:
        if layer.weights and not layer.name.startswith("transformer_layer_"):
            layer.set_weights(teacher.get_layer(layer.name).get_weights())
    for i, source in enumerate(chosen):
        student.get_layer(f"transformer_layer_{i}").set_weights(
            teacher.get_layer(f"transformer_layer_{source}").get_weights()
        )
    return student


def intent_student(teacher: IntentModel, layers: int = 2) -> IntentModel:
    """An `IntentModel` like the teacher (labels, tokenizer, sequence length, head weights) on
    `student_backbone(teacher.backbone, layers)`, every encoder layer trainable."""
    backbone = student_backbone(teacher.backbone, layers)
    preprocessor = TextPreprocessor(teacher.preprocessor.tokenizer, teacher.preprocessor.sequence_length)
    student = IntentModel(backbone, preprocessor, teacher.labels, vector_dim=teacher.vector_dim,
                          dropout=teacher.dropout)  # fmt: skip
    student.head.set_weights(teacher.head.get_weights())
    return student


def reply_student(teacher: ReplyModel, layers: int = 2) -> ReplyModel:
    """A retrieval `ReplyModel` like the teacher (reply bank, slots, threshold, intent model,
    projections and temperature) on `student_backbone(teacher.backbone, layers)`; no decoder."""
    backbone = student_backbone(teacher.backbone, layers)
    preprocessor = TextPreprocessor(teacher.preprocessor.tokenizer, teacher.preprocessor.sequence_length)
    student = ReplyModel(
        backbone, preprocessor, teacher.reply_bank, teacher.slot_extractor, vector_dim=teacher.vector_dim,
        threshold=teacher.threshold, fallback=teacher.fallback, intent_model=teacher.intent_model,
        intent_weight=teacher.intent_weight, intent_filter=teacher.intent_filter,
    )  # fmt: skip
    for name in ("context_projection", "reply_projection", "similarity"):
        getattr(student, name).set_weights(getattr(teacher, name).get_weights())
    return student


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class DistillationLoss(keras.losses.Loss):
    """`alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(y_true, student)`
    (Hinton et al., 2015) on scores (logits, or log-probabilities): `_T` are both models'
    distributions softened by temperature `T`; the `T^2` keeps the soft part's gradients on the
    scale of the hard part's. `symmetric` (in-batch retrieval, `(batch, batch)` scores) adds the same
    over the columns, each reply against the batch's contexts, as the reply model trains.

    `y_true`: class ids `(batch,)` (retrieval: each row's own index); `y_pred`: `(batch, 2, classes)`,
    the student's scores, then the teacher's (`distillation_view`).
    """

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5, symmetric: bool = False, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"temperature must be > 0 and alpha in [0, 1], got {temperature}, {alpha}")
        self.temperature, self.alpha, self.symmetric = float(temperature), float(alpha), bool(symmetric)

    def call(self, y_true, y_pred):
        student, teacher = y_pred[:, 0], y_pred[:, 1]
        loss = self._one_way(y_true, student, teacher)
        if self.symmetric:
            loss = (loss + self._one_way(y_true, ops.transpose(student), ops.transpose(teacher))) / 2
        return loss

    def _one_way(self, y_true, student, teacher):
        t = self.temperature
        soft_teacher = ops.softmax(teacher / t, axis=-1)
        kl = ops.sum(
            soft_teacher * (ops.log_softmax(teacher / t, axis=-1) - ops.log_softmax(student / t, axis=-1)), -1
        )
        hard = keras.losses.sparse_categorical_crossentropy(y_true, student, from_logits=True)
        return self.alpha * t * t * kl + (1.0 - self.alpha) * hard

    def get_config(self):
        return super().get_config() | {
            "temperature": self.temperature, "alpha": self.alpha, "symmetric": self.symmetric
        }  # fmt: skip


class StudentMetric(keras.metrics.Metric):
    """A metric of the student's scores, `y_pred[:, 0]` of a distillation batch."""

    def __init__(self, metric: keras.metrics.Metric):
        super().__init__(name=metric.name)
        self.metric = metric

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.metric.update_state(y_true, y_pred[:, 0], sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()


def distillation_view(student_view: keras.Model, teacher_view: keras.Model) -> keras.Model:
    """The inputs of `student_view` -> `(batch, 2, classes)`: its scores and the frozen teacher's on the
    same inputs (`*_view`: the models' `training_view`s, or intent cores with log-probabilities)."""
    teacher_view.trainable = False
    student_view.name, teacher_view.name = "student", "teacher"  # one graph: distinct names
    first = student_view.input
    inputs = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in first.items()}
    both = ops.stack([student_view(inputs), teacher_view(inputs, training=False)], axis=1)
    return keras.Model(inputs, both, name="distillation")


def _log_probabilities(model: IntentModel) -> keras.Model:
    features = {
        name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in model.core.input.items()
    }
    return keras.Model(features, ops.log(model.core(features)["probabilities"] + EPSILON))


def _distill(task, run_dir: Path, config: dict, learning_rate: float, epochs: int, monitor: str, patience,
             verbose, callbacks=()) -> dict:  # fmt: skip
    """Trains a distillation `task` with `fit`; writes history.json, curves.png and the HParams."""
    train_data, valid_data = task.dataset("train"), task.dataset("valid")
    compile_tasks(task, make_optimizer(learning_rate, total_steps=int(train_data.cardinality()) * epochs))
    start = time.perf_counter()
    history = fit(task.model, train_data, valid_data, epochs=epochs, run_dir=run_dir, patience=patience,
                  monitor=monitor, verbose=verbose, callbacks=list(callbacks))  # fmt: skip
    seconds = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    history["seconds_per_epoch"] = [seconds / len(history["loss"])]
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_history({k: v for k, v in history.items() if k != "seconds_per_epoch" and "learning_rate" not in k},
                 run_dir / "curves.png")  # fmt: skip
    log_hparams(run_dir, config)
    return history


def distill_intent(
    teacher: IntentModel,
    train_file: str | Path,
    valid_file: str | Path,
    run_dir: str | Path,
    layers: int = 2,
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int = INTENT["epochs"],
    batch_size: int = INTENT["batch_size"],
    learning_rate: float = 1e-4,
    seed: int = 0,
    patience: int | None = INTENT["patience"],
    class_weight: str | None = INTENT["class_weight"],
    verbose: int | str = "auto",
) -> tuple[IntentModel, dict]:
    """Trains an `intent_student` of `teacher` on the training texts with `DistillationLoss`, the
    teacher's probabilities computed in the same step, stopping early on the student's validation
    macro-F1 (keeping the best epoch), and saves it as `run_dir/model.keras`: an ordinary
    `IntentModel`, which evaluates, exports and serves like any other.

    Also writes `config.json`, `history.json`, `curves.png` and TensorBoard logs (scalars, HParams);
    rerunning after a crash resumes from the last finished epoch.

    Returns:
        `(student, history)`.
    """
    config = save_run_config(run_dir, {k: v for k, v in locals().items() if k != "teacher"})
    run_dir = Path(run_dir)
    labels, train, valid = read_intent_splits(train_file, valid_file)
    if labels != teacher.labels:
        raise ValueError(f"{train_file}: labels {labels} are not the teacher's {teacher.labels}")
    keras.utils.set_random_seed(seed)
    student = intent_student(teacher, layers)
    weights = class_weights(train[1], len(labels)) if class_weight == "balanced" else None
    task = intent_task(student, train, valid, batch_size, seed, sample_weights=weights)
    task.model = distillation_view(_log_probabilities(student), _log_probabilities(teacher))
    task.loss = DistillationLoss(temperature, alpha)
    task.metrics = functools.partial(lambda n: [StudentMetric(m) for m in intent_metrics(n)], len(labels))
    history = _distill(task, run_dir, config, learning_rate, epochs, "val_macro_f1", patience, verbose)
    save_model(student, run_dir / MODEL_FILE)
    return student, history


def distill_reply(
    teacher: ReplyModel,
    train_file: str | Path,
    valid_file: str | Path,
    run_dir: str | Path,
    layers: int = 2,
    temperature: float = 2.0,
    alpha: float = 0.5,
    epochs: int = REPLY["epochs"],
    batch_size: int = REPLY["batch_size"],
    learning_rate: float = REPLY["learning_rate"],
    max_turns: int = 3,
    seed: int = 0,
    patience: int | None = REPLY["patience"],
    verbose: int | str = "auto",
) -> tuple[ReplyModel, dict]:
    """Trains a `reply_student` of `teacher` on the training dialogues: each batch's context-reply
    scores matched to the teacher's in-batch distribution, both ways (`DistillationLoss(symmetric=
    True)`), plus the in-batch loss on the true replies; early stopping on the student's validation MRR
    (`training.reply.RetrievalValidation`). Saves the student (retrieval only) as `run_dir/model.keras`.

    Returns:
        `(student, history)`.
    """
    config = save_run_config(run_dir, {k: v for k, v in locals().items() if k != "teacher"})
    run_dir = Path(run_dir)
    train_dialogues, valid_dialogues = read_dialogues(train_file), read_dialogues(valid_file)
    keras.utils.set_random_seed(seed)
    student = reply_student(teacher, layers)
    task = reply_tasks(student, train_dialogues, valid_dialogues, batch_size, max_turns, seed=seed)[0]
    task.model = distillation_view(training_view(student, "logits"), training_view(teacher, "logits"))
    task.loss = DistillationLoss(temperature, alpha, symmetric=True)
    task.metrics = lambda: [StudentMetric(keras.metrics.SparseCategoricalAccuracy("in_batch_accuracy"))]
    validation = RetrievalValidation(student, RetrievalSet(valid_dialogues, train_dialogues, max_turns))
    history = _distill(
        task, run_dir, config, learning_rate, epochs, "val_mrr", patience, verbose, [validation]
    )
    save_model(student, run_dir / MODEL_FILE)
    return student, history
