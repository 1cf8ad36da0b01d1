"""Continual training: a trained purchase model fine-tuned on a new period of events, old ones replayed."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import keras
import numpy as np

from ecomrec_tf.data.events import split_by_time
from ecomrec_tf.data.purchase_data import VectorCache, read_purchase_data
from ecomrec_tf.data.readers import DataError
from ecomrec_tf.evaluation.purchase import predict_probabilities, purchase_metrics, session_ids
from ecomrec_tf.models.purchase_model import PurchaseModel
from ecomrec_tf.training.fit import MODEL_FILE, fit, save_model
from ecomrec_tf.training.purchase import calibrate, compile_purchase, purchase_task


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
    unseen by it. The id vocabularies and count standardisation stay the trained model's: ids new
    since then share the out-of-vocabulary embedding until a full retrain.

    Writes `run_dir/model.keras` and `run_dir/update.json`.
    """
    run_dir = Path(run_dir)
    model = keras.saving.load_model(model_file)
    data = read_purchase_data(
        items_file, events_file, history_size=history_size, valid_fraction=0.0, test_fraction=0.0, seed=seed
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
    cache = VectorCache(model, data.items, data.queries(), progress=verbose != 0)

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
    valid = cache.dataset(new_splits["valid"], batch_size * 4, history_size=history_size)
    trainable = compile_purchase(
        purchase_task(model, train, valid), learning_rate, int(train.cardinality()) * epochs
    )
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
