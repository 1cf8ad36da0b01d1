"""Teacher against distilled students on real data: accuracy, size and serving latency, in one table.

    bash ../shared/devdata/build.sh OUT --with-baselines
    python bench/distill.py --data OUT                          # chatterbot intents (21 topics)
    python bench/distill.py --data OUT --set tweets-source      # another intent set

The teacher is MiniLM-L6 fine-tuned with `train intent`'s defaults. Students copy 2 of its 6 layers (0 and
5) and train on the same texts with `train distill`'s defaults (temperature 2, alpha 0.5); beside them the
same 2-layer student trained on the labels alone (alpha 0), which says what the teacher's soft targets add.
All stop early on valid macro-F1; test is scored once. Latency is the exported SavedModel's
`serving_default`, loaded as TF Serving loads it, one distinct test text per request (p50 and p90 of
every request, after a warm-up), and 32 texts per request (texts/s), on this machine, in this run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from timing import timings

import ecomrec_tf  # noqa: F401


def latency(model, texts: list[str], work: Path) -> dict[str, float]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    from ecomrec_tf.export import export_saved_model

    serve = tf.saved_model.load(str(export_saved_model(model, work / "intent"))).signatures["serving_default"]
    single = iter(texts * 100)
    one = timings(lambda: serve(text=tf.constant([next(single)])), seconds=10)
    batch = tf.constant((texts * 32)[:32])
    many = timings(lambda: serve(text=batch), seconds=10)
    return {
        "p50_ms": float(np.percentile(one, 50) * 1000),
        "p90_ms": float(np.percentile(one, 90) * 1000),
        "texts_per_s_at_32": 32 / float(np.median(many)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="devdata's OUT folder")
    parser.add_argument("--set", default="chatterbot/intents", help="an intent set under OUT")
    parser.add_argument("--layers", type=int, default=2, help="the students' layers")
    args = parser.parse_args()

    from ecomrec_tf.data import read_intent_file
    from ecomrec_tf.evaluation.intent import evaluate_intent
    from ecomrec_tf.training import train_intent
    from ecomrec_tf.training.distill import distill_intent

    folder = args.data / args.set
    files = {split: folder / f"{split}.jsonl" for split in ("train", "valid", "test")}
    test_texts, _ = read_intent_file(files["test"])
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        teacher, _ = train_intent(files["train"], files["valid"], work / "teacher", verbose=2)
        models = {"teacher (MiniLM-L6, 6 layers)": teacher}
        for name, alpha in ((f"student, {args.layers} layers, distilled", 0.5),
                            (f"student, {args.layers} layers, labels only", 0.0)):  # fmt: skip
            run = work / name.replace(" ", "").replace(",", "-")
            models[name], _ = distill_intent(
                teacher, files["train"], files["valid"], run, args.layers, alpha=alpha, verbose=2
            )
        for name, model in models.items():
            result = evaluate_intent(model, files["test"], work / "eval", name="test")
            rows[name] = {
                "accuracy": result["accuracy"],
                "macro_f1": result["macro_f1"],
                "parameters": model.count_params(),
                **latency(model, test_texts, work / name.replace(" ", "")),
            }
    print(f"\n{args.set} (test, {len(test_texts)} texts)")
    print(
        "| model | accuracy | macro-F1 | parameters | p50 ms (1 text) | p90 ms | texts/s (32 per request) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['parameters']:,} | "
              f"{row['p50_ms']:.1f} | {row['p90_ms']:.1f} | {row['texts_per_s_at_32']:.0f} |")  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
