"""`ecomrec-tf data ...`: the embedded shop and file splits."""

from __future__ import annotations

import json
from pathlib import Path

from ecomrec_tf.cli.options import HelpFormatter, add, command, subcommands


def intents(args) -> None:
    from ecomrec_tf.data import write_intent_data

    paths = write_intent_data(
        args.out, seed=args.seed, train_per_intent=args.train_per_intent, eval_per_intent=args.eval_per_intent
    )
    for split, path in paths.items():
        print(f"{split:>5}: {path} ({sum(1 for _ in path.open(encoding='utf-8'))} utterances)")


def generate(args) -> None:
    from ecomrec_tf.data.shop import ShopConfig, generate_shop

    summary = generate_shop(
        args.out, ShopConfig(users=args.users, seed=args.seed, image_dim=getattr(args, "image_dim", 0))
    )
    events = sum(summary["events"].values())
    print(f"wrote {args.out}: {summary['items']} items, {events} events, ", end="")
    print(f"{summary['dialogues']} dialogues, the intent set")
    print(f"oracle AUC of the true purchase probabilities (views): {summary['oracle_auc_views']:.4f}")


def split(args) -> None:
    from ecomrec_tf.data.readers import split_file

    group_by = None if args.group_by == "none" else args.group_by
    for name, path in split_file(args.input, args.out, args.valid, args.test, args.seed, group_by).items():
        print(f"{name:>5}: {path} ({sum(1 for _ in path.open(encoding='utf-8'))} records)")


def describe(args) -> None:
    from ecomrec_tf.data.shop import describe_shop

    if not Path(args.shop).is_dir():
        raise FileNotFoundError(f"{args.shop}: no such folder")
    print(json.dumps(describe_shop(args.shop), indent=2, ensure_ascii=False))


def register(commands) -> None:
    group = subcommands(
        commands.add_parser(
            "data", formatter_class=HelpFormatter, help="the embedded default data; splitting files"
        ),
        "what",
    )
    parser = command(group, "intents", "write the intent set as train/valid/test JSONL", intents)
    add(parser, "out", "seed")
    parser.add_argument("--train-per-intent", type=int, default=200, help="training utterances per intent")
    parser.add_argument(
        "--eval-per-intent", type=int, default=60, help="valid and test utterances per intent"
    )
    parser = command(
        group, "generate", "write a whole synthetic shop: items, events, dialogues, intents", generate
    )
    add(parser, "out", "seed")
    parser.add_argument("--users", type=int, default=2000, help="users of the shop (events grow with them)")
    parser.add_argument(
        "--image-dim",
        type=int,
        default=0,
        help="> 0: items get an image vector of this size carrying a hidden style users prefer (0: none)",
    )
    parser = command(
        group,
        "split",
        "shuffle a JSONL file into train/valid/test (e.g. dialogues), grouped: no answer in two",
        split,
    )
    parser.add_argument("--in", dest="input", required=True, help="the JSONL file to split")
    add(parser, "out", "seed", out={"help": "folder for train.jsonl, valid.jsonl, test.jsonl"})
    parser.add_argument("--valid", type=float, default=0.1, help="share of the records for validation")
    parser.add_argument("--test", type=float, default=0.1, help="share of the records for test")
    parser.add_argument(
        "--group-by",
        default="auto",
        help="records sharing this field's value stay in one split ('auto': dialogues by their reply, "
        "digits masked, so no test answer is a training answer; 'none': record by record)",
    )
    parser = command(group, "describe", "counts and distributions of a shop folder", describe)
    parser.add_argument("--shop", required=True, help="a folder `data generate` wrote")
