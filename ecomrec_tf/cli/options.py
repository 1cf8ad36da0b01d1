"""Every option more than one command takes, declared once, and the helpers commands share."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import zipfile
from pathlib import Path

from ecomrec_tf.defaults import INTENT
from ecomrec_tf.errors import ConfigError

SEARCHES = ("greedy", "beam", "top_k")  # models.reply_model.DECODINGS, without importing TensorFlow
FINISHED = ("model.keras", "reply_model.keras", "encoder")  # what a finished run leaves (training.*)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default (`(default: ...)`), except of flags and required options."""

    def _get_help_string(self, action):
        if action.required or action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def verbosity() -> int | str:
    """Keras progress bars on a terminal; one line per epoch when output goes to a file or a pipe
    (a bar there is one endless line of control codes)."""
    return "auto" if sys.stdout.isatty() else 2


def optional_int(value: str) -> int | None:
    """An integer, or None for 'none', 'auto' or 'all'."""
    return None if value in ("none", "auto", "all") else int(value)


# name -> (flags, add_argument keywords). Commands take them with `add(parser, name, ...)`, and may
# override a keyword (`add(parser, "items", items={"required": False})`).
OPTIONS: dict[str, tuple[tuple[str, ...], dict]] = {
    "train": (("--train",), {"required": True, "help": "training file"}),
    "valid": (("--valid",), {"required": True, "help": "validation file (early stopping, model choice)"}),
    "items": (("--items",), {"required": True, "help": "items JSONL/CSV {item_id, title, category, ...}"}),
    "events": (("--events",), {"required": True, "help": "events JSONL/CSV {user_id, item_id, event, ...}"}),
    "model": (("--model",), {"required": True, "help": "model.keras or its run folder"}),
    "encoder": (
        ("--encoder",),
        {"default": "minilm-l6", "help": "minilm-l6, tiny, small, or a HF BERT folder"},
    ),
    "intent_model": (("--intent-model",), {"default": None, "help": "a trained intent model.keras"}),
    "seed": (("--seed",), {"type": int, "default": 0, "help": "data order, initialisation, dropout"}),
    "json": (("--json",), {"action": "store_true", "help": "print the results as JSON"}),
    "out": (("--out",), {"required": True, "help": "the folder to write to"}),
    "eval_out": (
        ("--out",),
        {"default": None, "help": "folder for the result files; default: the model's folder"},
    ),
    "max_turns": (
        ("--max-turns",),
        {"type": int, "default": None, "help": "context turns kept; default: the run's (3 without one)"},
    ),
    "train_top_layers": (
        ("--train-top-layers",),
        {
            "type": optional_int,
            "default": None,
            "help": "fine-tune only the top K encoder layers (0: encoder frozen), or 'all' (None)",
        },
    ),
    "runs_dir": (
        ("--runs-dir",),
        {"default": "runs", "help": "run folders (TensorBoard logs, outputs) go here"},
    ),
    "run_name": (("--run-name",), {"default": None, "help": "folder under --runs-dir; reuse it to resume"}),
    "overwrite": (("--overwrite",), {"action": "store_true", "help": "train a finished --run-name again"}),
    "epochs": (("--epochs",), {"type": int, "help": "most epochs"}),
    "batch_size": (("--batch-size",), {"type": int, "help": "examples per step"}),
    "learning_rate": (
        ("--learning-rate",),
        {"type": float, "help": "peak learning rate (AdamW, warm-up, decay)"},
    ),
    "class_weight": (
        ("--class-weight",),
        {
            "choices": ["balanced", "none"],
            "default": INTENT["class_weight"],
            "help": "'balanced' weighs every class the same in the loss (skewed labels)",
        },
    ),
    "lora_rank": (
        ("--lora-rank",),
        {"type": int, "default": None, "help": "train LoRA factors of this rank instead"},
    ),
    "layer_decay": (
        ("--layer-decay",),
        {"type": float, "default": 1.0, "help": "layer-wise learning-rate decay"},
    ),
    "precision": (
        ("--precision",),
        {
            "choices": ["auto", "float32", "mixed_bfloat16"],
            "default": "auto",
            "help": "training compute precision; auto: bfloat16 on CPUs with AVX512-BF16/AMX and on "
            "GPUs from A100 on, else float32 (the saved model is float32 either way)",
        },
    ),
}


