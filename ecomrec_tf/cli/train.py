"""`ecomrec-tf train ...`, `tune ...` and `update ...`: the commands that train a model into a run folder."""

from __future__ import annotations

import json
from pathlib import Path

from ecomrec_tf.cli.evaluate import evaluate_intent, print_purchase_result, print_reply_result
from ecomrec_tf.cli.options import (
    SEARCHES,
    HelpFormatter,
    add,
    add_run_folder,
    add_run_options,
    command,
    run_dir,
    subcommands,
    verbosity,
)
from ecomrec_tf.defaults import INTENT, PURCHASE, REPLY
from ecomrec_tf.errors import ConfigError


def train_intent(args, folder: Path):
    from ecomrec_tf.training import train_intent

    print(f"TensorBoard: tensorboard --logdir {folder.parent}")
    model, history = train_intent(
        args.train,
        args.valid,
        folder,
        encoder=args.encoder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        seed=args.seed,
        patience=args.patience,
        train_top_layers=None if args.lora_rank else args.train_top_layers,
        lora_rank=args.lora_rank,
        layer_decay=args.layer_decay,
        class_weight=None if args.class_weight == "none" else args.class_weight,
        precision=args.precision,
        verbose=verbosity(),
    )
    print(f"model: {folder / 'model.keras'}  ({history['examples_per_second'][0]:.1f} training examples/s)")
    return model


def distill(args) -> None:
    from ecomrec_tf.cli.options import load_model, run_setting
    from ecomrec_tf.models import IntentModel, ReplyModel
    from ecomrec_tf.training.distill import distill_intent, distill_reply

    folder = run_dir(args, "distill")
    print(f"TensorBoard: tensorboard --logdir {folder.parent}")
    teacher = load_model(args.teacher)
    shared = dict(layers=args.layers, temperature=args.temperature, alpha=args.alpha, epochs=args.epochs,
                  batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                  patience=args.patience, verbose=verbosity())  # fmt: skip
    if isinstance(teacher, IntentModel):
        class_weight = None if args.class_weight == "none" else args.class_weight
        student, _ = distill_intent(
            teacher, args.train, args.valid, folder, class_weight=class_weight, **shared
        )
    elif isinstance(teacher, ReplyModel):
        max_turns = run_setting(args.teacher, "max_turns", 3)
        student, _ = distill_reply(teacher, args.train, args.valid, folder, max_turns=max_turns, **shared)
    else:
        raise ConfigError(
            f"{args.teacher}: distill takes an intent or a reply model, not {type(teacher).__name__}"
        )
    print(f"student: {folder / 'model.keras'} ({student.backbone.num_layers} of the teacher's "
          f"{teacher.backbone.num_layers} layers; {student.count_params():,} parameters against "
          f"{teacher.count_params():,})")  # fmt: skip
    if isinstance(student, IntentModel):
        evaluate_intent(student, args.valid, folder, "valid", as_json=False)


def intent(args) -> None:
    folder = run_dir(args, "intent")
    evaluate_intent(train_intent(args, folder), args.valid, folder, "valid", as_json=False)


def purchase(args) -> None:
    from ecomrec_tf.training import train_purchase

    folder = run_dir(args, "purchase")
    print(f"TensorBoard: tensorboard --logdir {folder.parent}")
    _, result = train_purchase(
        args.items,
        args.events,
        folder,
        valid_events=args.valid_events,
        test_events=args.test_events,
        encoder=args.encoder,
        mode=args.mode,
        parts=parts(args.parts),
        item_features=args.item_features,
        fusion=args.fusion,
        id_l2=args.id_l2,
        catalog_negatives=args.catalog_negatives,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        history_size=args.history_size,
        intent_model=args.intent_model,
        seed=args.seed,
        patience=args.patience,
        until=args.until,
        verbose=verbosity(),
    )
    print_purchase_result(result, args.json)
    print(f"model: {folder / 'model.keras'}")
    print(f"plots: {folder / 'test_roc.png'}, {folder / 'test_reliability.png'}")


def parts(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip() and part.strip() != "text")
    unknown = set(chosen) - {"ids", "counts"}
    if unknown:
        raise ConfigError(f"--parts {value!r}: unknown {sorted(unknown)}; use ids, counts or text")
    return chosen


