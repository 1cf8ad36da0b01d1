"""A training run described by one TOML or YAML file, checked field by field and saved with the run."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ecomrec_tf.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
TASK_FIELDS = {
    "intent": {"train", "valid", "weight"},
    "mlm": {"texts", "shop_dir", "weight", "mask_rate"},
    "reply": {
        "train",
        "valid",
        "bank",
        "items",
        "weight",
        "max_turns",
        "decoder_layers",
        "decoder_learning_rate",
        "generation_weight",
    },
}


@dataclass
class RunConfig:
    """Everything a run depends on; `ecomrec-tf train --config FILE` runs it, the seed makes it repeatable.

    Tasks are tables under `tasks`: `intent` (`train`, `valid` files of `{text, label}`), `reply`
    (`train`, `valid` dialogue files; `bank`, `items`, `max_turns`, `decoder_layers`, `decoder_learning_rate`,
    `generation_weight` as in `train_reply`) and `mlm` (`texts`: files of `{text}` records, or
    `shop_dir`: a folder `data generate` wrote). A run with several is multi-task, every head on one
    encoder: its loss is `weight_intent * L_intent + weight_reply * L_reply + weight_mlm * L_mlm` (alpha
    for MLM and 1 - alpha for intent gives the seeds' `alpha * L_pre + (1 - alpha) * L_fin`).
    """

    tasks: dict[str, dict]
    encoder: str = "minilm-l6"
    seed: int = 0
    epochs: int = 3
    steps_per_epoch: int | None = None
    batch_size: int = 32
    sequence_length: int = 64
    learning_rate: float = 1e-4
    warmup_fraction: float = 0.1
    decay: str = "cosine"
    weight_decay: float = 0.01
    global_clipnorm: float | None = 1.0
    layer_decay: float = 1.0
    train_top_layers: int | str | None = None
    lora_rank: int | None = None
    dropout: float = 0.1
    accumulation_steps: int = 1
    mixed_precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "default"
    mixing: str = "sum"
    temperature: float = 1.0
    checkpoint_every: int = 100
    monitor: str | None = None
    mode: str = "min"
    patience: int | None = None
    hparams: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(path, message: str):
    raise ConfigError(f"{path}: {message}")


def parse_config(data: dict, path: str | Path = "<config>") -> RunConfig:
    """Checks a config mapping: unknown fields, wrong types and unknown choices name the field."""
    if not isinstance(data, dict):
        _fail(path, "expected a table of settings at the top level")
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        _fail(path, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        _fail(path, "field 'tasks' must hold at least one task table, e.g. [tasks.intent]")
    for name, settings in tasks.items():
        if name not in TASK_FIELDS:
            _fail(path, f"tasks.{name}: unknown task; use {', '.join(TASK_FIELDS)}")
        extra = sorted(set(settings) - TASK_FIELDS[name])
        if extra:
            _fail(path, f"tasks.{name}: unknown field(s) {', '.join(extra)}")
    if "intent" in tasks and not {"train", "valid"} <= set(tasks["intent"]):
        _fail(path, "tasks.intent needs 'train' and 'valid' files")
    if "reply" in tasks and not {"train", "valid"} <= set(tasks["reply"]):
        _fail(path, "tasks.reply needs 'train' and 'valid' dialogue files")
    if "mlm" in tasks and not ({"texts", "shop_dir"} & set(tasks["mlm"])):
        _fail(path, "tasks.mlm needs 'texts' (a list of files) or 'shop_dir'")
    numbers = {"learning_rate", "warmup_fraction", "weight_decay", "layer_decay", "dropout", "temperature"}
    for name, value in data.items():
        if name in numbers and not isinstance(value, (int, float)):
            _fail(path, f"field '{name}' must be a number, got {value!r}")
        if name in {
            "seed",
            "epochs",
            "batch_size",
            "sequence_length",
            "accumulation_steps",
            "checkpoint_every",
        }:
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "seed" else 1):
                _fail(path, f"field '{name}' must be a positive integer, got {value!r}")
    for name, choices in (
        ("strategy", STRATEGIES),
        ("mixed_precision", PRECISIONS),
        ("mixing", ("sum", "sample")),
        ("decay", ("cosine", "linear")),
        ("mode", ("min", "max")),
    ):
        if name in data and data[name] not in choices:
            _fail(path, f"field '{name}' is {data[name]!r}; use one of {', '.join(choices)}")
    top = data.get("train_top_layers")
    if top is not None and top != "all" and not (isinstance(top, int) and top >= 0):
        _fail(path, f"field 'train_top_layers' must be 'all' or an integer >= 0, got {top!r}")
    return RunConfig(**data)


def load_config(path: str | Path) -> RunConfig:
    """Reads a `.toml`, `.yaml` or `.yml` run config; data paths are relative to the working folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: a config file must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {error}") from error
    return parse_config(data, path)


def save_config(config: RunConfig, run_dir: str | Path) -> Path:
    """Writes `run_dir/config.yaml` (and `config.json`): rerunning it repeats the run."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = config.to_dict()
    (run_dir / "config.json").write_text(json.dumps(data, indent=2))
    target = run_dir / "config.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target
