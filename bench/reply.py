"""Reply-model latency, one run: `reply` at batch 1 on CPU with a 1,000-reply bank, from the Keras model
and from the exported SavedModel, beside the embedded 36-reply bank and the TF-IDF baseline; and
`generate` at batch 1 (greedy, beam, top-k).

    python bench/reply.py                          # MiniLM-L6 (what `train reply` fine-tunes)
    python bench/reply.py --encoder tiny           # a quick run
    python bench/reply.py --model runs/reply       # generate with a trained model (real reply lengths)

Retrieval latency does not depend on the weights, so that model is not trained here. Generation time
grows with the reply's length: an untrained decoder rarely ends early, so without `--model` every
reply runs to the longest (`max_reply_length` tokens), the worst case. Every number is measured in
this run on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
from timing import timings

import ecomrec_tf  # noqa: F401
from ecomrec_tf.data.reply_bank import reply_bank_entries
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.evaluation.reply import TfidfRetriever
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models.reply_model import build_reply_model
from ecomrec_tf.training.reply import shop_slot_extractor, slot_values_of

CONTEXT = (
    "[customer] hi [agent] Hello! How can I help you today? [customer] where is my order #1234567, it's late"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm-l6")
    parser.add_argument("--bank-size", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument(
        "--model", default=None, help="a trained reply model (.keras or run folder) to generate with"
    )
    args = parser.parse_args()

    vetted = reply_bank_entries()
    large = [
        {"text": f"{entry['text']} (policy {i // len(vetted) + 1})", "intent": entry["intent"]}
        for i, entry in enumerate(vetted * (args.bank_size // len(vetted) + 1))
    ][: args.bank_size]
    encoder = load_encoder(args.encoder)
    extractor_values = slot_values_of(None)
    context = tf.constant([CONTEXT])
    print(f"encoder {args.encoder}; batch 1; context of {len(CONTEXT.split())} words")
    print(f"{'path':<34}{'bank':>6}{'p50 ms':>9}{'p99 ms':>9}{'vs Keras, 36':>14}")
    rows = []
    for bank in (vetted, large):
        model = build_reply_model(encoder, bank, 96, slot_extractor=shop_slot_extractor(extractor_values))
        vectors = model.bank_vectors()
        keras_reply = tf.function(
            lambda c, model=model, vectors=vectors: model.reply(c, k=5, bank_vectors=vectors)
        )
        rows.append(
            (
                "Keras model, tf.function",
                len(bank),
                timings(lambda f=keras_reply: f(context), args.seconds, minimum=10),
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            version = export_saved_model(model, Path(tmp) / "reply")
            serve = tf.saved_model.load(str(version)).signatures["reply"]
            rows.append(
                (
                    "SavedModel signature 'reply'",
                    len(bank),
                    timings(lambda serve=serve: serve(context=context), args.seconds, minimum=10),
                )
            )
        tfidf = TfidfRetriever([entry["text"] for entry in bank] + [CONTEXT])
        texts = [entry["text"] for entry in bank]
        rows.append(
            (
                "TF-IDF baseline (scores only)",
                len(bank),
                timings(lambda t=texts, tfidf=tfidf: tfidf.scores([CONTEXT], t), args.seconds, minimum=10),
            )
        )
    rows += generation_rows(args, encoder, extractor_values, context)
    base = statistics.median(rows[0][2])
    for name, size, times in rows:
        p50, p99 = np.percentile(np.asarray(times) * 1000, [50, 99])
        print(f"{name:<34}{size:>6}{p50:>9.1f}{p99:>9.1f}{base / statistics.median(times):>13.2f}x")


def generation_rows(args, encoder, extractor_values, context) -> list:
    if args.model:
        model = keras.saving.load_model(
            Path(args.model) / "model.keras" if Path(args.model).is_dir() else args.model
        )
    else:
        model = build_reply_model(
            encoder,
            reply_bank_entries(),
            96,
            slot_extractor=shop_slot_extractor(extractor_values),
            decoder_layers=2,
        )
    if model.decoder is None:
        return []
    rows = []
    for decoding in ("greedy", "beam", "top_k"):
        generate = tf.function(lambda c, d=decoding: model.generate(c, d))
        rows.append(
            (
                f"Keras generate, {decoding}",
                len(model.reply_bank),
                timings(lambda g=generate: g(context), args.seconds, minimum=10),
            )
        )
    # Baseline: Keras's own cache updates (XlaDynamicUpdateSlice, which TF Serving cannot load) in the
    # same plain tf.function, as keras-hub's generate runs them without jit_compile: it compares the
    # cache-update op alone, not XLA compilation (the tf-text detokenizer cannot be XLA-compiled).
    with mock.patch("ecomrec_tf.models.reply_model.core_slice_update", contextlib.nullcontext):
        generate = tf.function(lambda c: model.generate(c, "greedy"))
        generate(context)
    rows.append(
        (
            "  same, greedy, Keras's XlaDynamicUpdateSlice updates (not XLA-compiled)",
            len(model.reply_bank),
            timings(lambda g=generate: g(context), args.seconds, minimum=10),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        serve = tf.saved_model.load(str(export_saved_model(model, Path(tmp) / "reply"))).signatures[
            "generate"
        ]
        times = timings(lambda: serve(context=context), args.seconds, minimum=10)
        rows.append((f"SavedModel 'generate' ({model.decoding})", len(model.reply_bank), times))
    print("generated:", model.generate(context)["reply"].numpy()[0].decode())
    return rows


if __name__ == "__main__":
    main()
