"""Every head on real public data, with the CLI's defaults, beside classical baselines, in one table.

    bash ../shared/devdata/build.sh OUT --with-baselines      # the dev sets (never committed)
    python bench/real_data.py --data OUT                      # train, test once, print the table
    python bench/real_data.py --data OUT --only chatterbot    # one set
    python bench/real_data.py --data OUT --only movielens-small --ablation   # + the purchase ablation

Each model trains through the package's public API exactly as `ecomrec-tf train ...` would with default
options (validation for early stopping and calibration), then scores the test split once. Baselines are
fitted in the same run on the same splits: TF-IDF + logistic regression (C chosen on valid by macro-F1)
and the majority class for text; popularity, logistic regressions and a user + item bias model for
purchases; TF-IDF, BM25 and the untrained encoder's cosine for replies. The purchase test split is scored
as users score: every test view, with histories and counts from the train and valid logs plus the test
log's own earlier events. `--ablation` also trains text only / + ids / + counts / all and reports their
validation AUC (the choice of parts is made there, never on test). Takes about an hour on 2 CPU cores
(the tweets, 15k texts, dominate).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import ecomrec_tf  # noqa: F401

INTENT_SETS = {
    "tweets-source": "tweets-source",
    "breaches": "breaches",
    "chatterbot-intents": "chatterbot/intents",
}
ABLATION = {"text only": (), "+ ids": ("ids",), "+ counts": ("counts",), "all (default)": ("ids", "counts")}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tfidf_baseline(folder: Path) -> dict[str, dict]:
    """TF-IDF (1-2 grams, sublinear) + logistic regression, C chosen on valid by macro-F1; majority class."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    parts = {split: read_jsonl(folder / f"{split}.jsonl") for split in ("train", "valid", "test")}
    x = {split: [r["text"] for r in rows] for split, rows in parts.items()}
    y = {split: [r["label"] for r in rows] for split, rows in parts.items()}

    def fit(c: float):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
        return make_pipeline(vectorizer, LogisticRegression(C=c, max_iter=5000)).fit(x["train"], y["train"])

    models = {c: fit(c) for c in (0.25, 1.0, 4.0, 16.0, 64.0)}
    best = max(
        models, key=lambda c: (f1_score(y["valid"], models[c].predict(x["valid"]), average="macro"), -c)
    )
    predicted = models[best].predict(x["test"])
    majority = Counter(y["train"]).most_common(1)[0][0]
    return {
        f"TF-IDF + logistic regression (C={best:g})": {
            "accuracy": accuracy_score(y["test"], predicted),
            "macro_f1": f1_score(y["test"], predicted, average="macro"),
        },
        f"majority class ({majority})": {
            "accuracy": sum(label == majority for label in y["test"]) / len(y["test"]),
            "macro_f1": f1_score(y["test"], [majority] * len(y["test"]), average="macro"),
        },
    }


def intent_rows(folder: Path, runs: Path) -> dict[str, dict]:
    from ecomrec_tf.training import evaluate_intent, train_intent

    model, _ = train_intent(folder / "train.jsonl", folder / "valid.jsonl", runs, verbose=2)
    result = evaluate_intent(model, folder / "test.jsonl", runs)
    return {"model (MiniLM-L6, fine-tuned)": result, **tfidf_baseline(folder)}


def purchase_rows(folder: Path, runs: Path, ablation: bool) -> tuple[dict[str, dict], dict]:
    from ecomrec_tf.data.purchase_data import read_purchase_data
    from ecomrec_tf.evaluation.purchase import evaluate_purchase
    from ecomrec_tf.training import train_purchase

    files = {split: folder / f"{split}.jsonl" for split in ("train", "valid", "test")}
    valid_auc = {}
    for name, parts in ABLATION.items() if ablation else [("all (default)", ("ids", "counts"))]:
        model, result = train_purchase(
            folder / "items.jsonl", files["train"], runs / name, valid_events=files["valid"], parts=parts,
            verbose=2,
        )  # fmt: skip
        valid_auc[name] = result["model"]["auc"]  # no test file given: the report is on valid
    test = read_purchase_data(
        folder / "items.jsonl", files["test"], history_events=[files["train"], files["valid"]]
    )
    result = evaluate_purchase(model, test, runs / "test")
    rows = {k: v for k, v in result.items() if isinstance(v, dict) and "auc" in v}
    rows = {"model (hybrid, attention)": rows.pop("model"), **rows}
    cold = {
        name: {k: v["auc"] for k, v in subset.items() if isinstance(v, dict)}
        | {"examples": subset.get("model", subset)["examples"]}
        for name, subset in result["cold_start"].items()
    }
    return rows, {"valid_auc_by_parts": valid_auc, "cold_start": cold}


def reply_rows(folder: Path, runs: Path) -> dict[str, dict]:
    from ecomrec_tf.evaluation.reply import evaluate_reply
    from ecomrec_tf.training.reply import train_reply

    model, _ = train_reply(folder / "train.jsonl", folder / "valid.jsonl", runs, verbose=2)
    result = evaluate_reply(model, folder / "test.jsonl", folder / "train.jsonl", runs, zero_shot="minilm-l6")
    names = {
        "dual_encoder": "model (dual encoder, fine-tuned)",
        "zero_shot": "MiniLM-L6 untrained, cosine",
        "tfidf": "TF-IDF cosine",
        "bm25": "BM25",
    }
    return {label: result[key] for key, label in names.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the folder build.sh wrote")
    parser.add_argument("--only", nargs="*", default=None, help="sets to run (default: all)")
    parser.add_argument("--runs", type=Path, default=None, help="run folders (default: a temporary one)")
    parser.add_argument("--ablation", action="store_true", help="also the purchase parts on valid")
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="real_data_"))
    manifest = args.data / "MANIFEST.json"
    if not manifest.is_file():
        raise SystemExit(f"{args.data}: no MANIFEST.json; build the sets with ../shared/devdata/build.sh")
    chosen = args.only or [*INTENT_SETS, "movielens-small", "chatterbot"]
    tables, extra = {}, {}
    for name in chosen:
        start = time.perf_counter()
        if name in INTENT_SETS:
            tables[name] = (intent_rows(args.data / INTENT_SETS[name], runs / name), ["accuracy", "macro_f1"])
        elif name == "movielens-small":
            rows, extra[name] = purchase_rows(args.data / name, runs / name, args.ablation)
            tables[name] = (rows, ["auc", "log_loss", "ece"])
        elif name == "chatterbot":
            tables[name] = (reply_rows(args.data / name, runs / name), ["recall@1", "recall@5", "mrr"])
        else:
            raise SystemExit(
                f"unknown set {name!r}; choose from {[*INTENT_SETS, 'movielens-small', 'chatterbot']}"
            )
        print(f"[{name}: {time.perf_counter() - start:.0f} s]")
    import hashlib

    print(
        f"\ndata: {args.data} (MANIFEST.json sha256 {hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]})"
    )
    from ecomrec_tf.cli.options import print_table

    for name, (rows, columns) in tables.items():
        print(f"\n{name}, test split")
        print_table(rows, columns)
    for name, facts in extra.items():
        print(f"\n{name}: {json.dumps(facts, indent=2)}")
    (runs / "real_data.json").write_text(
        json.dumps({"tables": tables, "extra": extra}, indent=2, default=float)
    )
    print(f"\nruns and real_data.json: {runs}")


if __name__ == "__main__":
    main()
