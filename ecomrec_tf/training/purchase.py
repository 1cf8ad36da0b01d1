"""Train, evaluate and update a purchase model from users' item and event files, into a run folder.

The encoder is frozen in the purchase model, so every item text and query is encoded once
(`VectorCache`) and training runs on the vectors: the same `PurchaseModel.core` the full model
uses, so the saved model scores raw strings with exactly the trained weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.linear_model import LogisticRegression

from ecomrec_tf.data.events import EventsReport, purchase_examples, read_events, read_items, split_by_time
from ecomrec_tf.data.pipeline import shard_for
from ecomrec_tf.data.readers import DataError
from ecomrec_tf.data.task_datasets import item_text
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.encoders.sentence_encoder import encode_in_batches
from ecomrec_tf.evaluation.baselines import logistic_regression_scores, oracle_scores, popularity_scores
from ecomrec_tf.evaluation.classification import plot_history
from ecomrec_tf.evaluation.purchase import plot_reliability, plot_roc, purchase_metrics, session_ids
from ecomrec_tf.models.purchase_model import PurchaseModel, build_purchase_model, vector_inputs
from ecomrec_tf.training.fit import fit, save_run_config
from ecomrec_tf.training.intent import MODEL_FILE, save_model
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import Task
from ecomrec_tf.training.tensorboard import log_hparams


@dataclasses.dataclass
class PurchaseData:
    """Items, time-split purchase examples and what reading the events found."""

    items: dict[str, dict]
    splits: dict[str, list[dict]]
    report: EventsReport
    shop_dir: Path


def read_purchase_data(
    items_file: str | Path,
    events_file: str | Path,
    history_size: int = 10,
    catalog_negatives: int = 1,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    until: int | None = None,
) -> PurchaseData:
    """Reads items and events, builds examples (`events.purchase_examples`) and splits them by time.

    With `until` (Unix seconds), only examples before it are kept (their histories too): a model
    trained so leaves the later period to `update_purchase`.

    Raises:
        DataError: naming the file and line of a bad record, or when the events hold no purchase.
    """
    items = read_items(items_file)
    events, report = read_events(events_file, items)
    examples = purchase_examples(events, items, history_size, catalog_negatives, seed)
    if until is not None:
        examples = [example for example in examples if example["timestamp"] < until]
    if not any(example["label"] for example in examples):
        raise DataError(f"{events_file}: no view followed by a purchase: nothing to learn P(purchase) from")
    splits = split_by_time(examples, valid_fraction, test_fraction)
    return PurchaseData(items, splits, report, Path(items_file).parent)


class VectorCache:
    """The frozen encoder's vector of every item text and query, computed once.

    Args:
        model: the `PurchaseModel` whose encoder (and intent model) to run.
        items: items by id (`data.read_items`).
        queries: the queries to encode ("" is always added: no query).
        batch_size: texts per encoder call.
        progress: show a tqdm bar.
    """

    def __init__(
        self,
        model: PurchaseModel,
        items: dict[str, dict],
        queries,
        batch_size: int = 128,
        progress: bool = True,
    ):
        self.item_ids = sorted(items)
        self.item_row = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.prices = np.array(
            [np.nan if items[i].get("price") is None else items[i]["price"] for i in self.item_ids],
            np.float32,
        )
        self.queries = sorted({""} | {q or "" for q in queries})
        self.query_row = {query: i for i, query in enumerate(self.queries)}
        encode = tf.function(lambda texts: model.encoder(texts)[0], reduce_retracing=True)
        texts = [item_text(items[i]) for i in self.item_ids]
        self.item_vectors = encode_in_batches(encode, texts, batch_size, progress, "encoding items")
        self.query_vectors = encode_in_batches(encode, self.queries, batch_size, progress, "encoding queries")
        self.query_intents = None
        if model.intent_model is not None:
            intents = tf.function(model.intent_vectors, reduce_retracing=True)
            self.query_intents = encode_in_batches(
                intents, self.queries, batch_size, progress, "query intents"
            )

    def dataset(
        self,
        examples: list[dict],
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        history_size: int = 10,
    ) -> tf.data.Dataset:
        """Batches of `(core inputs, label)` for `PurchaseModel.core`, from examples."""
        history = np.full((len(examples), history_size), -1, np.int32)
        for row, example in enumerate(examples):
            ids = [self.item_row[i] for i in example["history"][:history_size]]
            history[row, : len(ids)] = ids
        item = np.array([self.item_row[e["item_id"]] for e in examples], np.int32)
        query = np.array([self.query_row[e["query"] or ""] for e in examples], np.int32)
        labels = np.array([e["label"] for e in examples], np.float32)
        dataset = tf.data.Dataset.from_tensor_slices(((history, item, query), labels))
        if shuffle:
            dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        item_vectors, query_vectors = tf.constant(self.item_vectors), tf.constant(self.query_vectors)
        prices = tf.constant(self.prices)
        intents = None if self.query_intents is None else tf.constant(self.query_intents)

        def gather(indices, label):
            history, item, query = indices
            features = {
                "history": tf.gather(item_vectors, tf.maximum(history, 0)),
                "history_mask": history >= 0,
                "item": tf.gather(item_vectors, item),
                "query": tf.gather(query_vectors, query),
                "has_query": query != self.query_row[""],
                "price": tf.gather(prices, item),
            }
            if intents is not None:
                features["query_intent"] = tf.gather(intents, query)
            return features, label

        return dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def training_model(model: PurchaseModel) -> keras.Model:
    """`model.core` with the logit as its only output: what `fit` and the loop train."""
    inputs = vector_inputs(
        model.backbone.hidden_dim, model.intent_model.vector_dim if model.intent_model else None
    )
    return keras.Model(inputs, model.core(inputs)["logit"], name="purchase_logit")


def compile_for_training(model: PurchaseModel, learning_rate: float, total_steps: int) -> keras.Model:
    trainable = training_model(model)
    trainable.compile(
        optimizer=make_optimizer(learning_rate, total_steps=total_steps, warmup_fraction=0.05),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
    )
    return trainable


def calibrate(model: PurchaseModel, logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Fits Platt scaling on held-out logits (the model's current ones) and folds it into the model."""
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(logits, float)[:, None], labels)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    scale, bias = float(model.calibration.scale.numpy()), float(model.calibration.bias.numpy())
    model.set_calibration(a * scale, a * bias + b)  # new logit = a * (scale * raw + bias) + b
    return a, b


