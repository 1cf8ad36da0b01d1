"""Ensembles beside their members on real data, in one table per set.

    bash ../shared/devdata/build.sh OUT --with-baselines
    python bench/ensemble.py --data OUT                    # chatterbot intents and MovieLens purchases
    python bench/ensemble.py --data OUT --only intents     # one set

Members train with the CLI's defaults (MiniLM-L6), stopped early on valid: three intent models that differ
only in their seed, and two purchase models, attention and two-tower. `ecomrec-tf ensemble` then averages
them, and stacks them (one weight per member on their scores, fitted on valid); every row is scored once
on test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ecomrec_tf.cli import main as cli


def run(*args: str) -> None:
    if cli([str(a) for a in args]) != 0:
        raise SystemExit(f"failed: ecomrec-tf {' '.join(map(str, args))}")


def ensemble_rows(kind: str, members: list[Path], files: list, work: Path) -> dict[str, dict]:
    rows = {}
    for method in ("average", "stacking"):
        out = work / f"ensemble-{method}"
        run(
            "ensemble",
            kind,
            *[x for m in members for x in ("--model", m)],
            "--method",
            method,
            *files,
            "--out",
            out,
        )
        report = json.loads((out / "ensemble.json").read_text())["test"]
        for name, row in report.items():  # "member 1: <run folder>" -> "member 1: seed0"
            label, _, path = name.partition(": ")
            rows[f"{label}: {Path(path).name}" if path else label] = row
    return rows


def intent_rows(folder: Path, work: Path) -> dict[str, dict]:
    members = []
    for seed in (0, 1, 2):
        run("train", "intent", "--train", folder / "train.jsonl", "--valid", folder / "valid.jsonl",
            "--seed", seed, "--runs-dir", work, "--run-name", f"seed{seed}")  # fmt: skip
        members.append(work / f"seed{seed}")
    files = ["--valid", folder / "valid.jsonl", "--test", folder / "test.jsonl"]
    return ensemble_rows("intent", members, files, work)


def purchase_rows(folder: Path, work: Path) -> dict[str, dict]:
    files = ["--items", folder / "items.jsonl", "--events", folder / "train.jsonl"]
    later = ["--valid-events", folder / "valid.jsonl", "--test-events", folder / "test.jsonl"]
    members = []
    for mode in ("attention", "two_tower"):
        run("train", "purchase", *files, "--valid-events", folder / "valid.jsonl", "--mode", mode,
            "--runs-dir", work, "--run-name", mode)  # fmt: skip
        members.append(work / mode)
    return ensemble_rows("purchase", members, files + later, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="devdata's OUT folder")
    parser.add_argument("--only", choices=["intents", "purchases"], default=None)
    args = parser.parse_args()
    tables = {}
    with tempfile.TemporaryDirectory() as work:
        if args.only in (None, "intents"):
            tables["chatterbot intents (test)"] = intent_rows(
                args.data / "chatterbot" / "intents", Path(work) / "i"
            )
        if args.only in (None, "purchases"):
            tables["MovieLens purchases (test)"] = purchase_rows(
                args.data / "movielens-small", Path(work) / "p"
            )
    for title, rows in tables.items():
        columns = sorted({c for row in rows.values() for c in row})
        print(f"\n{title}\n| model | " + " | ".join(columns) + " |\n|---|" + "---:|" * len(columns))
        for name, row in rows.items():
            print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |")
    print(json.dumps(tables))


if __name__ == "__main__":
    main()
