"""Hyper-parameter search for the intent model with KerasTuner."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner

from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training.intent import intent_task, read_intent_splits
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import compile_tasks


class IntentHyperModel(keras_tuner.HyperModel):
    """Searches learning rate, batch size, head dropout and how many encoder layers train."""

    def __init__(
        self, encoder: str, labels: list[str], train, valid, epochs: int, sequence_length: int, seed: int
    ):
        super().__init__(name="intent")
        self.encoder, self.labels = encoder, labels
        self.train, self.valid = train, valid
        self.epochs, self.sequence_length, self.seed = epochs, sequence_length, seed

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        encoder = load_encoder(self.encoder)
        layers = encoder.backbone.num_layers
        top = hp.Int("train_top_layers", 0, layers)
        batch_size = hp.Choice("batch_size", [16, 32, 64])
        model = build_intent_model(
            encoder,
            self.labels,
            sequence_length=self.sequence_length,
            dropout=hp.Choice("dropout", [0.0, 0.1, 0.2]),
            train_top_layers=None if top == layers else top,
        )
        self.task = intent_task(model, self.train, self.valid, batch_size, self.seed)
        steps = int(self.task.dataset("train").cardinality()) * self.epochs
        learning_rate = hp.Float("learning_rate", 1e-5, 1e-3, sampling="log")
        return compile_tasks(self.task, make_optimizer(learning_rate, total_steps=steps))

    def fit(self, hp, model, *args, **kwargs):  # `model` is the task's, built just before
        train, valid = self.task.dataset("train"), self.task.dataset("valid")
        return model.fit(train, validation_data=valid, epochs=self.epochs, **kwargs)


def tune_intent(
    train_file: str | Path,
    valid_file: str | Path,
    out_dir: str | Path,
    encoder: str = "minilm-l6",
    max_trials: int = 8,
    epochs: int = 2,
    sequence_length: int = 64,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Random search over the intent model's hyper-parameters, judged by validation accuracy.

    Trials, their TensorBoard logs (with the HParams dashboard) and `best.json` go to `out_dir`;
    rerunning with the same `out_dir` continues the search.

    Returns:
        `{"hyperparameters": {...}, "val_accuracy": float}` of the best trial.
    """
    out_dir = Path(out_dir)
    labels, train, valid = read_intent_splits(train_file, valid_file)
    hypermodel = IntentHyperModel(encoder, labels, train, valid, epochs, sequence_length, seed)
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=max_trials,
        seed=seed,
        directory=str(out_dir),
        project_name="intent",
        overwrite=False,
    )
    tuner.search(callbacks=[keras.callbacks.TensorBoard(str(out_dir / "tensorboard"))], verbose=verbose)
    best = tuner.oracle.get_best_trials(1)[0]
    result = {"hyperparameters": best.hyperparameters.values, "val_accuracy": float(best.score)}
    (out_dir / "best.json").write_text(json.dumps(result, indent=2))
    return result