def predict_probabilities(model: PurchaseModel, cache: VectorCache, examples: list[dict]) -> np.ndarray:
    return np.asarray(model.core.predict(cache.dataset(examples, 1024), verbose=0)["purchase_probability"])


def evaluate_purchase(
    model: PurchaseModel,
    data: PurchaseData,
    out_dir: str | Path,
    split: str = "test",
    cache: VectorCache | None = None,
    progress: bool = True,
) -> dict:
    """The model beside its baselines on one split: metrics JSON, ROC and reliability PNGs.

    Baselines fitted on the train split: item popularity, logistic regression on simple features,
    and with hand-made cross features; on a generated shop also the generator's true probabilities
    (the oracle). `gap_closed` is the share of the AUC gap between logistic regression (simple)
    and the oracle that the model closes.

    Writes `<split>_purchase_metrics.json`, `<split>_roc.png`, `<split>_reliability.png` to `out_dir`.
    """
    examples, train = data.splits[split], data.splits["train"]
    if not examples:
        raise DataError(f"the {split} split has no examples")
    cache = cache or VectorCache(model, data.items, _queries(data), progress=progress)
    labels = np.array([e["label"] for e in examples])
    groups = session_ids(examples)
    scores = {
        "model": predict_probabilities(model, cache, examples),
        "popularity": popularity_scores(train, examples),
        "logistic_regression": logistic_regression_scores(train, examples, data.items),
        "logistic_regression_cross": logistic_regression_scores(train, examples, data.items, cross=True),
    }
    oracle = oracle_scores(examples, data.items, data.shop_dir)
    if oracle is not None:
        scores["oracle"] = oracle
    result = {}
    for name, score in scores.items():
        if name == "popularity":  # a ranking, not a probability: AUC and ranking metrics only
            score = score / max(score.max(), 1e-9)
        result[name] = purchase_metrics(labels, score, groups)
    if oracle is not None:
        base = result["logistic_regression"]["auc"]
        result["gap_closed"] = (result["model"]["auc"] - base) / max(result["oracle"]["auc"] - base, 1e-9)
    result["split"] = split
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{split}_purchase_metrics.json").write_text(json.dumps(result, indent=2))
    plot_roc(labels, {k: v for k, v in scores.items()}, out_dir / f"{split}_roc.png")
    probabilities = {k: v for k, v in scores.items() if k != "popularity"}
    plot_reliability(labels, probabilities, out_dir / f"{split}_reliability.png")
    return result


