"""A training run described by one TOML or YAML file, checked field by field and saved with the run."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from ecomrec_tf.errors import ConfigError
from ecomrec_tf.training.precision import PRECISIONS

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
# What each field holds: (kind, smallest value) for numbers, a tuple of choices, or a kind name.
# Kinds: "int", "number" (>= the smallest), "positive", "fraction" ([0, 1)), a "?" allowing null;
# "bool", "path", "paths" (a file or a list of files), "table".
FIELDS = {
    "tasks": "table",
    "encoder": "path",
    "seed": ("int", 0),
    "epochs": ("int", 1),
    "steps_per_epoch": ("int?", 1),
    "batch_size": ("int", 1),
    "sequence_length": ("int", 1),
    "learning_rate": ("positive", 0),
    "warmup_fraction": ("fraction", 0),
    "decay": ("cosine", "linear"),
    "weight_decay": ("number", 0),
    "global_clipnorm": ("positive?", 0),
    "layer_decay": ("positive", 0),
    "train_top_layers": "layers",
    "lora_rank": ("int?", 1),
    "dropout": ("fraction", 0),
    "accumulation_steps": ("int", 1),
    "mixed_precision": PRECISIONS,
    "jit_compile": "bool",
    "strategy": STRATEGIES,
    "mixing": ("sum", "sample"),
    "temperature": ("positive", 0),
    "checkpoint_every": ("int", 1),
    "monitor": "monitor",
    "mode": ("min", "max"),
    "patience": ("int?", 1),
}
TASK_FIELDS = {
    "intent": {"train": "path", "valid": "path", "weight": ("number", 0)},
    "mlm": {
        "texts": "paths",
        "shop_dir": "path",
        "weight": ("number", 0),
        "mask_rate": ("fraction", 0),
        "head_warmup_steps": ("int", 0),
    },
    "reply": {
        "train": "path",
        "valid": "path",
        "bank": "path",
        "items": "path",
        "weight": ("number", 0),
        "max_turns": ("int", 1),
        "decoder_layers": ("int", 0),
        "decoder_learning_rate": ("positive", 0),
        "generation_weight": ("number", 0),
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(path, message: str):
    raise ConfigError(f"{path}: {message}")


def _check(path, name: str, value, kind) -> None:
    """Fails naming `name` unless `value` is what `kind` (see `FIELDS`) allows."""
    if isinstance(kind, tuple) and isinstance(kind[1], (int, float)) and not isinstance(kind[1], bool):
        base, least = kind
        if base.endswith("?"):
            if value is None:
                return
            base = base[:-1]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if base == "int" and not (number and isinstance(value, int) and value >= least):
            _fail(path, f"field '{name}' must be an integer >= {least}, got {value!r}")
        if base == "number" and not (number and value >= least):
            _fail(path, f"field '{name}' must be a number >= {least}, got {value!r}")
        if base == "positive" and not (number and value > 0):
            _fail(path, f"field '{name}' must be a number > 0, got {value!r}")
        if base == "fraction" and not (number and 0 <= value < 1):
            _fail(path, f"field '{name}' must be a number in [0, 1), got {value!r}")
    elif isinstance(kind, tuple):
        if value not in kind:
            _fail(path, f"field '{name}' is {value!r}; use one of {', '.join(kind)}")
    elif kind == "bool" and not isinstance(value, bool):
        _fail(path, f"field '{name}' must be true or false, got {value!r}")
    elif kind == "path" and not isinstance(value, str):
        _fail(path, f"field '{name}' must be a path (a string), got {value!r}")
    elif kind == "paths" and not (
        isinstance(value, str)
        or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
    ):
        _fail(path, f"field '{name}' must be a file or a list of files, got {value!r}")
    elif kind == "layers" and not (
        value is None or value == "all" or (isinstance(value, int) and value >= 0)
    ):
        _fail(path, f"field '{name}' must be 'all' or an integer >= 0, got {value!r}")


def parse_config(data: dict, path: str | Path = "<config>") -> RunConfig:
    """Checks a config mapping: every field's type and range, unknown fields and choices, each
    task's fields, and settings that cannot go together; each error names its field."""
    if not isinstance(data, dict):
        _fail(path, "expected a table of settings at the top level")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        _fail(path, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        _fail(path, "field 'tasks' must hold at least one task table, e.g. [tasks.intent]")
    for name, value in data.items():
        if name != "tasks":
            _check(path, name, value, FIELDS[name])
    for name, settings in tasks.items():
        if name not in TASK_FIELDS:
            _fail(path, f"tasks.{name}: unknown task; use {', '.join(TASK_FIELDS)}")
        if not isinstance(settings, dict):
            _fail(path, f"tasks.{name} must be a table of settings, got {settings!r}")
        extra = sorted(set(settings) - set(TASK_FIELDS[name]))
        if extra:
            _fail(
                path,
                f"tasks.{name}: unknown field(s) {', '.join(extra)}; known: {', '.join(TASK_FIELDS[name])}",
            )
        for key, value in settings.items():
            _check(path, f"tasks.{name}.{key}", value, TASK_FIELDS[name][key])
    if "intent" in tasks and not {"train", "valid"} <= set(tasks["intent"]):
        _fail(path, "tasks.intent needs 'train' and 'valid' files")
    if "reply" in tasks and not {"train", "valid"} <= set(tasks["reply"]):
        _fail(path, "tasks.reply needs 'train' and 'valid' dialogue files")
    if "mlm" in tasks and not ({"texts", "shop_dir"} & set(tasks["mlm"])):
        _fail(path, "tasks.mlm needs 'texts' (a list of files) or 'shop_dir'")
    if data.get("lora_rank") is not None and set(tasks) != {"intent"}:
        _fail(
            path,
            "field 'lora_rank' trains LoRA factors of an intent-only run; the other heads train the encoder",
        )
    monitor = data.get("monitor")
    names = (*tasks, "generation") if "reply" in tasks else tuple(tasks)
    if monitor is not None and not (
        isinstance(monitor, str) and any(monitor.startswith(f"val_{name}_") for name in names)
    ):
        known = ", ".join(f"val_{name}_loss" for name in names)
        _fail(
            path,
            f"field 'monitor' must name a validation metric, val_<task>_<metric> ({known}), got {monitor!r}",
        )
    if (data.get("patience") is not None) and monitor is None:
        _fail(path, "field 'patience' stops early on 'monitor': set both")
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