def add(parser: argparse.ArgumentParser, *names: str, **overrides: dict) -> None:
    """Adds the named `OPTIONS` to `parser`; `overrides[name]` replaces some of an option's keywords."""
    for name in names:
        flags, keywords = OPTIONS[name]
        parser.add_argument(*flags, **{**keywords, **overrides.get(name, {})})


def add_run_folder(parser: argparse.ArgumentParser) -> None:
    """Where a run goes (`run_dir`): the options of every command that trains."""
    add(parser, "runs_dir", "run_name", "overwrite")


def add_run_options(
    parser: argparse.ArgumentParser, defaults: dict, monitor: str, sequence: str | None
) -> None:
    """The options every `train` command shares: schedule, early stopping, seed and run folder; and the
    sequence length (what `sequence` says it is), unless None (a model whose length is given)."""
    add(
        parser,
        "epochs",
        "batch_size",
        "learning_rate",
        epochs={"default": defaults["epochs"]},
        batch_size={"default": defaults["batch_size"]},
        learning_rate={"default": defaults["learning_rate"]},
    )
    length = defaults.get("sequence_length")
    if sequence is not None:
        parser.add_argument(
            "--sequence-length",
            type=int if length else optional_int,  # None: fitted to the training texts
            default=length if length else "auto",
            help=f"{sequence}; 'auto': the training texts' 95th percentile of token lengths",
        )
    parser.add_argument(
        "--patience",
        type=optional_int,
        default=defaults["patience"] if defaults["patience"] is not None else "none",
        help=f"stop after this many epochs without a better validation {monitor}, keeping the best "
        "('none': train every epoch)",
    )
    add(parser, "seed")
    add_run_folder(parser)


def subcommands(parser: argparse.ArgumentParser, dest: str, required: bool = True):
    return parser.add_subparsers(dest=dest, required=required)


def command(group, name: str, help: str, func) -> argparse.ArgumentParser:
    """A subcommand of `group` whose help shows every option's default, running `func(args)`."""
    parser = group.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    parser.set_defaults(func=func)
    return parser


def run_dir(args, kind: str) -> Path:
    """The run folder: a new one, or one to resume; a finished run is trained again only with
    `--overwrite` (its folder is emptied first), never silently."""
    name = args.run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(args.runs_dir) / name
    finished = [name for name in FINISHED if (folder / name).exists()]
    if finished:
        if not getattr(args, "overwrite", False):
            raise ConfigError(
                f"{folder}: a finished run (it holds {finished[0]}); choose another --run-name, or "
                "pass --overwrite to train it again from scratch"
            )
        shutil.rmtree(folder)
    return folder


def model_folder(path: str | Path) -> Path:
    """The folder of a model: the path itself if a folder (a run), else the file's."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def out_dir(args) -> Path:
    """`--out`, or the model's folder."""
    return Path(args.out) if args.out else model_folder(args.model)


def run_setting(model_path: str | Path, name: str, default=None):
    """A setting of the run that trained a model (its folder's `config.json`), or `default`."""
    config = model_folder(model_path) / "config.json"
    if not config.is_file():
        return default
    value = json.loads(config.read_text()).get(name)
    return default if value is None else value


def load_model(path: str):
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


def print_table(rows: dict[str, dict], columns: list[str]) -> None:
    """One line per named row of metrics, one column per metric ("-" where a row has none)."""
    width = max(len(name) for name in rows) + 2
    print(" " * width + "".join(f"{c:>10}" for c in columns))
    for name, metrics in rows.items():
        print(
            f"{name:<{width}}"
            + "".join(f"{metrics[c]:>10.4f}" if c in metrics else f"{'-':>10}" for c in columns)
        )
