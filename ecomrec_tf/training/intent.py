"""Train and evaluate an intent model from JSONL/CSV files into a run folder."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import keras

from ecomrec_tf.data import DataError, read_intent_file, text_classification_dataset
from ecomrec_tf.data.pipeline import class_weights
from ecomrec_tf.data.readers import label_ids
from ecomrec_tf.defaults import INTENT
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.evaluation import plot_history
from ecomrec_tf.models import IntentModel, build_intent_model
from ecomrec_tf.preprocessing.text_preprocessor import fitting_sequence_length
from ecomrec_tf.training.fit import MODEL_FILE, fit, save_model, save_run_config
from ecomrec_tf.training.metrics import MacroF1
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.precision import precision_scope, to_float32
from ecomrec_tf.training.task import Task, compile_tasks, text_task
from ecomrec_tf.training.tensorboard import intent_report, log_hparams


def intent_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    """Accuracy and macro-F1: what every intent training path reports and early stopping watches."""
    return [keras.metrics.SparseCategoricalAccuracy("accuracy"), MacroF1(num_classes)]


def intent_task(
    model: IntentModel,
    train: tuple,
    valid: tuple | None,
    batch_size: int,
    seed: int = 0,
    sample_weights=None,
    weight: float = 1.0,
    pad_to_multiple: int | None = None,
) -> Task:
    """The intent head's task, which `train_intent` (`model.fit`), `tune_intent` and the `Trainer`
    (`training.run`) all train: cross-entropy on the probabilities, accuracy and macro-F1, batches of
    `(texts, label ids)` tokenised once and grouped by token length in the input pipeline, each replica
    reading its share of the global `batch_size`; validation in batches twice that size."""

    def train_data(context, texts=train[0], ids=train[1]):
        return text_classification_dataset(
            texts,
            ids,
            batch_size,
            shuffle=True,
            seed=seed,
            input_context=context,
            sample_weights=sample_weights,
            preprocessor=model.preprocessor,
        )

    def valid_data(context):
        return text_classification_dataset(
            *valid, batch_size * 2, input_context=context, preprocessor=model.preprocessor
        )

    return text_task(
        "intent",
        model,
        keras.losses.SparseCategoricalCrossentropy(),
        train=train_data,
        valid=valid_data if valid is not None else None,
        weight=weight,
        metrics=functools.partial(intent_metrics, len(model.labels)),
        pad_to_multiple=pad_to_multiple,
    )


def read_intent_splits(train_file: str | Path, valid_file: str | Path):
    """Reads labelled training and validation files: `(labels, (texts, ids), (texts, ids))`.

    Labels are the training file's, sorted; a validation label not among them is an error.
    """
    train_texts, train_labels = read_intent_file(train_file)
    valid_texts, valid_labels = read_intent_file(valid_file)
    labels = sorted(set(train_labels))
    if len(labels) < 2:
        raise DataError(f"{train_file}: needs at least two labels, found {labels}")
    train = (train_texts, label_ids(train_labels, labels, train_file))
    return labels, train, (valid_texts, label_ids(valid_labels, labels, valid_file))


def train_intent(
    train_file: str | Path,
    valid_file: str | Path,
    run_dir: str | Path,
    encoder: str = "minilm-l6",
    epochs: int = INTENT["epochs"],
    batch_size: int = INTENT["batch_size"],
    learning_rate: float = INTENT["learning_rate"],
    sequence_length: int | None = None,
    seed: int = 0,
    patience: int | None = INTENT["patience"],
    train_top_layers: int | None = None,
    lora_rank: int | None = None,
    layer_decay: float = 1.0,
    class_weight: str | None = INTENT["class_weight"],
    precision: str = "auto",
    verbose: int | str = "auto",
) -> tuple[IntentModel, dict]:
    """Fine-tunes an intent model and saves it as `run_dir/model.keras`.

    `sequence_length` None fits it to the training texts (`fitting_sequence_length`: their 95th
    percentile of token lengths, at most 512; printed). Training stops when validation macro-F1
    has not risen for `patience` epochs and keeps the best epoch's weights (None: every epoch,
    the last kept). `class_weight="balanced"` weighs every class the same in the loss, for skewed
    labels. Accuracy and macro-F1 are logged every epoch. `precision` `auto` trains in bfloat16 where
    the hardware computes it fast (`training.precision`); the saved model is float32 either way.

    Also writes `run_dir/config.json` (these arguments), TensorBoard logs (`train/`, `validation/`),
    `history.json` and `curves.png`; TensorBoard also gets the HParams, PR curves per intent, sample
    predictions and the intent-vector projector on the validation set. Rerunning the same command
    after a crash resumes from the last finished epoch.

    Returns:
        `(model, history)`.
    """
    config = save_run_config(run_dir, locals())
    run_dir = Path(run_dir)

    labels, (train_texts, train_ids), (valid_texts, valid_ids) = read_intent_splits(train_file, valid_file)

    with precision_scope(precision) as policy:
        config = save_run_config(run_dir, {**config, "policy": policy})
        keras.utils.set_random_seed(seed)
        encoder_ = load_encoder(encoder)
        if sequence_length is None:
            limit = min(512, encoder_.backbone.max_sequence_length)
            sequence_length, cut = fitting_sequence_length(encoder_.tokenizer, train_texts, limit=limit)
            print(f"sequence length {sequence_length} (95th percentile of training token lengths, at most "
                  f"{limit}): {cut:.1%} of training texts are cut")  # fmt: skip
            config = save_run_config(run_dir, {**config, "sequence_length": sequence_length})
        weights = None
        if class_weight == "balanced":
            weights = class_weights(train_ids, len(labels))
        elif class_weight is not None:
            raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}")
        model = build_intent_model(
            encoder_,
            labels,
            sequence_length=sequence_length,
            train_top_layers=train_top_layers,
            lora_rank=lora_rank,
        )
        task = intent_task(
            model,
            (train_texts, train_ids),
            (valid_texts, valid_ids),
            batch_size,
            seed,
            sample_weights=weights,
        )
        train, valid = task.dataset("train"), task.dataset("valid")
        steps_per_epoch = int(train.cardinality())
        compile_tasks(
            task,
            make_optimizer(
                learning_rate,
                total_steps=steps_per_epoch * epochs,
                layer_decay=layer_decay,
                num_layers=encoder_.backbone.num_layers,
            ),
        )
        start = time.perf_counter()
        history = fit(
            task.model, train, valid, epochs=epochs, run_dir=run_dir, patience=patience,
            monitor="val_macro_f1", verbose=verbose,
        )  # fmt: skip
    to_float32(model)  # saved, reported and exported in float32 whatever it trained in
    seconds = time.perf_counter() - start
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    history["examples_per_second"] = [len(train_texts) * len(history["loss"]) / seconds]
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_history(
        {k: v for k, v in history.items() if k != "examples_per_second" and "learning_rate" not in k},
        run_dir / "curves.png",
    )
    log_hparams(run_dir, config)
    intent_report(run_dir, model, valid_texts, valid_ids, step=len(history["loss"]))
    save_model(model, run_dir / MODEL_FILE)
    return model, history
