"""Train and update a purchase model from users' item and event files, into a run folder.

The encoder is frozen in the purchase model, so every item text and query is encoded once
(`data.purchase_data.VectorCache`) and training runs on the vectors: the same `PurchaseModel.core`
the full model uses, so the saved model scores raw strings with exactly the trained weights.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.linear_model import LogisticRegression

from ecomrec_tf.data.event_state import FEATURES
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.data.pipeline import shard_for
from ecomrec_tf.data.purchase_data import PurchaseData, VectorCache, column_chunks, read_purchase_data
from ecomrec_tf.data.readers import DataError
from ecomrec_tf.defaults import PURCHASE
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.evaluation.classification import plot_history
from ecomrec_tf.evaluation.purchase import (
    evaluate_purchase,
)
from ecomrec_tf.models.purchase_model import PARTS, PurchaseModel, build_purchase_model
from ecomrec_tf.models.text_model import training_view
from ecomrec_tf.training.fit import MODEL_FILE, fit, save_model, save_run_config
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import DatasetFn, Task, compile_tasks
from ecomrec_tf.training.tensorboard import log_hparams


def purchase_task(
    model: PurchaseModel,
    train: DatasetFn | tf.data.Dataset,
    valid: DatasetFn | tf.data.Dataset | None = None,
    weight: float = 1.0,
    name: str = "purchase",
) -> Task:
    """The purchase head's task, which `train_purchase`, `update_purchase` (`model.fit`) and the
    `Trainer` all train: binary cross-entropy on `core`'s logit (`training_view`) over batches of
    vectors (`VectorCache.dataset`, or `purchase_datasets` for the Trainer), AUC as its metric."""
    return Task(
        name=name,
        model=training_view(model.core, "logit"),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        train=train,
        valid=valid,
        weight=weight,
        metrics=lambda: [keras.metrics.AUC(from_logits=True, name="auc")],
    )


def compile_purchase(task: Task, learning_rate: float, total_steps: int) -> keras.Model:
    """Compiles the task's model for `model.fit` on the purchase schedule (5% warm-up)."""
    return compile_tasks(task, make_optimizer(learning_rate, total_steps=total_steps, warmup_fraction=0.05))


