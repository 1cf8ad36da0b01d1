"""Intent model speed, one run: training examples/s, and serving latency/throughput of the SavedModel
beside calling the Keras model directly.

    python bench/intent.py                  # MiniLM-L6 (the quickstart model)
    python bench/intent.py --encoder tiny   # a quick run

Prints a table; every number is measured in this run on this machine (no stored baselines).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401

import ecomrec_tf  # noqa: F401
from ecomrec_tf.data import generate_intent_data, text_classification_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training import make_optimizer


def training_rate(model, texts, ids, bucket: bool, batch_size: int = 32) -> float:
    """Examples/s of `fit` over one epoch, after a warm-up epoch that traces the step."""
    dataset = text_classification_dataset(texts, ids, batch_size, shuffle=True, bucket=bucket)
    model.fit(dataset, epochs=1, verbose=0)  # traces
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return len(texts) / (time.perf_counter() - start)


def latencies(fn, batch: tf.Tensor, seconds: float) -> list[float]:
    fn(batch)  # warm-up / trace
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument(
        "--train-examples", type=int, default=2200, help="small sets over-count partial batches"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="time per latency measurement")
    args = parser.parse_args()

    data = generate_intent_data(
        seed=0, train_per_intent=max(args.train_examples // 22, 2), eval_per_intent=10
    )
    labels = sorted({r["label"] for r in data["train"]})
    texts = [r["text"] for r in data["train"]]
    ids = [labels.index(r["label"]) for r in data["train"]]
    queries = [r["text"] for r in data["test"]]

    keras.utils.set_random_seed(0)
    model = build_intent_model(load_encoder(args.encoder), labels, sequence_length=64)
    model.compile(make_optimizer(1e-4, 1000), loss="sparse_categorical_crossentropy")
    rows = []
    bucketed = training_rate(model, texts, ids, bucket=True)
    unbucketed = training_rate(model, texts, ids, bucket=False)
    rows.append(("train: fit, length-bucketed batches of 32", f"{bucketed:.1f} ex/s", ""))
    rows.append(
        (
            "train: fit, unbucketed batches of 32",
            f"{unbucketed:.1f} ex/s",
            f"bucketed is {bucketed / unbucketed:.2f}x",
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        serve = tf.saved_model.load(str(export_saved_model(model, Path(tmp) / "intent"))).signatures[
            "serving_default"
        ]
        keras_call = tf.function(lambda text: model(text, training=False))
        one, batch32 = tf.constant(queries[:1]), tf.constant((queries * 4)[:32])
        for name, fn in [
            ("SavedModel serving_default", lambda x: serve(text=x)),
            ("Keras model, tf.function call", keras_call),
            ("Keras model.predict", lambda x: model.predict(x, verbose=0)),
        ]:
            single = latencies(fn, one, args.seconds)
            many = latencies(fn, batch32, args.seconds)
            p50, p99 = statistics.median(single) * 1e3, np.percentile(single, 99) * 1e3
            rows.append((f"serve: {name}, batch 1", f"p50 {p50:.1f} ms", f"p99 {p99:.1f} ms"))
            rows.append((f"serve: {name}, batch 32", f"{32 / statistics.median(many):.0f} ex/s", ""))

    print(
        f"\nencoder {args.encoder}, {len(texts)} examples, device {tf.config.list_logical_devices()[0].name}"
    )
    width = max(len(r[0]) for r in rows) + 2
    for name, value, note in rows:
        print(f"{name:<{width}}{value:>14}  {note}")


if __name__ == "__main__":
    main()
