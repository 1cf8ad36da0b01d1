"""Does domain-adaptive MLM pretraining help the intent model? Test accuracy with and without it.

Generates the embedded shop, pretrains MiniLM with whole-word masking on its unlabeled text (item
titles and descriptions, search queries, chat turns, the intent training texts; never the validation
or test texts), then fine-tunes the intent model as the quickstart does (top 3 layers, 4 epochs)
from the pretrained and from the original encoder, and prints both test accuracies.

    python bench/mlm_intent.py [--users 1000] [--mlm-epochs 1] [--out runs/bench-mlm]
"""

import argparse
import json
import time
from pathlib import Path

from ecomrec_tf.data.corpus import shop_dir_corpus
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.training import evaluate_intent, train_intent
from ecomrec_tf.training.mlm import ENCODER_DIR, pretrain_mlm

parser = argparse.ArgumentParser()
parser.add_argument("--users", type=int, default=1000)
parser.add_argument("--mlm-epochs", type=int, default=1)
parser.add_argument("--intent-epochs", type=int, default=4)
parser.add_argument("--encoder", default="minilm-l6")
parser.add_argument("--head-warmup-steps", type=int, default=300, help="train the new MLM head alone first")
parser.add_argument("--skip-original", action="store_true", help="only the MLM-pretrained intent model")
parser.add_argument("--out", default="runs/bench-mlm")
args = parser.parse_args()

out = Path(args.out)
shop = out / "shop"
if not (shop / "shop.json").exists():
    generate_shop(shop, ShopConfig(users=args.users, seed=0))
texts = shop_dir_corpus(shop)
print(f"pretraining corpus: {len(texts)} distinct texts")
start = time.perf_counter()
pretrain_mlm(
    texts,
    out / "mlm",
    encoder=args.encoder,
    epochs=args.mlm_epochs,
    sequence_length=64,
    learning_rate=5e-5,
    head_warmup_steps=args.head_warmup_steps,
)
print(f"MLM pretraining: {time.perf_counter() - start:.0f} s")

results = {}
runs = [("original", args.encoder)] * (not args.skip_original) + [
    ("mlm-pretrained", str(out / "mlm" / ENCODER_DIR))
]
for name, encoder in runs:
    model, _ = train_intent(
        shop / "intents" / "train.jsonl",
        shop / "intents" / "valid.jsonl",
        out / f"intent-{name}",
        encoder=encoder,
        epochs=args.intent_epochs,
        train_top_layers=3,
        verbose=2,
    )
    result = evaluate_intent(model, shop / "intents" / "test.jsonl", out / f"intent-{name}")
    results[name] = {"test_accuracy": result["accuracy"], "test_macro_f1": result["macro_f1"]}
    print(name, results[name])
print(json.dumps(results, indent=2))
