"""Data pipeline speed and memory, one run:

- examples/s of the intent tf.data pipeline with and without augmentation, beside the rate at which
  the intent model trains on it (the pipeline should be >= 10x faster: training never waits on input);
- padding efficiency (real tokens / padded tokens) of length bucketing, plain batches padded to their
  longest text, and padding to the maximum length;
- peak RSS of generating a shop of ~1M and ~10M events (memory must not grow with the event count).

    python bench/pipeline.py                       # MiniLM, 1M and 10M events (a few minutes)
    python bench/pipeline.py --encoder tiny --events 100000,1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import keras

import ecomrec_tf  # noqa: F401
from ecomrec_tf.data import generate_intent_data, text_classification_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.preprocessing import TextAugmenter, TextPreprocessor
from ecomrec_tf.training import make_optimizer

RATES = {"synonym": 0.1, "insertion": 0.05, "deletion": 0.05, "swap": 0.05, "typo": 0.05, "space": 0.02}
EVENTS_PER_USER = 53  # measured on the default shop


def pipeline_rate(texts, ids, augment, epochs: int = 3) -> float:
    dataset = text_classification_dataset(texts, ids, 32, shuffle=True, augment=augment)
    for _ in dataset:  # warm-up: traces the map functions
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in dataset:
            pass
    return epochs * len(texts) / (time.perf_counter() - start)


def padding_efficiency(texts, preprocessor, bucket: bool, pad_to: int | None = None) -> float:
    real = padded = 0
    for batch in text_classification_dataset(texts, batch_size=32, bucket=bucket):
        mask = preprocessor(batch)["padding_mask"].numpy()
        real += mask.sum()
        padded += mask.shape[0] * (pad_to or mask.shape[1])
    return real / padded


def generation_peak_rss(events: int) -> tuple[float, float, float, int]:
    """(RSS after imports, peak RSS, seconds, events written) of a fresh process generating ~`events`."""
    users = max(events // EVENTS_PER_USER, 1)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from this (large) parent process.
    code = (
        "import sys, json, re, time; from ecomrec_tf.data.shop import ShopConfig, generate_shop;"
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1));"
        "base = hwm(); start = time.perf_counter();"
        f"s = generate_shop(sys.argv[1], ShopConfig(users={users}), progress=False);"
        "print(json.dumps([base, hwm(), time.perf_counter() - start, sum(s['events'].values())]))"
    )
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-c", code, out], capture_output=True, text=True, check=True)
    base, peak, seconds, written = json.loads(result.stdout.strip().splitlines()[-1])
    return base / 1024, peak / 1024, seconds, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--events", default="1000000,10000000", help="comma-separated event counts")
    parser.add_argument("--train-steps", type=int, default=30)
    args = parser.parse_args()

    data = generate_intent_data(seed=0)
    labels = sorted({r["label"] for r in data["train"]})
    texts = [r["text"] for r in data["train"]]
    ids = [labels.index(r["label"]) for r in data["train"]]

    plain = pipeline_rate(texts, ids, None)
    augmented = pipeline_rate(texts, ids, TextAugmenter(RATES))

    keras.utils.set_random_seed(0)
    encoder = load_encoder(args.encoder)
    model = build_intent_model(encoder, labels, sequence_length=64)
    model.compile(make_optimizer(1e-4, 1000), loss="sparse_categorical_crossentropy")
    subset = args.train_steps * 32
    train = text_classification_dataset(texts[:subset], ids[:subset], 32, shuffle=True)
    model.fit(train.take(3), verbose=0)  # traces
    start = time.perf_counter()
    model.fit(train, verbose=0)
    training = subset / (time.perf_counter() - start)

    preprocessor = TextPreprocessor(encoder.tokenizer, 64)
    efficiency = {
        "bucketed by length": padding_efficiency(texts, preprocessor, bucket=True),
        "batches padded to their longest": padding_efficiency(texts, preprocessor, bucket=False),
        "padded to 64 tokens": padding_efficiency(texts, preprocessor, bucket=False, pad_to=64),
    }

    print(f"\nintent pipeline, {len(texts)} examples, batch 32, encoder {args.encoder}")
    print(f"  pipeline, no augmentation      {plain:10.0f} ex/s   {plain / training:7.1f}x training")
    print(f"  pipeline, with augmentation    {augmented:10.0f} ex/s   {augmented / training:7.1f}x training")
    print(f"  model training (fit)           {training:10.1f} ex/s")
    print("padding efficiency (real tokens / padded tokens)")
    for name, value in efficiency.items():
        print(f"  {name:<32}{value:8.1%}")
    print("shop generation (fresh process each)")
    for events in (int(float(e)) for e in args.events.split(",")):
        base, peak, seconds, written = generation_peak_rss(events)
        print(f"  {written:>11,} events: RSS after imports {base:5.0f} MiB, peak {peak:5.0f} MiB, ", end="")
        print(f"{seconds:6.1f} s, {written / seconds:7.0f} events/s")


if __name__ == "__main__":
    main()