def calibrate(model: PurchaseModel, logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Fits Platt scaling on held-out logits (the model's current ones) and folds it into the model."""
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(logits, float)[:, None], labels)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    scale, bias = float(model.calibration.scale.numpy()), float(model.calibration.bias.numpy())
    model.set_calibration(a * scale, a * bias + b)  # new logit = a * (scale * raw + bias) + b
    return a, b


def fit_statistics(
    model: PurchaseModel, data: PurchaseData, history_size: int = 10, vocabularies: dict | None = None
) -> None:
    """Sets what the model learns from the data before gradient steps: the id embeddings'
    vocabularies (`data.vocabularies()` unless given), the count features' standardisation (from the
    training split) and the numeric item attributes' (from the catalog)."""
    model.set_vocabularies(vocabularies or data.vocabularies())
    if model.fusion is not None and model.item_features.numeric:  # the catalog's, not just train's items
        model.fusion.adapt(model.item_features.matrices(sorted(data.items), data.items)["numeric_attributes"])
    if model.counts is not None:
        model.counts.adapt(
            {name: columns[name] for name in (*FEATURES, "price")}
            for columns in column_chunks(data.splits["train"], data.items, history_size)
        )


def train_purchase(
    items_file: str | Path,
    events_file: str | Path,
    run_dir: str | Path,
    valid_events: str | Path | None = None,
    test_events: str | Path | None = None,
    encoder: str = "minilm-l6",
    mode: str = "attention",
    parts: tuple[str, ...] | list[str] = PARTS,
    item_features: str | dict | ItemFeatures = "auto",
    fusion: str = "concat",
    epochs: int = PURCHASE["epochs"],
    batch_size: int = PURCHASE["batch_size"],
    learning_rate: float = PURCHASE["learning_rate"],
    sequence_length: int = PURCHASE["sequence_length"],
    history_size: int = PURCHASE["history_size"],
    tower_dim: int = 64,
    dropout: float = 0.1,
    id_dim: int = 32,
    id_l2: float = PURCHASE["id_l2"],
    catalog_negatives: int = PURCHASE["catalog_negatives"],
    intent_model: str | Path | None = None,
    seed: int = 0,
    patience: int | None = PURCHASE["patience"],
    until: int | None = None,
    verbose: int | str = "auto",
) -> tuple[PurchaseModel, dict]:
    """Trains a purchase model on the train split, stops early on valid AUC (keeping the best
    epoch), calibrates on valid, and evaluates on test (valid when there is no test split).

    Splits as `data.purchase_data.read_purchase_data` makes them: `valid_events` and `test_events`
    are later logs whose every view is scored with histories and counts from all earlier events;
    without them the last examples of `events_file` by time. `catalog_negatives` random
    never-touched items per purchase join the training examples (a training device: reported
    metrics never include them). `item_features` "auto" fuses the image vectors and attributes the
    items file has (`data.item_features`) with the item texts, by `fusion` ("concat" or "gated");
    "none" reads texts only; an `ItemFeatures` (or its config) declares them whatever the file has
    (items lacking them count as missing).

    Writes `run_dir/model.keras`, `config.json`, `history.json`, `curves.png`, TensorBoard logs
    (and HParams), and `evaluation.purchase.evaluate_purchase`'s files for the test split.
    Rerunning the same command after a crash resumes from the last finished epoch. Examples are
    built on disk (`read_purchase_data(work_dir=...)`, a temporary folder in `run_dir`), so memory
    stays bounded however long the event logs are.

    Returns:
        `(model, test metrics with baselines)`.
    """
    if isinstance(item_features, ItemFeatures):
        item_features = item_features.get_config()
    if isinstance(item_features, str) and item_features not in ("auto", "none"):
        raise ValueError(f"item_features must be 'auto', 'none' or an ItemFeatures, got {item_features!r}")
    config = save_run_config(run_dir, locals())
    item_features = None if item_features == "none" else item_features
    run_dir = Path(run_dir)
    for stale in run_dir.glob(".examples-*"):  # a killed run's
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".examples-", dir=run_dir) as work_dir:
        data = read_purchase_data(
            items_file, events_file, valid_events, test_events, history_size=history_size,
            catalog_negatives=catalog_negatives, seed=seed, until=until, work_dir=work_dir,
        )  # fmt: skip
        if not data.scored("valid"):
            raise DataError(f"{valid_events or events_file}: no examples for the validation split")
        print(f"events: {data.report}")
        print("examples: " + ", ".join(f"{k} {len(data.scored(k))}" for k in data.splits))

        keras.utils.set_random_seed(seed)
        intent = keras.saving.load_model(intent_model) if intent_model else None
        vocabularies = data.vocabularies()
        model = build_purchase_model(
            load_encoder(encoder),
            sequence_length,
            mode=mode,
            tower_dim=tower_dim,
            dropout=dropout,
            intent_model=intent,
            parts=parts,
            id_dim=id_dim,
            id_l2=id_l2,
            vocabulary_sizes={kind: max(len(ids), 1) for kind, ids in vocabularies.items()},
            item_features=ItemFeatures.infer(data.items) if item_features == "auto" else item_features,
            fusion=fusion,
        )
        fit_statistics(model, data, history_size, vocabularies)
        cache = VectorCache(model, data.items, data.queries(), progress=verbose != 0)
        examples = data.splits["train"] if catalog_negatives else data.scored("train")
        train = cache.dataset(examples, batch_size, shuffle=True, seed=seed, history_size=history_size)
        valid = cache.dataset(data.scored("valid"), batch_size * 4, history_size=history_size)
        task = purchase_task(model, train, valid)
        trainable = compile_purchase(task, learning_rate, int(train.cardinality()) * epochs)
        history = fit(
            trainable, train, valid, epochs=epochs, run_dir=run_dir, patience=patience, monitor="val_auc",
            verbose=verbose,
        )  # fmt: skip
        history = {key: [float(v) for v in values] for key, values in history.history.items()}
        (run_dir / "history.json").write_text(json.dumps(history, indent=2))
        plot_history({k: v for k, v in history.items() if "learning_rate" not in k}, run_dir / "curves.png")

        valid_labels = np.concatenate([c["label"] for c in column_chunks(data.scored("valid"), data.items)])
        logits = np.asarray(trainable.predict(valid, verbose=0)).reshape(-1)
        calibrate(model, logits, valid_labels)
        split = "test" if data.scored("test") else "valid"
        result = evaluate_purchase(model, data, run_dir, split, cache)
        log_hparams(run_dir, config)
        save_model(model, run_dir / MODEL_FILE)
        return model, result


def purchase_datasets(
    cache: VectorCache,
    train: list[dict],
    valid: list[dict] | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[DatasetFn, DatasetFn | None]:
    """`purchase_task`'s `train` and `valid` for the distributed loop: each replica reads its share of
    the global batch, e.g. `Trainer(purchase_task(model, *purchase_datasets(cache, train, valid)))`."""

    def dataset(examples: list[dict], shuffle: bool):
        def build(context: tf.distribute.InputContext | None):
            part, size = shard_for(examples, batch_size, context)
            return cache.dataset(part, size, shuffle=shuffle, seed=seed)

        return build

    return dataset(train, True), dataset(valid, False) if valid else None
