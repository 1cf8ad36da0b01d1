"""Runs a `RunConfig` with the `Trainer`: one config file in, a resumable run folder out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from ecomrec_tf.data.corpus import shop_corpus, shop_dir_corpus
from ecomrec_tf.data.readers import read_dialogues
from ecomrec_tf.encoders import load_encoder, save_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.models.reply_model import build_reply_model
from ecomrec_tf.training.config import RunConfig, save_config
from ecomrec_tf.training.fit import MODEL_FILE, save_model
from ecomrec_tf.training.intent import intent_task, read_intent_splits
from ecomrec_tf.training.loop import Trainer
from ecomrec_tf.training.mlm import ENCODER_DIR, MLM_HEAD_WARMUP_STEPS, masked_lm, mlm_task, warm_up_head
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.precision import resolve_precision
from ecomrec_tf.training.reply import reply_bank_for, reply_tasks
from ecomrec_tf.training.task import Task
from ecomrec_tf.training.tensorboard import intent_report, log_hparams

REPLY_MODEL_FILE = "reply_model.keras"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (local GPUs), `multi_worker` (hosts in `TF_CONFIG`), `tpu`."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def _mlm_texts(settings: dict) -> list[str]:
    if "shop_dir" in settings:
        return shop_dir_corpus(settings["shop_dir"])
    files = settings["texts"] if isinstance(settings["texts"], list) else [settings["texts"]]
    texts: dict[str, None] = {}
    for path in files:
        texts.update(dict.fromkeys(shop_corpus(texts=path)))
    return list(texts)


@dataclass
class RunPart:
    """What one head adds to a run: its tasks, what it writes when the run ends, learning-rate
    multipliers for its fresh layers, an epoch-end report, and steps to run before the joint training."""

    tasks: list[Task]
    save: Callable[[Path], None]
    multipliers: dict[str, float] = field(default_factory=dict)
    report: Callable | None = None
    warm_up: Callable[[Path, tf.distribute.Strategy, int], None] | None = None


def _intent_part(settings: dict, config: RunConfig, encoder, top: int | None) -> RunPart:
    labels, train, valid = read_intent_splits(settings["train"], settings["valid"])
    model = build_intent_model(
        encoder,
        labels,
        sequence_length=config.sequence_length,
        train_top_layers=top,
        lora_rank=config.lora_rank,
    )
    task = intent_task(
        model, train, valid, config.batch_size, config.seed, weight=settings.get("weight", 1.0)
    )
    return RunPart(
        [task],
        save=lambda run_dir: save_model(model, run_dir / MODEL_FILE),
        report=lambda run_dir, epoch: intent_report(run_dir, model, *valid, epoch),
    )


def _reply_part(settings: dict, config: RunConfig, encoder, top: int | None) -> RunPart:
    dialogues = read_dialogues(settings["train"])
    bank, extractor = reply_bank_for(settings.get("bank"), settings.get("items"), dialogues)
    model = build_reply_model(
        encoder,
        bank,
        config.sequence_length,
        slot_extractor=extractor,
        train_top_layers=top,
        decoder_layers=settings.get("decoder_layers", 0),
    )
    tasks = reply_tasks(
        model,
        dialogues,
        read_dialogues(settings["valid"]),
        config.batch_size,
        max_turns=settings.get("max_turns", 3),
        weight=settings.get("weight", 1.0),
        generation_weight=settings.get("generation_weight", 1.0),
        seed=config.seed,
    )
    # The decoder starts from scratch beside the pretrained encoder (see `train_reply`).
    rate = settings.get("decoder_learning_rate", 1e-3) / config.learning_rate
    return RunPart(
        tasks,
        save=lambda run_dir: save_model(model, run_dir / REPLY_MODEL_FILE),
        multipliers={"reply_decoder": rate},
    )


def _mlm_part(settings: dict, config: RunConfig, encoder, top: int | None) -> RunPart:
    task = mlm_task(
        masked_lm(encoder),
        encoder,
        _mlm_texts(settings),
        config.batch_size,
        sequence_length=config.sequence_length,
        mask_rate=settings.get("mask_rate", 0.15),
        seed=config.seed,
        weight=settings.get("weight", 1.0),
    )
    steps = settings.get("head_warmup_steps", MLM_HEAD_WARMUP_STEPS)
    return RunPart(
        [task],
        save=lambda run_dir: save_encoder(encoder, run_dir / ENCODER_DIR),
        warm_up=lambda run_dir, strategy, verbose: warm_up_head(
            task, encoder, steps, run_dir / "head_warmup", strategy, top, verbose
        ),
    )


# Every head a run config can train (`tasks.<name>`), in the order their tasks join the run.
PARTS: dict[str, Callable[[dict, RunConfig, object, int | None], RunPart]] = {
    "intent": _intent_part,
    "reply": _reply_part,
    "mlm": _mlm_part,
}


def run(config: RunConfig, run_dir: str | Path, verbose: int = 1) -> dict:
    """Trains every task of `config` together; rerunning with the same `run_dir` resumes.

    Writes `run_dir/config.yaml` (rerun it to repeat the run), checkpoints, TensorBoard logs (scalars
    per task, HParams, PR curves, sample predictions and the intent-vector projector),
    `history.json`, and the results: `model.keras` for an intent task, `reply_model.keras` for a reply
    task, `encoder/` for an MLM task (whose fresh head first trains alone, `head_warmup_steps`, as in
    `pretrain_mlm`). Export the heads as one SavedModel with `ecomrec-tf export --model
    intent=RUN/model.keras --model reply=RUN/reply_model.keras --name shop_assistant`.

    Returns:
        The history (per-epoch logs).
    """
    run_dir = Path(run_dir)
    save_config(config, run_dir)
    keras.mixed_precision.set_global_policy(resolve_precision(config.mixed_precision))
    try:
        strategy = make_strategy(config.strategy)
        with strategy.scope():
            keras.utils.set_random_seed(config.seed)
            encoder = load_encoder(config.encoder, dropout=config.dropout)
            top = None if config.train_top_layers in (None, "all") else int(config.train_top_layers)
            parts = [
                build(config.tasks[name], config, encoder, top)
                for name, build in PARTS.items()
                if name in config.tasks
            ]
        for part in parts:
            if part.warm_up is not None:
                part.warm_up(run_dir, strategy, verbose)
        with strategy.scope():
            tasks = [task for part in parts for task in part.tasks]
            multipliers = {key: value for part in parts for key, value in part.multipliers.items()}
            steps_per_epoch = config.steps_per_epoch or int(tasks[0].dataset("train").cardinality())
            optimizer = make_optimizer(
                config.learning_rate,
                total_steps=steps_per_epoch * config.epochs,
                warmup_fraction=config.warmup_fraction,
                decay=config.decay,
                weight_decay=config.weight_decay,
                global_clipnorm=config.global_clipnorm,
                layer_decay=config.layer_decay,
                num_layers=encoder.backbone.num_layers,
                loss_scale=config.mixed_precision == "mixed_float16",
                multipliers=multipliers,
            )
            trainer = Trainer(
                tasks,
                optimizer,
                strategy,
                mixing=config.mixing,
                temperature=config.temperature,
                accumulation_steps=config.accumulation_steps,
                jit_compile=config.jit_compile,
                seed=config.seed,
            )
        if trainer.is_chief:
            log_hparams(run_dir, {k: v for k, v in config.to_dict().items() if k != "tasks"})
        reports = [
            lambda t, epoch, logs, report=part.report: report(run_dir, epoch)
            for part in parts
            if part.report is not None and trainer.is_chief
        ]
        history = trainer.fit(
            config.epochs,
            run_dir,
            steps_per_epoch=steps_per_epoch,
            checkpoint_every=config.checkpoint_every,
            monitor=config.monitor,
            mode=config.mode,
            patience=config.patience,
            on_epoch_end=reports,
            verbose=verbose,
        )
        if trainer.is_chief:
            for part in parts:
                part.save(run_dir)
        return history
    finally:
        keras.mixed_precision.set_global_policy("float32")
