"""Serving speed, one run: every signature of the intent, purchase and reply exports, at batch 1 (p50/p99
latency) and batch 32 and 128 (examples/s), from the loaded SavedModel with and without XLA, beside the
Keras model; then a load test (N threads calling the SavedModel for a bounded time).

    python bench/serving.py                  # MiniLM-L6
    python bench/serving.py --encoder tiny   # a quick run

"With XLA" runs the same SavedModel in a child process with XLA auto-clustering on CPU
(`TF_XLA_FLAGS=--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit`, what TF Serving's XLA flags enable): the
tokenizer's string ops stay outside the compiled clusters. Weights do not change speed, so the models are
not trained. Every number is measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from timing import timings

BATCHES = (1, 32, 128)


def shop_texts() -> list[str]:
    """Distinct texts of real lengths: the generated shop's customer messages and item texts, mixed."""
    from ecomrec_tf.data.intent_data import generate_intent_data
    from ecomrec_tf.data.shop import generate_catalog
    from ecomrec_tf.data.task_datasets import item_text

    messages = list(dict.fromkeys(r["text"] for r in generate_intent_data(0, 40, 1)["train"]))
    items = [item_text(item) for item in generate_catalog(0, 40)]
    return [text for pair in zip(messages, items) for text in pair]


TEXTS: list[str] = []


def inputs_for(input_signature, batch: int, offset: int = 0) -> dict:
    """A batch of requests: every string a distinct shop text (the encoder's `tf.unique` would encode a
    repeated one once), numbers as `example_value` has them."""
    from ecomrec_tf.export.saved_model import example_value

    if not TEXTS:
        TEXTS.extend(shop_texts())
    inputs, used = {}, offset
    for spec in input_signature:
        value = np.repeat(example_value(spec), batch, axis=0)
        if value.dtype == object:
            flat = value.reshape(-1)
            flat[:] = [TEXTS[(used + i) % len(TEXTS)] for i in range(flat.size)]
            used += flat.size
        inputs[spec.name] = value
    return inputs


def row(times_by_batch: dict) -> dict:
    one = np.asarray(times_by_batch[1]) * 1000
    return {
        "p50_ms": float(np.percentile(one, 50)),
        "p99_ms": float(np.percentile(one, 99)),
        **{f"ex/s@{b}": b / float(np.median(times_by_batch[b])) for b in BATCHES[1:]},
    }


