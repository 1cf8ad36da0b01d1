"""Teacher against distilled students on real data: accuracy, size and serving latency, in one table.

    bash ../shared/devdata/build.sh OUT --with-baselines
    python bench/distill.py --data OUT                          # chatterbot intents (21 topics)
    python bench/distill.py --data OUT --set tweets-source      # another intent set
    python bench/distill.py --data OUT --reply                  # chatterbot reply selection

The teacher is MiniLM-L6 fine-tuned with `train intent`'s defaults (`--reply`: `train reply`'s, retrieval
only, on the chatterbot dialogues: Recall@1 and MRR of the reference among 100 candidates). Students
copy 2 of its 6 layers (0 and 5) and train on the same data with `train distill`'s defaults (temperature
2, alpha 0.5); beside them the same 2-layer student trained on the labels alone (alpha 0), which says
what the teacher's soft targets add. All stop early on validation; test is scored once. Latency is the
exported SavedModel's `serving_default`, loaded as TF Serving loads it, one distinct test text per
request (p50 and p90 of every request, after a warm-up), and 32 texts per request (texts/s), on this
machine, in this run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from timing import timings

import ecomrec_tf  # noqa: F401


def latency(model, texts: list[str], work: Path, name: str = "intent") -> dict[str, float]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    from ecomrec_tf.export import export_saved_model

    serve = tf.saved_model.load(str(export_saved_model(model, work / name))).signatures["serving_default"]
    field = next(iter(serve.structured_input_signature[1]))  # text, or context
    single = iter(texts * 100)
    one = timings(lambda: serve(**{field: tf.constant([next(single)])}), seconds=10)
    batch = tf.constant((texts * 32)[:32])
    many = timings(lambda: serve(**{field: batch}), seconds=10)
    return {
        "p50_ms": float(np.percentile(one, 50) * 1000),
        "p90_ms": float(np.percentile(one, 90) * 1000),
        "texts_per_s_at_32": 32 / float(np.median(many)),
    }


def intent_rows(folder: Path, layers: int, work: Path) -> dict[str, dict]:
    from ecomrec_tf.data import read_intent_file
    from ecomrec_tf.evaluation.intent import evaluate_intent
    from ecomrec_tf.training import train_intent
    from ecomrec_tf.training.distill import distill_intent

    files = {split: folder / f"{split}.jsonl" for split in ("train", "valid", "test")}
    teacher, _ = train_intent(files["train"], files["valid"], work / "teacher", verbose=2)
    models = {"teacher (MiniLM-L6, 6 layers)": teacher}
    for name, alpha in STUDENTS:
        models[name.format(layers)], _ = distill_intent(
            teacher, files["train"], files["valid"], work / f"student-{alpha}", layers, alpha=alpha, verbose=2
        )
    texts, _ = read_intent_file(files["test"])
    rows = {}
    for i, (name, model) in enumerate(models.items()):
        result = evaluate_intent(model, files["test"], work / "eval", name="test")
        scores = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}
        rows[name] = (
            scores | {"parameters": model.count_params()} | latency(model, texts, work / f"export{i}")
        )
    return rows


def reply_rows(folder: Path, layers: int, work: Path) -> dict[str, dict]:
    from ecomrec_tf.data.readers import read_dialogues
    from ecomrec_tf.data.task_datasets import dialogue_context
    from ecomrec_tf.evaluation.reply import evaluate_reply
    from ecomrec_tf.training.distill import distill_reply
    from ecomrec_tf.training.reply import train_reply

    files = {split: folder / f"{split}.jsonl" for split in ("train", "valid", "test")}
    teacher, _ = train_reply(files["train"], files["valid"], work / "teacher", decoder_layers=0, verbose=2)
    models = {"teacher (MiniLM-L6, 6 layers)": teacher}
    for name, alpha in STUDENTS:
        models[name.format(layers)], _ = distill_reply(
            teacher, files["train"], files["valid"], work / f"student-{alpha}", layers, alpha=alpha, verbose=2
        )
    contexts = [dialogue_context(d["context"]) for d in read_dialogues(files["test"])]
    rows = {}
    for i, (name, model) in enumerate(models.items()):
        result = evaluate_reply(model, files["test"], files["train"], work / f"eval{i}")["dual_encoder"]
        scores = {"recall@1": result["recall@1"], "mrr": result["mrr"], "parameters": model.count_params()}
        rows[name] = scores | latency(model, contexts, work / f"export{i}", "reply")
    return rows


STUDENTS = (("student, {} layers, distilled", 0.5), ("student, {} layers, labels only", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="devdata's OUT folder")
    parser.add_argument("--set", default="chatterbot/intents", help="an intent set under OUT")
    parser.add_argument("--reply", action="store_true", help="reply selection on OUT/chatterbot instead")
    parser.add_argument("--layers", type=int, default=2, help="the students' layers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if args.reply:
            title, rows = (
                "chatterbot reply selection",
                reply_rows(args.data / "chatterbot", args.layers, Path(work)),
            )
        else:
            title, rows = args.set, intent_rows(args.data / args.set, args.layers, Path(work))
    columns = [c for c in next(iter(rows.values())) if c != "parameters"]
    print(f"\n{title} (test)\n| model | " + " | ".join(columns[:2]) + " | parameters | p50 ms (1 request) | "
          "p90 ms | texts/s (32 a request) |\n|---|" + "---:|" * 6)  # fmt: skip
    for name, row in rows.items():
        print(f"| {name} | {row[columns[0]]:.4f} | {row[columns[1]]:.4f} | {row['parameters']:,} | "
              f"{row['p50_ms']:.1f} | {row['p90_ms']:.1f} | {row['texts_per_s_at_32']:.0f} |")  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
