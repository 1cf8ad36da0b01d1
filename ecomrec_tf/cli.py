"""`ecomrec-tf`: train, evaluate, export and serve the models from the command line."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import ecomrec_tf  # noqa: F401  (quiet TensorFlow start-up before anything imports it)
from ecomrec_tf.defaults import INTENT, PURCHASE, REPLY
from ecomrec_tf.errors import ConfigError

EXAMPLE_QUERIES = [
    "where is my parcel?? ordered it last tuesday",
    "do u have nike air max in size 10.5",
    "my card got charged 2 times for one order",
    "the headphones i got are broken, want my money back",
    "Can I speak with someone please",
]
SEARCHES = ("greedy", "beam", "top_k")  # models.reply_model.DECODINGS, without importing TensorFlow
TF_ONLY_SCRIPT = Path(__file__).parent / "serving" / "tf_only.py"


FINISHED = ("model.keras", "reply_model.keras", "encoder")  # what a finished run leaves (training.*)


def _run_dir(args, kind: str) -> Path:
    """The run folder: a new one, or one to resume; a finished run is trained again only with
    `--overwrite` (its folder is emptied first), never silently."""
    name = args.run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(args.runs_dir) / name
    finished = [name for name in FINISHED if (run_dir / name).exists()]
    if finished:
        if not getattr(args, "overwrite", False):
            raise ConfigError(
                f"{run_dir}: a finished run (it holds {finished[0]}); choose another --run-name, or "
                "pass --overwrite to train it again from scratch"
            )
        shutil.rmtree(run_dir)
    return run_dir


def _load_model(path: str):
    import keras

    import ecomrec_tf.models  # noqa: F401  (registers the model classes for loading)

    path = Path(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (expected a .keras file or a run folder)")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: not a .keras model file (expected a .keras file or a run folder)")
    try:
        return keras.models.load_model(path)  # safe mode: no Python code from the file runs
    except ValueError as error:
        reason = str(error).split(". ")[0]  # Keras's first sentence: what it refused
        raise ConfigError(f"{path}: cannot load the model: {reason} (load only trusted models)") from None


def cmd_data_intents(args) -> None:
    from ecomrec_tf.data import write_intent_data

    paths = write_intent_data(
        args.out, seed=args.seed, train_per_intent=args.train_per_intent, eval_per_intent=args.eval_per_intent
    )
    for split, path in paths.items():
        print(f"{split:>5}: {path} ({sum(1 for _ in path.open(encoding='utf-8'))} utterances)")


def cmd_data_generate(args) -> None:
    from ecomrec_tf.data.shop import ShopConfig, generate_shop

    config = ShopConfig(users=args.users, seed=args.seed)
    summary = generate_shop(args.out, config)
    events = sum(summary["events"].values())
    print(f"wrote {args.out}: {summary['items']} items, {events} events, ", end="")
    print(f"{summary['dialogues']} dialogues, the intent set")
    print(f"oracle AUC of the true purchase probabilities (views): {summary['oracle_auc_views']:.4f}")


def cmd_data_describe(args) -> None:
    from ecomrec_tf.data.shop import describe_shop

    if not Path(args.dir).is_dir():
        raise FileNotFoundError(f"{args.dir}: no such folder")
    print(json.dumps(describe_shop(args.dir), indent=2, ensure_ascii=False))


def _train(args, run_dir: Path):
    from ecomrec_tf.training import train_intent

    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    model, history = train_intent(
        args.train,
        args.valid,
        run_dir,
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
    )
    print(f"model: {run_dir / 'model.keras'}  ({history['examples_per_second'][0]:.1f} training examples/s)")
    return model


def _evaluate(model, data: str, out_dir: Path, name: str, as_json: bool) -> dict:
    from ecomrec_tf.evaluation import format_report
    from ecomrec_tf.evaluation.intent import evaluate_intent

    result = evaluate_intent(model, data, out_dir, name=name)
    if as_json:
        print(json.dumps({k: v for k, v in result.items() if k != "confusion_matrix"}, indent=2))
    else:
        print(format_report(result))
        print(f"confusion matrix: {out_dir / f'{name}_confusion_matrix.png'}")
    return result


def cmd_train_intent(args) -> None:
    run_dir = _run_dir(args, "intent")
    model = _train(args, run_dir)
    _evaluate(model, args.valid, run_dir, "valid", as_json=False)


def cmd_evaluate_intent(args) -> None:
    model = _load_model(args.model)
    model_path = Path(args.model)
    out_dir = Path(args.out_dir or (model_path if model_path.is_dir() else model_path.parent))
    _evaluate(model, args.data, out_dir, args.name, args.json)


def _print_table(rows: dict[str, dict], columns: list[str]) -> None:
    """One line per named row of metrics, one column per metric ("-" where a row has none)."""
    width = max(len(name) for name in rows) + 2
    print(" " * width + "".join(f"{c:>10}" for c in columns))
    for name, metrics in rows.items():
        print(
            f"{name:<{width}}"
            + "".join(f"{metrics[c]:>10.4f}" if c in metrics else f"{'-':>10}" for c in columns)
        )


def _print_purchase_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    columns = ["auc", "log_loss", "ece", "ndcg@10", "recall@10", "mrr"]
    print(
        f"{result['split']} split: {result['model']['examples']} examples, "
        f"{result['model']['ranked_sessions']} sessions with a purchase and a non-purchase"
    )
    scored = {name: row for name, row in result.items() if isinstance(row, dict) and "auc" in row}
    _print_table(scored, columns)
    for name, rows in result["cold_start"].items():
        if "model" not in rows:
            print(f"\n{name}: {rows['examples']} examples (none with both labels to score)")
            continue
        what = name.removeprefix("new_").removesuffix("s")
        print(f"\n{name}: {rows['model']['examples']} examples whose {what} the train split never shows")
        _print_table(rows, ["auc", "log_loss"])
    if "with_catalog_negatives" in result:
        print("\nwith catalog negatives (easy random items; a training device, not a user's metric):")
        _print_table(result["with_catalog_negatives"], ["auc", "log_loss"])
    if "gap_closed" in result:
        print(
            f"share of the AUC gap from logistic regression to the oracle closed: {result['gap_closed']:.2f}"
        )


def cmd_train_purchase(args) -> None:
    from ecomrec_tf.training import train_purchase

    run_dir = _run_dir(args, "purchase")
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    _, result = train_purchase(
        args.items,
        args.events,
        run_dir,
        valid_events=args.valid_events,
        test_events=args.test_events,
        encoder=args.encoder,
        mode=args.mode,
        parts=_parts(args.parts),
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
    )
    _print_purchase_result(result, args.json)
    print(f"model: {run_dir / 'model.keras'}")
    print(f"plots: {run_dir / 'test_roc.png'}, {run_dir / 'test_reliability.png'}")


def _parts(value: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in value.split(",") if part.strip() and part.strip() != "text")
    unknown = set(parts) - {"ids", "counts"}
    if unknown:
        raise ConfigError(f"--parts {value!r}: unknown {sorted(unknown)}; use ids, counts or text")
    return parts


def cmd_evaluate_purchase(args) -> None:
    from ecomrec_tf.data.purchase_data import read_purchase_data
    from ecomrec_tf.evaluation.purchase import evaluate_purchase

    model = _load_model(args.model)
    model_path = Path(args.model)
    out_dir = Path(args.out_dir or (model_path if model_path.is_dir() else model_path.parent))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".examples-", dir=out_dir) as work_dir:  # bounded memory
        data = read_purchase_data(
            args.items,
            args.events,
            history_events=args.history_events or (),
            catalog_negatives=args.catalog_negatives,
            work_dir=work_dir,
        )
        split = "test" if args.history_events else args.split
        _print_purchase_result(evaluate_purchase(model, data, out_dir, split), args.json)


def cmd_update_purchase(args) -> None:
    from ecomrec_tf.training import update_purchase

    model_path = Path(args.model)
    model_file = model_path / "model.keras" if model_path.is_dir() else model_path
    run_dir = _run_dir(args, "purchase-update")
    _, result = update_purchase(
        model_file, args.items, args.events, args.since, run_dir, replay=args.replay, epochs=args.epochs
    )
    result["model_file"] = str(run_dir / "model.keras")
    print(json.dumps(result, indent=2) if args.json else _update_table(result) + f"\nmodel: {run_dir}")


def _update_table(result: dict) -> str:
    lines = [
        f"{result['new_examples']} new examples, {result['replayed_examples']} replayed old ones",
        f"{'AUC':<8}{'old period':>12}{'new period':>12}",
    ]
    for when in ("before", "after"):
        old, new = result[when]["old_period"]["auc"], result[when]["new_period"]["auc"]
        lines.append(f"{when:<8}{old:>12.4f}{new:>12.4f}")
    return "\n".join(lines)


def cmd_data_split(args) -> None:
    from ecomrec_tf.data.readers import split_file

    group_by = None if args.group_by == "none" else args.group_by
    for split, path in split_file(args.input, args.out, args.valid, args.test, args.seed, group_by).items():
        print(f"{split:>5}: {path} ({sum(1 for _ in path.open(encoding='utf-8'))} records)")


def _print_reply_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    columns = ["recall@1", "recall@5", "mrr", "bleu", "rouge_l", "fallback_rate"]
    candidates = result["dual_encoder"]["candidates"]
    print(f"{result['dialogues']} dialogues, each reference ranked among {candidates} candidate replies")
    rows = {name: result[name] for name in ("dual_encoder", "zero_shot", "tfidf", "bm25") if name in result}
    if "generated" in result:
        rows[f"generated ({result['generated']['decoding']})"] = result["generated"]
    _print_table(rows, columns)
    for example in result["examples"]:
        print(
            f"\n  context:   {example['context']}\n  reply:     {example['reply']}  ({example['score']:.2f})"
        )
        if "generated" in example:
            print(f"  generated: {example['generated']}")
        print(f"  reference: {example['reference']}")


def cmd_train_reply(args) -> None:
    from ecomrec_tf.evaluation.reply import evaluate_reply
    from ecomrec_tf.training.reply import train_reply

    run_dir = _run_dir(args, "reply")
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    model, _ = train_reply(
        args.train,
        args.valid,
        run_dir,
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
        max_turns=args.max_turns,
        patience=args.patience,
        seed=args.seed,
    )
    test = args.test or args.valid
    result = evaluate_reply(
        model, test, args.train, run_dir, max_turns=args.max_turns, zero_shot=args.encoder
    )
    _print_reply_result(result, args.json)
    print(f"model: {run_dir / 'model.keras'}")


def cmd_evaluate_reply(args) -> None:
    from ecomrec_tf.evaluation.reply import evaluate_reply

    model = _load_model(args.model)
    model_path = Path(args.model)
    out_dir = Path(args.out_dir or (model_path if model_path.is_dir() else model_path.parent))
    zero_shot = None if args.zero_shot == "none" else args.zero_shot
    if zero_shot == "auto":  # the encoder the run started from
        config = (model_path if model_path.is_dir() else model_path.parent) / "config.json"
        zero_shot = json.loads(config.read_text()).get("encoder", "minilm-l6") if config.is_file() else None
    result = evaluate_reply(
        model,
        args.data,
        args.train,
        out_dir,
        max_turns=args.max_turns,
        decoding=args.decoding,
        zero_shot=zero_shot,
    )
    _print_reply_result(result, args.json)


def _export(
    model, base_dir: str, name: str, version: int | None, metadata: dict, keep: int | None = None
) -> Path:
    from ecomrec_tf.export import export_saved_model, write_models_config

    path = export_saved_model(model, Path(base_dir) / name, version=version, metadata=metadata, keep=keep)
    print(f"exported: {path} (with TF Serving warm-up requests)")
    print(f"TF Serving config: {write_models_config(base_dir)}")
    return path


def _load_models(specs: list[str]):
    """One `--model PATH`: that model. Several `--model HEAD=PATH`: a `ShopAssistant` of them, the
    first head answering `serving_default`."""
    from ecomrec_tf.export import ExportError
    from ecomrec_tf.models import ShopAssistant

    if len(specs) == 1 and "=" not in specs[0]:
        return _load_model(specs[0])
    heads = {}
    for spec in specs:
        head, sep, path = spec.partition("=")
        if not sep or not head or not path:
            raise ExportError(f"--model {spec!r}: with several models, name each head: HEAD=PATH")
        if head in heads:
            raise ExportError(f"--model {spec!r}: head {head!r} given twice")
        heads[head] = _load_model(path)
    return ShopAssistant(heads)


def cmd_export(args) -> None:
    model = _load_models(args.model)
    _export(model, args.base_dir, args.name, args.version, {"source": args.model}, args.keep)


def cmd_check_export(args) -> None:
    from ecomrec_tf.serving.check_export import check_export

    model = _load_models(args.model) if args.model else None
    for line in check_export(args.path, model):
        print(f"ok  {line}")


def tf_only_predict(saved_model: Path, texts: list[str]) -> list[dict]:
    """Predictions from a SavedModel in a fresh process with only TensorFlow (and TF Text ops)."""
    result = subprocess.run(
        [sys.executable, str(TF_ONLY_SCRIPT), "predict", str(saved_model), *texts],
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if result.returncode != 0:
        raise RuntimeError(f"loading {saved_model} in a fresh process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["outputs"]


def _print_predictions(texts: list[str], rows: list[dict]) -> None:
    for text, row in zip(texts, rows):
        label = row.get("label")
        confidence = max(row["probabilities"]) if "probabilities" in row else None
        label = label.decode() if isinstance(label, bytes) else label
        print(f"  {label:<24} {confidence:6.3f}  {text!r}")


def _resolve_saved_model(path: Path) -> Path | None:
    from ecomrec_tf.export import versions

    if (path / "saved_model.pb").is_file():
        return path
    published = versions(path)
    return path / str(published[-1]) if published else None


def cmd_predict(args) -> None:
    texts = args.text
    if not texts:
        if sys.stdin.isatty():
            raise ConfigError("no texts: give them as arguments, or pipe one per line (predict ... <file)")
        texts = [line.rstrip("\n") for line in sys.stdin]
        if not texts:
            raise ConfigError("no texts: the input on stdin is empty")
    path = Path(args.model)
    saved_model = _resolve_saved_model(path) if path.is_dir() else None
    if saved_model is not None:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

        serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
        outputs = {k: v.numpy() for k, v in serve(text=tf.constant(texts)).items()}
        rows = [
            {"label": outputs["label"][i].decode(), "probabilities": outputs["probabilities"][i].tolist()}
            for i in range(len(texts))
        ]
    else:
        model = _load_model(args.model)
        probabilities = model.predict(texts, verbose=0)["probabilities"]
        rows = [{"label": model.labels[int(p.argmax())], "probabilities": p.tolist()} for p in probabilities]
    if args.json:
        print(
            json.dumps(
                [
                    {"text": t, "label": r["label"], "confidence": max(r["probabilities"])}
                    for t, r in zip(texts, rows)
                ],
                ensure_ascii=False,
            )
        )
    else:
        _print_predictions(texts, rows)


def cmd_train_config(args) -> None:
    if not args.config:
        raise ConfigError("give a run config (train --config FILE) or a model to train (train intent ...)")
    from ecomrec_tf.training.config import load_config
    from ecomrec_tf.training.run import run

    config = load_config(args.config)
    run_dir = _run_dir(args, Path(args.config).stem)
    print(f"run folder: {run_dir}   TensorBoard: tensorboard --logdir {run_dir.parent}")
    history = run(config, run_dir)
    last = {key: round(values[-1], 4) for key, values in history.items()}
    print(json.dumps({"run": str(run_dir), "last_epoch": last}, indent=2))


def cmd_tune_intent(args) -> None:
    from ecomrec_tf.training.tuning import tune_intent

    best = tune_intent(
        args.train,
        args.valid,
        args.out,
        encoder=args.encoder,
        max_trials=args.trials,
        epochs=args.epochs,
        seed=args.seed,
    )
    print(json.dumps(best, indent=2))


def cmd_quickstart(args) -> None:
    start = time.perf_counter()
    run_dir = _run_dir(args, "quickstart")
    data_dir = run_dir / "data"
    print(f"[1/5] generating the embedded shop ({args.users} users, seed {args.seed}) -> {data_dir}")
    args.out = data_dir
    cmd_data_generate(args)
    args.train, args.valid = (
        str(data_dir / "intents" / "train.jsonl"),
        str(data_dir / "intents" / "valid.jsonl"),
    )
    print(f"[2/5] fine-tuning encoder '{args.encoder}' for {args.epochs} epochs -> {run_dir}")
    model = _train(args, run_dir)
    print("[3/5] evaluating on the test split (templates and slot values unseen in training)")
    result = _evaluate(model, str(data_dir / "intents" / "test.jsonl"), run_dir, "test", as_json=False)
    print("[4/5] exporting the SavedModel for TF Serving")
    saved_model = _export(
        model,
        args.base_dir,
        "intent",
        None,
        {"encoder": args.encoder, "test_accuracy": result["accuracy"], "run": str(run_dir)},
    )
    print("[5/5] reloading the SavedModel in a fresh process (TensorFlow + TF Text ops only) and predicting")
    _print_predictions(EXAMPLE_QUERIES, tf_only_predict(saved_model, EXAMPLE_QUERIES))
    print(
        f"\ntest accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}; "
        f"wall time {time.perf_counter() - start:.0f} s"
    )
    print(f"run folder: {run_dir}   SavedModel: {saved_model}")
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")


def _optional_int(value: str) -> int | None:
    return None if value in ("none", "auto", "all") else int(value)


def _add_run_options(parser: argparse.ArgumentParser, defaults: dict, monitor: str, sequence: str) -> None:
    """The options every `train` command shares: schedule, early stopping, seed and run folder."""
    schedule = (
        ("--epochs", int, "most epochs"),
        ("--batch-size", int, "examples per step"),
        ("--learning-rate", float, "peak learning rate (AdamW, warm-up, decay)"),
    )
    for option, kind, help_ in schedule:
        default = defaults[option[2:].replace("-", "_")]
        parser.add_argument(option, type=kind, default=default, help=f"{help_}; default {default}")
    length = defaults.get("sequence_length")
    parser.add_argument(
        "--sequence-length",
        type=int if length else _optional_int,  # None: fitted to the training texts
        default=length,
        help=f"{sequence}; default {length or 'auto (the training texts 95th percentile of token lengths)'}",
    )
    patience = defaults["patience"]
    parser.add_argument(
        "--patience",
        type=_optional_int,
        default=patience,
        help=f"stop after this many epochs without a better validation {monitor}, keeping the best "
        f"('none': train every epoch); default {patience}",
    )
    parser.add_argument("--seed", type=int, default=0, help="data order, initialisation, dropout; default 0")
    _add_run_folder_options(parser)


def _add_run_folder_options(parser: argparse.ArgumentParser) -> None:
    """Where a run goes (`_run_dir`): the options of every command that trains."""
    parser.add_argument("--runs-dir", default="runs", help="TensorBoard logs and run outputs go here")
    parser.add_argument("--run-name", default=None, help="folder under --runs-dir; reuse it to resume")
    parser.add_argument("--overwrite", action="store_true", help="train a finished --run-name again")


def _add_training_options(parser: argparse.ArgumentParser, top_layers: int | None = None, **overrides):
    parser.add_argument("--encoder", default="minilm-l6", help="minilm-l6, tiny, small, or a HF BERT folder")
    _add_run_options(parser, INTENT | overrides, "macro-F1", "max tokens per text, longer is cut")
    parser.add_argument(
        "--class-weight",
        choices=["balanced", "none"],
        default=INTENT["class_weight"],
        help="'balanced' weighs every class the same in the loss (skewed labels); default balanced",
    )
    parser.add_argument(
        "--train-top-layers",
        type=lambda value: None if value == "all" else int(value),
        default=top_layers,
        help="fine-tune only the top K encoder layers (0: encoder frozen), or 'all'; default: "
        + str(top_layers or "all"),
    )
    parser.add_argument("--lora-rank", type=int, default=None, help="train LoRA factors of this rank instead")
    parser.add_argument("--layer-decay", type=float, default=1.0, help="layer-wise learning-rate decay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecomrec-tf", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser("quickstart", help="generate data, train, evaluate, export, reload, predict")
    # Measured on the default data: training MiniLM's top 3 of 6 layers generalises better to unseen
    # phrasings than full fine-tuning, and accuracy on unseen phrasings still rises in the 4th epoch
    # (validation loss does not show it, so no early stopping by default).
    _add_training_options(quick, top_layers=3, epochs=4, patience=None, sequence_length=64)
    quick.add_argument(
        "--base-dir", default="saved_models", help="SavedModels go to BASE_DIR/intent/<version>"
    )
    quick.add_argument("--users", type=int, default=1000, help="users of the generated shop")
    quick.set_defaults(func=cmd_quickstart)

    data = commands.add_parser("data", help="embedded default data").add_subparsers(
        dest="what", required=True
    )
    intents = data.add_parser("intents", help="write the intent set as train/valid/test JSONL")
    intents.add_argument("--out", required=True)
    intents.add_argument("--seed", type=int, default=0)
    intents.add_argument("--train-per-intent", type=int, default=200)
    intents.add_argument("--eval-per-intent", type=int, default=60)
    intents.set_defaults(func=cmd_data_intents)
    generate = data.add_parser(
        "generate", help="write a whole synthetic shop: items, events, dialogues, intents"
    )
    generate.add_argument("--out", required=True)
    generate.add_argument("--users", type=int, default=2000)
    generate.add_argument("--seed", type=int, default=0)
    generate.set_defaults(func=cmd_data_generate)
    split = data.add_parser(
        "split", help="shuffle a JSONL file into train/valid/test (e.g. dialogues), grouped: no answer in two"
    )
    split.add_argument("--in", dest="input", required=True)
    split.add_argument("--out", required=True)
    split.add_argument("--valid", type=float, default=0.1)
    split.add_argument("--test", type=float, default=0.1)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument(
        "--group-by",
        default="auto",
        help="records sharing this field's value stay in one split ('auto': dialogues by their reply, "
        "digits masked, so no test answer is a training answer; 'none': record by record)",
    )
    split.set_defaults(func=cmd_data_split)
    describe = data.add_parser("describe", help="counts and distributions of a shop folder")
    describe.add_argument("dir")
    describe.set_defaults(func=cmd_data_describe)

    train_parser = commands.add_parser(
        "train", help="train from a run config (train --config FILE), or an intent model (train intent ...)"
    )
    train_parser.add_argument("--config", help="TOML or YAML run config; see README 'Training runs'")
    _add_run_folder_options(train_parser)
    train_parser.set_defaults(func=cmd_train_config)
    train = train_parser.add_subparsers(dest="what")
    train_intent = train.add_parser("intent", help="fine-tune an intent model on {text,label} JSONL/CSV")
    train_intent.add_argument("--train", required=True)
    train_intent.add_argument("--valid", required=True)
    _add_training_options(train_intent)
    train_intent.set_defaults(func=cmd_train_intent)
    train_purchase = train.add_parser(
        "purchase", help="train P(purchase) on items + events files (time-based split), with baselines"
    )
    train_purchase.add_argument(
        "--items", required=True, help="items JSONL/CSV {item_id, title, category, ...}"
    )
    train_purchase.add_argument("--events", required=True, help="events JSONL/CSV {user_id, item_id, ...}")
    train_purchase.add_argument(
        "--valid-events",
        default=None,
        help="a later events file to validate on (early stopping, calibration): every view in it is "
        "scored with histories and counts from all earlier events; default: the last 10%% of --events",
    )
    train_purchase.add_argument(
        "--test-events",
        default=None,
        help="a still later events file to test on, scored the same way; default: the last 10%% of "
        "--events (or none with --valid-events)",
    )
    train_purchase.add_argument("--mode", choices=["attention", "two_tower"], default="attention")
    train_purchase.add_argument(
        "--parts",
        default="ids,counts",
        help="what the model reads besides item texts, query and price: 'ids,counts' (default), "
        "'ids', 'counts' or 'text' (texts only)",
    )
    train_purchase.add_argument(
        "--id-l2",
        type=float,
        default=PURCHASE["id_l2"],
        help=f"activity L2 on the id embeddings (weaker: ids memorise users); default {PURCHASE['id_l2']}",
    )
    train_purchase.add_argument(
        "--history-size", type=int, default=PURCHASE["history_size"], help="most recent items per user"
    )
    train_purchase.add_argument(
        "--catalog-negatives",
        type=int,
        default=PURCHASE["catalog_negatives"],
        help="random never-touched items per purchase added as training negatives (reported apart, "
        "never in the main metrics); default 0",
    )
    train_purchase.add_argument(
        "--intent-model", default=None, help="intent model.keras: adds the query intent"
    )
    train_purchase.add_argument("--json", action="store_true", help="print metrics as JSON")
    train_purchase.add_argument("--encoder", default="minilm-l6", help="frozen text encoder (as for intent)")
    _add_run_options(train_purchase, PURCHASE, "AUC", "max tokens per item text")
    train_purchase.add_argument(
        "--until",
        type=int,
        default=None,
        help="Unix time: use only earlier examples (then `update purchase`)",
    )
    train_purchase.set_defaults(func=cmd_train_purchase)

    tune = commands.add_parser("tune", help="hyper-parameter search (KerasTuner)").add_subparsers(
        dest="what", required=True
    )
    tune_intent = tune.add_parser("intent", help="search learning rate, batch size, dropout, trained layers")
    tune_intent.add_argument("--train", required=True)
    tune_intent.add_argument("--valid", required=True)
    tune_intent.add_argument("--encoder", default="minilm-l6")
    tune_intent.add_argument("--trials", type=int, default=8)
    tune_intent.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    tune_intent.add_argument("--out", default="runs/tune-intent", help="trials, logs and best.json")
    tune_intent.add_argument("--seed", type=int, default=0)
    tune_intent.set_defaults(func=cmd_tune_intent)

    train_reply = train.add_parser(
        "reply", help="train the reply model (retrieval + generation) on {context, reply} JSONL"
    )
    train_reply.add_argument("--train", required=True)
    train_reply.add_argument("--valid", required=True)
    train_reply.add_argument("--test", default=None, help="evaluate on this file (default: --valid)")
    train_reply.add_argument(
        "--bank",
        default=None,
        help="vetted replies {text, intent?} to answer from, or 'embedded' (the generated shop's); "
        "default: the training file's own replies, order numbers (and --items' products) as slots",
    )
    train_reply.add_argument(
        "--items", default=None, help="items file whose product names and categories become slots"
    )
    train_reply.add_argument("--threshold", type=float, default=0.3, help="below: hand over to a person")
    train_reply.add_argument("--max-turns", type=int, default=3, help="the context: this many last turns")
    train_reply.add_argument(
        "--decoder-layers", type=int, default=2, help="Transformer decoder blocks for generation (0: none)"
    )
    train_reply.add_argument(
        "--decoder-learning-rate", type=float, default=1e-3, help="peak rate of the decoder (from scratch)"
    )
    train_reply.add_argument("--decoding", choices=SEARCHES, default="beam", help="the generate signature's")
    train_reply.add_argument("--intent-model", default=None, help="a trained intent model.keras")
    train_reply.add_argument(
        "--intent-weight", type=float, default=0.1, help="score boost x P(reply's intent)"
    )
    train_reply.add_argument(
        "--intent-filter", type=float, default=0.0, help="skip replies whose intent has a lower probability"
    )
    train_reply.add_argument("--json", action="store_true")
    train_reply.add_argument(
        "--encoder", default="minilm-l6", help="minilm-l6, tiny, small, or a HF BERT folder"
    )
    _add_run_options(train_reply, REPLY, "MRR (the untrained encoder when no epoch beats it)",
                     "max tokens of a context")  # fmt: skip
    train_reply.add_argument(
        "--train-top-layers",
        type=_optional_int,
        default=REPLY["train_top_layers"],
        help=f"fine-tune only the top K encoder layers, or 'all'; default {REPLY['train_top_layers']}",
    )
    train_reply.set_defaults(func=cmd_train_reply)

    evaluate = commands.add_parser("evaluate", help="evaluate a model").add_subparsers(
        dest="what", required=True
    )
    evaluate_intent = evaluate.add_parser(
        "intent", help="accuracy, macro-F1, per-class report, confusion PNG"
    )
    evaluate_intent.add_argument("--model", required=True, help="model.keras or its run folder")
    evaluate_intent.add_argument("--data", required=True)
    evaluate_intent.add_argument("--name", default="test", help="prefix of the written files")
    evaluate_intent.add_argument("--out-dir", default=None, help="default: the model's folder")
    evaluate_intent.add_argument("--json", action="store_true", help="print metrics as JSON")
    evaluate_intent.set_defaults(func=cmd_evaluate_intent)
    evaluate_reply = evaluate.add_parser(
        "reply", help="Recall@1/5, MRR among 100 candidates, BLEU, ROUGE-L, beside a TF-IDF baseline"
    )
    evaluate_reply.add_argument("--model", required=True, help="model.keras or its run folder")
    evaluate_reply.add_argument("--data", required=True, help="{context, reply} JSONL to evaluate on")
    evaluate_reply.add_argument("--train", required=True, help="the training file (fits the TF-IDF baseline)")
    evaluate_reply.add_argument("--out-dir", default=None, help="default: the model's folder")
    evaluate_reply.add_argument("--max-turns", type=int, default=3, help="as in training")
    evaluate_reply.add_argument("--decoding", choices=SEARCHES, default=None, help="default: the model's")
    evaluate_reply.add_argument(
        "--zero-shot",
        default="auto",
        help="also score this encoder untrained (mean-pooled cosine): 'auto' (default) the one the run "
        "started from, 'none', or an encoder name or folder",
    )
    evaluate_reply.add_argument("--json", action="store_true")
    evaluate_reply.set_defaults(func=cmd_evaluate_reply)
    evaluate_purchase = evaluate.add_parser(
        "purchase", help="AUC, log loss, ECE, NDCG@10, Recall@10, MRR beside popularity, LR and oracle"
    )
    evaluate_purchase.add_argument("--model", required=True, help="model.keras or its run folder")
    evaluate_purchase.add_argument("--items", required=True)
    evaluate_purchase.add_argument(
        "--events",
        required=True,
        help="events to score: with --history-events every view in it, else the --split of it by time",
    )
    evaluate_purchase.add_argument(
        "--history-events",
        action="append",
        default=None,
        help="earlier events (repeat for several files, e.g. the train and valid logs): histories and "
        "counts come from them plus --events' own earlier events; the baselines are fitted on them",
    )
    evaluate_purchase.add_argument(
        "--split",
        choices=["train", "valid", "test"],
        default="test",
        help="without --history-events: which time split of --events to score; default test",
    )
    evaluate_purchase.add_argument(
        "--catalog-negatives",
        type=int,
        default=0,
        help="also report, apart, the metrics with this many random catalog negatives per purchase",
    )
    evaluate_purchase.add_argument("--out-dir", default=None, help="default: the model's folder")
    evaluate_purchase.add_argument("--json", action="store_true", help="print metrics as JSON")
    evaluate_purchase.set_defaults(func=cmd_evaluate_purchase)

    update = commands.add_parser("update", help="fine-tune a model on new data").add_subparsers(
        dest="what", required=True
    )
    update_purchase = update.add_parser(
        "purchase", help="fine-tune on events from --since on, replaying older ones; shows both periods"
    )
    update_purchase.add_argument("--model", required=True, help="model.keras or its run folder")
    update_purchase.add_argument("--items", required=True)
    update_purchase.add_argument("--events", required=True, help="old and new events")
    update_purchase.add_argument("--since", type=int, required=True, help="Unix time where new events start")
    update_purchase.add_argument("--replay", type=float, default=1.0, help="old examples per new example")
    update_purchase.add_argument("--epochs", type=int, default=2)
    update_purchase.add_argument("--json", action="store_true")
    _add_run_folder_options(update_purchase)
    update_purchase.set_defaults(func=cmd_update_purchase)

    export = commands.add_parser("export", help="export a trained model as a SavedModel for TF Serving")
    export.add_argument(
        "--model",
        required=True,
        action="append",
        help="model.keras or its run folder; repeat as HEAD=PATH (intent=runs/i purchase=runs/p "
        "reply=runs/r) for one shop-assistant SavedModel with every head's signatures",
    )
    export.add_argument("--name", default="intent")
    export.add_argument("--base-dir", default="saved_models")
    export.add_argument("--version", type=int, default=None, help="default: next free version")
    export.add_argument("--keep", type=int, default=None, help="then delete all but the newest N versions")
    export.set_defaults(func=cmd_export)

    check = commands.add_parser(
        "check-export",
        help="check a SavedModel as TF Serving loads it (ops, session loader, warm-up, outputs)",
    )
    check.add_argument("path", help="a version folder, or a model folder (its newest version)")
    check.add_argument(
        "--model",
        action="append",
        default=None,
        help="the model.keras it came from (repeat HEAD=PATH as for export): compare outputs",
    )
    check.set_defaults(func=cmd_check_export)

    predict = commands.add_parser("predict", help="predict intents of raw texts (arguments or stdin lines)")
    predict.add_argument(
        "--model",
        required=True,
        help="SavedModel version folder, its base folder (latest version), or model.keras",
    )
    predict.add_argument("--json", action="store_true")
    predict.add_argument("text", nargs="*")
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ecomrec_tf.data import DataError
    from ecomrec_tf.encoders import EncoderError
    from ecomrec_tf.export import ExportError

    try:
        args.func(args)
    except (ConfigError, DataError, EncoderError, ExportError, OSError) as error:
        if args.debug:
            raise
        print(f"ecomrec-tf: error: {_one_line(error)}", file=sys.stderr)
        return 2
    return 0


def _one_line(error: Exception) -> str:
    """An expected error as one line; file-system errors as `path: reason`."""
    if isinstance(error, OSError) and error.filename and not isinstance(error, FileNotFoundError):
        return f"{error.filename}: {error.strerror or error}"
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.filename}: no such file"
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