def saved_model_rows(export_dirs: dict, specs: dict, seconds: float) -> dict:
    """{model/signature: row} for the loaded SavedModels (run in this process)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    rows = {}
    for name, path in export_dirs.items():
        loaded = tf.saved_model.load(path)
        for signature, input_signature in specs[name].items():
            function = loaded.signatures[signature]
            times = {}
            for batch in BATCHES:
                inputs = {k: tf.constant(v) for k, v in inputs_for(input_signature, batch).items()}
                times[batch] = timings(lambda f=function, x=inputs: f(**x), seconds)
            rows[f"{name}/{signature}"] = row(times)
    return rows


def child(args) -> None:
    """Measures the SavedModels given as JSON on stdin; prints rows as JSON."""
    import tensorflow as tf

    job = json.loads(sys.stdin.read())
    specs = {
        name: {sig: [tf.TensorSpec(s[0], s[1], name=s[2]) for s in spec] for sig, spec in sigs.items()}
        for name, sigs in job["specs"].items()
    }
    print(json.dumps(saved_model_rows(job["exports"], specs, job["seconds"])))


def load_test(path: str, input_signature, threads: int, seconds: float) -> dict:
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    inputs = {k: tf.constant(v) for k, v in inputs_for(input_signature, 1).items()}
    serve(**inputs)
    calls, errors, lock = [0], [], threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        while time.perf_counter() < deadline:
            try:
                serve(**inputs)
                with lock:
                    calls[0] += 1
            except Exception as error:  # noqa: BLE001  (counted and reported)
                with lock:
                    errors.append(repr(error))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"requests": calls[0], "per_s": calls[0] / (time.perf_counter() - start), "errors": len(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=4, help="load-test threads")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import keras
    import tensorflow as tf

    import ecomrec_tf  # noqa: F401
    from ecomrec_tf.data.reply_bank import reply_bank_entries
    from ecomrec_tf.encoders import load_encoder
    from ecomrec_tf.export import export_saved_model
    from ecomrec_tf.models import build_intent_model, build_purchase_model
    from ecomrec_tf.models.reply_model import build_reply_model
    from ecomrec_tf.training.reply import shop_slot_extractor

    keras.utils.set_random_seed(0)
    encoder = load_encoder(args.encoder)
    labels = [f"intent_{i}" for i in range(22)]
    models = {
        "intent": build_intent_model(encoder, labels, sequence_length=64),
        "purchase": build_purchase_model(encoder, sequence_length=64),
        "reply": build_reply_model(  # retrieval; bench/reply.py times generate
            encoder,
            reply_bank_entries(),
            96,
            slot_extractor=shop_slot_extractor(),
        ),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    exports, specs, keras_rows = {}, {}, {}
    for name, model in models.items():
        exports[name] = str(export_saved_model(model, tmp / name))
        signatures = model.serving_signatures()
        specs[name] = {sig: spec for sig, (_, spec) in signatures.items() if sig != "serving_default"} or {
            "serving_default": signatures["serving_default"][1]
        }
        for sig, (function, spec) in signatures.items():
            if sig not in specs[name]:
                continue
            times = {}
            for batch in BATCHES:
                # The Keras model's signature function under tf.function: the fastest way to call the
                # Keras model (no `predict` per-call set-up), the same graph the export saves.
                inputs = inputs_for(spec, batch)
                f = tf.function(function)
                x = [tf.constant(inputs[s.name]) for s in spec]
                times[batch] = timings(lambda f=f, x=x: f(*x), args.seconds)
            keras_rows[f"{name}/{sig}"] = row(times)
    plain = saved_model_rows(exports, specs, args.seconds)
    job = {
        "exports": exports,
        "seconds": args.seconds,
        "specs": {
            n: {s: [(list(t.shape), t.dtype.name, t.name) for t in v] for s, v in d.items()}
            for n, d in specs.items()
        },
    }
    env = {
        **os.environ,
        "TF_XLA_FLAGS": "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child"], input=json.dumps(job), capture_output=True, text=True, env=env
    )
    if result.returncode:
        sys.exit(f"XLA child failed:\n{result.stderr[-3000:]}")
    xla = json.loads(result.stdout.strip().splitlines()[-1])

    print(f"encoder {args.encoder}; {os.cpu_count()} CPU threads; ex/s = examples per second")
    columns = f"{'p50 ms @1':>10}{'p99 ms @1':>10}{'ex/s @32':>10}{'ex/s @128':>11}{'vs Keras @32':>13}"
    print(f"{'signature':<30}{'path':<16}{columns}")
    for key in keras_rows:
        base = keras_rows[key]["ex/s@32"]
        for path, rows in (("Keras", keras_rows), ("SavedModel", plain), ("SavedModel+XLA", xla)):
            r = rows[key]
            print(f"{key:<30}{path:<16}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['ex/s@32']:>10.0f}"
                  f"{r['ex/s@128']:>11.0f}{r['ex/s@32'] / base:>12.2f}x")  # fmt: skip
    for name in exports:
        spec = specs[name].get("serving_default") or next(iter(specs[name].values()))
        stats = load_test(exports[name], spec, args.threads, args.load_seconds)
        print(f"load test {name}: {args.threads} threads x {args.load_seconds:.0f} s at batch 1: "
              f"{stats['requests']} requests, {stats['per_s']:.0f}/s, {stats['errors']} errors")  # fmt: skip


if __name__ == "__main__":
    main()