def _queries(data: PurchaseData) -> set[str]:
    return {e["query"] or "" for examples in data.splits.values() for e in examples}


def train_purchase(
    items_file: str | Path,
    events_file: str | Path,
    run_dir: str | Path,
    encoder: str = "minilm-l6",
    mode: str = "attention",
    epochs: int = 5,
    batch_size: int = 256,
    learning_rate: float = 2e-3,
    sequence_length: int = 64,
    history_size: int = 10,
    tower_dim: int = 64,
    dropout: float = 0.1,
    intent_model: str | Path | None = None,
    seed: int = 0,
    patience: int | None = None,
    until: int | None = None,
    verbose: int | str = "auto",
) -> tuple[PurchaseModel, dict]:
    """Trains a purchase model on the train split, calibrates it on valid, evaluates it on test.

    Writes `run_dir/model.keras`, `config.json`, `history.json`, `curves.png`, TensorBoard logs
    (and HParams), and `evaluate_purchase`'s files for the test split. Rerunning the same command
    after a crash resumes from the last finished epoch.

    Returns:
        `(model, test metrics with baselines)`.
    """
    config = save_run_config(run_dir, locals())
    run_dir = Path(run_dir)
    data = read_purchase_data(items_file, events_file, history_size, seed=seed, until=until)
    print(f"events: {data.report}")
    print("examples: " + ", ".join(f"{k} {len(v)}" for k, v in data.splits.items()))

    keras.utils.set_random_seed(seed)
    intent = keras.saving.load_model(intent_model) if intent_model else None
    model = build_purchase_model(
        load_encoder(encoder),
        sequence_length,
        mode=mode,
        tower_dim=tower_dim,
        dropout=dropout,
        intent_model=intent,
    )
    cache = VectorCache(model, data.items, _queries(data), progress=verbose != 0)
    train = cache.dataset(
        data.splits["train"], batch_size, shuffle=True, seed=seed, history_size=history_size
    )
    valid = cache.dataset(data.splits["valid"], batch_size * 4, history_size=history_size)
    trainable = compile_for_training(model, learning_rate, int(train.cardinality()) * epochs)
    history = fit(trainable, train, valid, epochs=epochs, run_dir=run_dir, patience=patience, verbose=verbose)
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_history({k: v for k, v in history.items() if "learning_rate" not in k}, run_dir / "curves.png")

    valid_labels = np.array([e["label"] for e in data.splits["valid"]])
    logits = np.asarray(trainable.predict(valid, verbose=0)).reshape(-1)
    calibrate(model, logits, valid_labels)
    result = evaluate_purchase(model, data, run_dir, "test", cache)
    log_hparams(run_dir, config)
    save_model(model, run_dir / MODEL_FILE)
    return model, result