def reply(args) -> None:
    from ecomrec_tf.evaluation.reply import evaluate_reply
    from ecomrec_tf.training.reply import train_reply

    folder = run_dir(args, "reply")
    print(f"TensorBoard: tensorboard --logdir {folder.parent}")
    max_turns = args.max_turns or 3
    model, _ = train_reply(
        args.train,
        args.valid,
        folder,
        encoder=args.encoder,
        bank_file=args.bank,
        items_file=args.items,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        sequence_length=args.sequence_length,
        train_top_layers=args.train_top_layers,
        threshold=args.threshold,
        decoder_layers=args.decoder_layers,
        decoder_learning_rate=args.decoder_learning_rate,
        decoding=args.decoding,
        intent_model=args.intent_model,
        intent_weight=args.intent_weight,
        intent_filter=args.intent_filter,
        max_turns=max_turns,
        patience=args.patience,
        seed=args.seed,
        verbose=verbosity(),
    )
    result = evaluate_reply(
        model, args.test or args.valid, args.train, folder, max_turns=max_turns, zero_shot=args.encoder
    )
    print_reply_result(result, args.json)
    print(f"model: {folder / 'model.keras'}")


def config(args) -> None:
    if not args.config:
        raise ConfigError("give a run config (train --config FILE) or a model to train (train intent ...)")
    from ecomrec_tf.training.config import load_config
    from ecomrec_tf.training.run import run

    loaded = load_config(args.config)
    folder = run_dir(args, Path(args.config).stem)
    print(f"run folder: {folder}   TensorBoard: tensorboard --logdir {folder.parent}")
    history = run(loaded, folder, verbose=1 if verbosity() == "auto" else 2)
    last = {key: round(values[-1], 4) for key, values in history.items()}
    print(json.dumps({"run": str(folder), "last_epoch": last}, indent=2))


def tune_intent(args) -> None:
    from ecomrec_tf.training.tuning import tune_intent

    best = tune_intent(
        args.train, args.valid, args.out, encoder=args.encoder, max_trials=args.trials, epochs=args.epochs,
        seed=args.seed,
    )  # fmt: skip
    print(json.dumps(best, indent=2))


def update_purchase(args) -> None:
    from ecomrec_tf.training import update_purchase

    model_path = Path(args.model)
    model_file = model_path / "model.keras" if model_path.is_dir() else model_path
    folder = run_dir(args, "purchase-update")
    _, result = update_purchase(
        model_file, args.items, args.events, args.since, folder, replay=args.replay, epochs=args.epochs,
        verbose=verbosity(),
    )  # fmt: skip
    result["model_file"] = str(folder / "model.keras")
    print(json.dumps(result, indent=2) if args.json else update_table(result) + f"\nmodel: {folder}")


def update_table(result: dict) -> str:
    lines = [
        f"{result['new_examples']} new examples, {result['replayed_examples']} replayed old ones",
        f"{'AUC':<8}{'old period':>12}{'new period':>12}",
    ]
    for when in ("before", "after"):
        old, new = result[when]["old_period"]["auc"], result[when]["new_period"]["auc"]
        lines.append(f"{when:<8}{old:>12.4f}{new:>12.4f}")
    return "\n".join(lines)


def add_intent_options(parser, **defaults) -> None:
    """What intent training takes (`train intent`, `quickstart`), with `defaults` over `INTENT`'s."""
    add(parser, "encoder")
    add_run_options(parser, INTENT | defaults, "macro-F1", "max tokens per text, longer is cut")
    add(parser, "class_weight", "train_top_layers", "lora_rank", "layer_decay", "precision",
        train_top_layers={"default": defaults.get("train_top_layers", "all")})  # fmt: skip


