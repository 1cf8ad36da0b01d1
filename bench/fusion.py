"""Item-feature fusion against text only, in one table: the generated shop with images, and MovieLens.

    python bench/fusion.py --shop                      # the generated shop, items with image vectors
    python bench/fusion.py --data OUT                  # MovieLens from ../shared/devdata (build.sh OUT)

Generated shop (`ShopConfig(image_dim=32)`): every item has a hidden style, one of 4, that no text says;
its image vector is the style's centre plus noise (10% of items have none), and each user prefers one
style (+2 on the true purchase logit). Only a model that reads images can learn it; the oracle (the
generator's true probabilities) is the ceiling. Splits by time, as `train purchase` makes them.

MovieLens (no images exist): text only beside fused models that must not do worse: the image input
declared but missing for every item (what a shop without images trains), random image vectors that carry
nothing (the gate must learn to ignore them), and the release year as a numeric attribute (a real
attribute, which the description's text also holds). Trained on train, stopped early and calibrated on
valid; test scored once, every test view with histories and counts from all earlier events, as
`bench/real_data.py` does.

Every model is `train_purchase` with the CLI's defaults (MiniLM-L6, attention, ids + counts) but the item
features; `--encoder tiny` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import ecomrec_tf  # noqa: F401


def shop_rows(users: int, encoder: str, work: Path) -> dict[str, dict]:
    from ecomrec_tf.data.shop import ShopConfig, generate_shop
    from ecomrec_tf.training import train_purchase

    shop = work / "shop"
    generate_shop(shop, ShopConfig(users=users, seed=0, image_dim=32))
    rows = {}
    variants = [("text only", "none", "concat"), ("text + image, concat (default)", "auto", "concat"),
                ("text + image, gated", "auto", "gated")]  # fmt: skip
    for name, features, fusion in variants:
        _, result = train_purchase(
            shop / "items.jsonl", shop / "events.jsonl", work / name, encoder=encoder, item_features=features,
            fusion=fusion, verbose=2,
        )  # fmt: skip
        history = json.loads((work / name / "history.json").read_text())
        rows[name] = {"valid_auc": max(history["val_auc"]), "test_auc": result["model"]["auc"]}
    rows["oracle (true probabilities)"] = {"valid_auc": None, "test_auc": result["oracle"]["auc"]}
    return rows


def movielens_items(folder: Path, work: Path) -> dict[str, Path]:
    """The items file as it is, and with the fused variants' features added."""
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(0)
    variants = {
        "noise image": lambda item: {"image_vector": [round(float(v), 4) for v in rng.normal(size=32)]},
        "year": lambda item: (
            {"attributes": {"year": int(item["description"][:4])}}
            if item["description"][:4].isdigit()
            else {}
        ),
    }
    work.mkdir(parents=True, exist_ok=True)
    paths = {"as is": folder / "items.jsonl"}
    for name, extra in variants.items():
        paths[name] = work / f"items-{name.replace(' ', '-')}.jsonl"
        paths[name].write_text("".join(json.dumps(item | extra(item)) + "\n" for item in items))
    return paths


def movielens_rows(folder: Path, encoder: str, work: Path) -> dict[str, dict]:
    from ecomrec_tf.data.item_features import ItemFeatures
    from ecomrec_tf.data.purchase_data import read_purchase_data
    from ecomrec_tf.evaluation.purchase import evaluate_purchase
    from ecomrec_tf.training import train_purchase

    files = {split: folder / f"{split}.jsonl" for split in ("train", "valid", "test")}
    items = movielens_items(folder, work)
    variants = [  # (row, items file, item features)
        ("text only", items["as is"], "none"),
        ("+ image input, every image missing", items["as is"], ItemFeatures(image_dim=32)),
        ("+ random image vectors (no signal)", items["noise image"], "auto"),
        ("+ year attribute", items["year"], "auto"),
    ]
    rows = {}
    for name, items_file, features in variants:
        run = work / name.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
        model, result = train_purchase(
            items_file, files["train"], run, valid_events=files["valid"], encoder=encoder,
            item_features=features, verbose=2,
        )  # fmt: skip
        test = read_purchase_data(items_file, files["test"], history_events=[files["train"], files["valid"]])
        tested = evaluate_purchase(model, test, run / "test")
        rows[name] = {"valid_auc": result["model"]["auc"], "test_auc": tested["model"]["auc"]}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", action="store_true", help="the generated shop with image vectors")
    parser.add_argument("--data", type=Path, help="devdata's OUT folder (MovieLens)")
    parser.add_argument("--users", type=int, default=2000, help="users of the generated shop")
    parser.add_argument("--encoder", default="minilm-l6")
    args = parser.parse_args()
    if not args.shop and not args.data:
        parser.error("give --shop, --data OUT or both")
    with tempfile.TemporaryDirectory() as work:
        tables = {}
        if args.shop:
            tables[f"generated shop, {args.users} users, 32-d images"] = shop_rows(
                args.users, args.encoder, Path(work) / "shop-runs"
            )
        if args.data:
            tables["MovieLens (no images)"] = movielens_rows(
                args.data / "movielens-small", args.encoder, Path(work) / "movielens-runs"
            )
    for title, rows in tables.items():
        print(f"\n{title}\n| model | valid AUC | test AUC |\n|---|---:|---:|")
        for name, row in rows.items():
            valid = "" if row["valid_auc"] is None else f"{row['valid_auc']:.4f}"
            print(f"| {name} | {valid} | {row['test_auc']:.4f} |")
    print(json.dumps(tables))


if __name__ == "__main__":
    main()
