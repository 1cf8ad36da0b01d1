"""`ecomrec-tf evaluate ...`: a trained model's metrics beside baselines, written beside the model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ecomrec_tf.cli.options import (
    SEARCHES,
    HelpFormatter,
    add,
    command,
    load_model,
    out_dir,
    print_table,
    run_setting,
    subcommands,
)
from ecomrec_tf.errors import ConfigError


def evaluate_intent(model, data: str, out: Path, name: str, as_json: bool) -> dict:
    from ecomrec_tf.evaluation import format_report
    from ecomrec_tf.evaluation.intent import evaluate_intent

    result = evaluate_intent(model, data, out, name=name)
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "confusion_matrix"}, indent=2))
    else:
        print(format_report(result))
        print(f"confusion matrix: {out / f'{name}_confusion_matrix.png'}")
    return result


def intent(args) -> None:
    evaluate_intent(load_model(args.model), args.data, out_dir(args), args.name, args.json)


def print_purchase_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    columns = ["auc", "log_loss", "ece", "ndcg@10", "recall@10", "mrr"]
    print(
        f"{result['split']} split: {result['model']['examples']} examples, "
        f"{result['model']['ranked_sessions']} sessions with a purchase and a non-purchase"
    )
    print_table(
        {name: row for name, row in result.items() if isinstance(row, dict) and "auc" in row}, columns
    )
    for name, rows in result["cold_start"].items():
        if "model" not in rows:
            print(f"\n{name}: {rows['examples']} examples (none with both labels to score)")
            continue
        what = name.removeprefix("new_").removesuffix("s")
        print(f"\n{name}: {rows['model']['examples']} examples whose {what} the train split never shows")
        print_table(rows, ["auc", "log_loss"])
    if "with_catalog_negatives" in result:
        print("\nwith catalog negatives (easy random items; a training device, not a user's metric):")
        print_table(result["with_catalog_negatives"], ["auc", "log_loss"])
    if "gap_closed" in result:
        print(
            f"share of the AUC gap from logistic regression to the oracle closed: {result['gap_closed']:.2f}"
        )


def purchase(args) -> None:
    from ecomrec_tf.data.purchase_data import read_purchase_data
    from ecomrec_tf.evaluation.purchase import evaluate_purchase

    model = load_model(args.model)
    out = out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    history_size = args.history_size or run_setting(args.model, "history_size", 10)
    with tempfile.TemporaryDirectory(prefix=".examples-", dir=out) as work_dir:  # bounded memory
        data = read_purchase_data(
            args.items,
            args.events,
            history_events=args.history_events or (),
            history_size=history_size,
            catalog_negatives=args.catalog_negatives,
            until=None if args.history_events else run_setting(args.model, "until"),
            work_dir=work_dir,
        )
        split = "test" if args.history_events else args.split
        print_purchase_result(evaluate_purchase(model, data, out, split), args.json)


def compare(args) -> None:
    from ecomrec_tf.data.events import read_events, read_items
    from ecomrec_tf.evaluation.compare import compare_exports

    if len(args.model) < 2:
        raise ConfigError("evaluate compare: give --model at least twice (the first is the reference)")
    models = {}
    for number, path in enumerate(args.model, 1):  # "purchase/3"; a path given twice gets its position
        name = f"{Path(path).parent.name}/{Path(path).name}"
        models[f"{name} (#{number})" if name in models else name] = path
    items = read_items(args.items)
    events, _ = read_events(args.events, items)
    earlier = [event for path in args.history_events or () for event in read_events(path, items)[0]]
    result = compare_exports(models, items, events, earlier, args.history_size, resamples=args.resamples)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['examples']} views of {result['users']} users; {result['resamples']} bootstrap resamples")
    print_table(result["versions"], ["auc", "ndcg@10"])
    reference = next(iter(models))
    for name, rows in result["differences"].items():
        print(f"\n{name} - {reference} ({result['level']:.0%} interval, share of resamples ahead):")
        for metric, row in rows.items():
            print(
                f"  {metric:<8} {row['difference']:+.4f}  [{row['low']:+.4f}, {row['high']:+.4f}]  "
                f"ahead in {row['p_ahead']:.0%}"
            )


def print_reply_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    columns = ["recall@1", "recall@5", "mrr", "bleu", "rouge_l", "fallback_rate"]
    candidates = result["dual_encoder"]["candidates"]
    print(f"{result['dialogues']} dialogues, each reference ranked among {candidates} candidate replies")
    rows = {name: result[name] for name in ("dual_encoder", "zero_shot", "tfidf", "bm25") if name in result}
    if "generated" in result:
        rows[f"generated ({result['generated']['decoding']})"] = result["generated"]
    print_table(rows, columns)
    for example in result["examples"]:
        print(
            f"\n  context:   {example['context']}\n  reply:     {example['reply']}  ({example['score']:.2f})"
        )
        if "generated" in example:
            print(f"  generated: {example['generated']}")
        print(f"  reference: {example['reference']}")


def reply(args) -> None:
    from ecomrec_tf.evaluation.reply import evaluate_reply

    zero_shot = None if args.zero_shot == "none" else args.zero_shot
    if zero_shot == "auto":  # the encoder the run started from
        zero_shot = run_setting(args.model, "encoder")
    result = evaluate_reply(
        load_model(args.model),
        args.data,
        args.train,
        out_dir(args),
        max_turns=args.max_turns or run_setting(args.model, "max_turns", 3),
        decoding=args.decoding,
        zero_shot=zero_shot,
    )
    print_reply_result(result, args.json)


def register(commands) -> None:
    group = subcommands(
        commands.add_parser("evaluate", formatter_class=HelpFormatter, help="evaluate a trained model"),
        "what",
    )
    parser = command(group, "intent", "accuracy, macro-F1, per-class report, confusion PNG", intent)
    add(parser, "model")
    parser.add_argument("--data", required=True, help="a labelled {text, label} file")
    parser.add_argument("--name", default="test", help="prefix of the written files")
    add(parser, "eval_out", "json")

    parser = command(
        group, "reply", "Recall@1/5, MRR among 100 candidates, BLEU, ROUGE-L beside TF-IDF, BM25", reply
    )
    add(parser, "model")
    parser.add_argument("--data", required=True, help="{context, reply} JSONL to evaluate on")
    add(parser, "train", train={"help": "the training file (fits the TF-IDF and BM25 baselines)"})
    add(parser, "eval_out", "max_turns")
    parser.add_argument(
        "--decoding", choices=SEARCHES, default=None, help="generation's search; default: the model's"
    )
    parser.add_argument(
        "--zero-shot",
        default="auto",
        help="also score this encoder untrained (mean-pooled cosine): 'auto' the one the run started from, "
        "'none', or an encoder name or folder",
    )
    add(parser, "json")

    parser = command(
        group, "purchase", "AUC, log loss, ECE, NDCG@10, Recall@10, MRR beside baselines", purchase
    )
    add(parser, "model", "items", "events", events={
        "help": "events to score: with --history-events every view in it, else the --split of it by time"
    })  # fmt: skip
    parser.add_argument(
        "--history-events",
        action="append",
        default=None,
        help="earlier events (repeat for several files, e.g. the train and valid logs): histories and "
        "counts come from them plus --events' own earlier events; the baselines are fitted on them",
    )
    parser.add_argument(
        "--split", choices=["train", "valid", "test"], default="test",
        help="without --history-events: which time split of --events (as the run split it, with its --until)",
    )  # fmt: skip
    parser.add_argument(
        "--history-size", type=int, default=None, help="most recent items per user; default: the run's (10)"
    )
    parser.add_argument(
        "--catalog-negatives",
        type=int,
        default=0,
        help="also report, apart, the metrics with this many random catalog negatives per purchase",
    )
    add(parser, "eval_out", "json")

    parser = command(
        group,
        "compare",
        "offline A/B: exported purchase versions on logged events, bootstrap intervals",
        compare,
    )
    parser.add_argument(
        "--model", action="append", required=True,
        help="a purchase SavedModel version folder; repeat (saved_models/purchase/1, .../2): the first "
        "is the reference",
    )  # fmt: skip
    add(parser, "items", "events", events={"help": "logged events: every view in it is scored"})
    parser.add_argument(
        "--history-events", action="append", default=None,
        help="earlier events (repeat for several files): histories and counts come from them",
    )  # fmt: skip
    parser.add_argument("--history-size", type=int, default=10, help="most recent items per user")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (users drawn again)")
    add(parser, "json")