def register(commands) -> None:
    parser = commands.add_parser(
        "train",
        formatter_class=HelpFormatter,
        help="train from a run config (train --config FILE), or one model (train intent ...)",
    )
    parser.add_argument("--config", help="TOML or YAML run config; see docs/training.md")
    add_run_folder(parser)
    parser.set_defaults(func=config)
    group = subcommands(parser, "what", required=False)

    parser = command(group, "intent", "fine-tune an intent model on {text, label} JSONL/CSV", intent)
    add(parser, "train", "valid")
    add_intent_options(parser)

    parser = command(
        group,
        "distill",
        "train a smaller student of a trained intent or reply model on its soft targets",
        distill,
    )
    parser.add_argument("--teacher", required=True, help="the trained intent or reply model (.keras or run)")
    add(parser, "train", "valid", train={"help": "training file: {text, label} for an intent teacher, "
        "{context, reply} dialogues for a reply teacher"})  # fmt: skip
    parser.add_argument(
        "--layers", type=int, default=2, help="the student's transformer layers, copied from the teacher's"
    )
    parser.add_argument(
        "--temperature", type=float, default=2.0, help="softens both models' distributions in the KL term"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="weight of the soft (teacher) loss; 1 - alpha: the labels'"
    )
    add_run_options(parser, INTENT, "macro-F1 (reply: MRR)", None)  # the student reads the teacher's tokens
    add(
        parser,
        "class_weight",
        class_weight={"help": "intent teachers: 'balanced' weighs every class the same"},
    )

    parser = command(
        group, "purchase", "train P(purchase) on items + events files, beside baselines", purchase
    )
    add(parser, "items", "events")
    parser.add_argument(
        "--valid-events",
        default=None,
        help="a later events file to validate on (early stopping, calibration): every view in it is "
        "scored with histories and counts from all earlier events; default: the last 10%% of --events",
    )
    parser.add_argument(
        "--test-events",
        default=None,
        help="a still later events file to test on, scored the same way; default: the last 10%% of "
        "--events (or none with --valid-events)",
    )
    parser.add_argument("--mode", choices=["attention", "two_tower"], default="attention", help="the scorer")
    parser.add_argument(
        "--parts",
        default="ids,counts",
        help="what the model reads besides item texts, query and price: 'ids,counts', 'ids', 'counts' or "
        "'text' (texts only)",
    )
    parser.add_argument(
        "--item-features",
        choices=["auto", "none"],
        default="auto",
        help="'auto': fuse the image vectors and attributes the items file has with the item texts; "
        "'none': texts only",
    )
    parser.add_argument(
        "--fusion", choices=["concat", "gated"], default="concat", help="how item features join the text"
    )
    parser.add_argument(
        "--id-l2",
        type=float,
        default=PURCHASE["id_l2"],
        help="activity L2 on the id embeddings (ids memorise)",
    )
    parser.add_argument(
        "--history-size", type=int, default=PURCHASE["history_size"], help="most recent items per user"
    )
    parser.add_argument(
        "--catalog-negatives",
        type=int,
        default=PURCHASE["catalog_negatives"],
        help="random never-touched items per purchase added as training negatives (never in the metrics)",
    )
    parser.add_argument(
        "--until",
        type=int,
        default=None,
        help="Unix time: use only earlier examples (then `update purchase`)",
    )
    add(
        parser,
        "intent_model",
        "json",
        "encoder",
        intent_model={"help": "intent model.keras: adds the query's intent"},
    )
    add_run_options(parser, PURCHASE, "AUC", "max tokens per item text")

    parser = command(
        group, "reply", "train the reply model (retrieval + generation) on {context, reply}", reply
    )
    add(parser, "train", "valid")
    parser.add_argument("--test", default=None, help="evaluate on this file; default: --valid")
    parser.add_argument(
        "--bank",
        default=None,
        help="vetted replies {text, intent?} to answer from, or 'embedded' (the generated shop's); "
        "default: the training file's own replies, order numbers (and --items' products) as slots",
    )
    add(parser, "items", items={"required": False, "default": None, "help": "items whose names become slots"})
    parser.add_argument("--threshold", type=float, default=0.3, help="below: hand over to a person")
    add(parser, "max_turns", max_turns={"help": "the context: this many last turns (3)"})
    parser.add_argument(
        "--decoder-layers", type=int, default=2, help="decoder blocks for generation (0: none)"
    )
    parser.add_argument(
        "--decoder-learning-rate", type=float, default=1e-3, help="peak rate of the decoder (from scratch)"
    )
    parser.add_argument(
        "--decoding", choices=SEARCHES, default="beam", help="the generate signature's search"
    )
    add(parser, "intent_model")
    parser.add_argument("--intent-weight", type=float, default=0.1, help="score boost x P(reply's intent)")
    parser.add_argument(
        "--intent-filter", type=float, default=0.0, help="skip replies whose intent has a lower probability"
    )
    add(
        parser, "json", "encoder", "train_top_layers", train_top_layers={"default": REPLY["train_top_layers"]}
    )
    add_run_options(
        parser, REPLY, "MRR (the untrained encoder when no epoch beats it)", "max tokens of a context"
    )

    group = subcommands(
        commands.add_parser(
            "tune", formatter_class=HelpFormatter, help="hyper-parameter search (KerasTuner)"
        ),
        "what",
    )
    parser = command(
        group, "intent", "search learning rate, batch size, dropout, trained layers", tune_intent
    )
    add(parser, "train", "valid", "encoder", "seed")
    parser.add_argument("--trials", type=int, default=8, help="trials of the random search")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    add(
        parser,
        "out",
        out={"required": False, "default": "runs/tune-intent", "help": "trials, logs, best.json"},
    )

    group = subcommands(
        commands.add_parser(
            "update", formatter_class=HelpFormatter, help="fine-tune a trained model on new data"
        ),
        "what",
    )
    parser = command(
        group, "purchase", "fine-tune on events from --since on, replaying older ones; shows both periods",
        update_purchase,
    )  # fmt: skip
    add(parser, "model", "items", "events", events={"help": "old and new events"})
    parser.add_argument("--since", type=int, required=True, help="Unix time where new events start")
    parser.add_argument("--replay", type=float, default=1.0, help="old examples per new example")
    parser.add_argument("--epochs", type=int, default=2, help="epochs over the new examples")
    add(parser, "json")
    add_run_folder(parser)