def update_purchase(
    model_file: str | Path,
    items_file: str | Path,
    events_file: str | Path,
    since: int,
    run_dir: str | Path,
    replay: float = 1.0,
    epochs: int = 2,
    batch_size: int = 256,
    learning_rate: float = 5e-4,
    history_size: int = 10,
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[PurchaseModel, dict]:
    """Fine-tunes a trained purchase model on events from `since` on, replaying older examples.

    Examples from `since` on (the new period) are split by time into new train, valid and test;
    older ones into old train and old test. The model trains on new train plus `replay` times as
    many examples sampled from old train, is recalibrated on new valid, and both test sets are
    evaluated before and after, so forgetting of the old period shows in the numbers. Old test is
    the last 10% of the old period: the test split of a model trained with `until=since`, so
    unseen by it.

    Writes `run_dir/model.keras` and `run_dir/update.json`.
    """
    run_dir = Path(run_dir)
    model = keras.saving.load_model(model_file)
    data = read_purchase_data(
        items_file, events_file, history_size, valid_fraction=0.0, test_fraction=0.0, seed=seed
    )
    examples = data.splits["train"]
    old = [e for e in examples if e["timestamp"] < since]
    new = [e for e in examples if e["timestamp"] >= since]
    if not old or not new:
        raise DataError(f"--since {since} leaves {len(old)} examples before it and {len(new)} after")
    old_splits, new_splits = split_by_time(old, 0.0, 0.1), split_by_time(new, 0.1, 0.2)
    replayed = random.Random(seed).sample(
        old_splits["train"], min(len(old_splits["train"]), math.ceil(replay * len(new_splits["train"])))
    )
    cache = VectorCache(model, data.items, {e["query"] or "" for e in examples}, progress=verbose != 0)

    def scores() -> dict:
        return {
            name: purchase_metrics(
                [e["label"] for e in part], predict_probabilities(model, cache, part), session_ids(part)
            )
            for name, part in (("old_period", old_splits["test"]), ("new_period", new_splits["test"]))
        }

    before = scores()
    keras.utils.set_random_seed(seed)
    train = cache.dataset(
        new_splits["train"] + replayed, batch_size, shuffle=True, seed=seed, history_size=history_size
    )
    trainable = compile_for_training(model, learning_rate, int(train.cardinality()) * epochs)
    valid = cache.dataset(new_splits["valid"], batch_size * 4, history_size=history_size)
    fit(trainable, train, valid, epochs=epochs, run_dir=run_dir, verbose=verbose)
    logits = np.asarray(trainable.predict(valid, verbose=0)).reshape(-1)
    calibrate(model, logits, np.array([e["label"] for e in new_splits["valid"]]))
    result = {
        "before": before,
        "after": scores(),
        "new_examples": len(new_splits["train"]),
        "replayed_examples": len(replayed),
        "since": since,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "update.json").write_text(json.dumps(result, indent=2))
    save_model(model, run_dir / MODEL_FILE)
    return model, result


def purchase_task(
    model: PurchaseModel,
    cache: VectorCache,
    train: list[dict],
    valid: list[dict] | None = None,
    batch_size: int = 256,
    weight: float = 1.0,
    name: str = "purchase",
    seed: int = 0,
) -> Task:
    """The purchase model as a `Task` for the distributed loop (`training.Trainer`), e.g. beside intent.

    Each replica reads its share of the global batch; the loss is binary cross-entropy on the logit.
    """

    def dataset(examples: list[dict], shuffle: bool):
        def build(context: tf.distribute.InputContext | None):
            part, size = shard_for(examples, batch_size, context)
            return cache.dataset(part, size, shuffle=shuffle, seed=seed)

        return build

    return Task(
        name=name,
        model=training_model(model),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        train=dataset(train, True),
        valid=dataset(valid, False) if valid else None,
        weight=weight,
        metrics=lambda: [keras.metrics.AUC(from_logits=True, name="auc")],
    )
