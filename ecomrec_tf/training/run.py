"""Runs a `RunConfig` with the `Trainer`: one config file in, a resumable run folder out."""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import tensorflow as tf

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.data.corpus import shop_corpus, shop_dir_corpus
from ecomrec_tf.data.readers import read_dialogues
from ecomrec_tf.encoders import load_encoder, save_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.models.reply_model import build_reply_model
from ecomrec_tf.training.config import RunConfig, save_config
from ecomrec_tf.training.intent import MODEL_FILE, intent_metrics, read_intent_splits, save_model
from ecomrec_tf.training.loop import Trainer
from ecomrec_tf.training.mlm import ENCODER_DIR, masked_lm, mlm_task
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.reply import reply_bank_for, reply_tasks
from ecomrec_tf.training.task import text_task
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


def run(config: RunConfig, run_dir: str | Path, verbose: int = 1) -> dict:
    """Trains every task of `config` together; rerunning with the same `run_dir` resumes.

    Writes `run_dir/config.yaml` (rerun it to repeat the run), checkpoints, TensorBoard logs (scalars
    per task, HParams, PR curves, sample predictions and the intent-vector projector),
    `history.json`, and the results: `model.keras` for an intent task, `reply_model.keras` for a reply
    task, `encoder/` for an MLM task. Export the heads as one SavedModel with `ecomrec-tf export --model
    intent=RUN/model.keras --model reply=RUN/reply_model.keras --name shop_assistant`.

    Returns:
        The history (per-epoch logs).
    """
    run_dir = Path(run_dir)
    save_config(config, run_dir)
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        strategy = make_strategy(config.strategy)
        with strategy.scope():
            keras.utils.set_random_seed(config.seed)
            encoder = load_encoder(config.encoder, dropout=config.dropout)
            tasks, intent, reply, multipliers = [], None, None, {}
            top = None if config.train_top_layers in (None, "all") else int(config.train_top_layers)
            if "intent" in config.tasks:
                settings = config.tasks["intent"]
                labels, (train_texts, train_ids), (valid_texts, valid_ids) = read_intent_splits(
                    settings["train"], settings["valid"]
                )
                intent = build_intent_model(
                    encoder,
                    labels,
                    sequence_length=config.sequence_length,
                    train_top_layers=top,
                    lora_rank=config.lora_rank,
                )

                def train_data(ctx, texts=train_texts, ids=train_ids):
                    return text_classification_dataset(
                        texts, ids, config.batch_size, shuffle=True, seed=config.seed, input_context=ctx
                    )

                def valid_data(ctx, texts=valid_texts, ids=valid_ids):
                    return text_classification_dataset(texts, ids, config.batch_size * 2, input_context=ctx)

                tasks.append(
                    text_task(
                        "intent",
                        intent,
                        keras.losses.SparseCategoricalCrossentropy(),
                        train=train_data,
                        valid=valid_data,
                        weight=float(settings.get("weight", 1.0)),
                        metrics=functools.partial(intent_metrics, len(labels)),
                    )
                )
            if "reply" in config.tasks:
                settings = config.tasks["reply"]
                dialogues = read_dialogues(settings["train"])
                bank, extractor = reply_bank_for(settings.get("bank"), settings.get("items"), dialogues)
                reply = build_reply_model(
                    encoder,
                    bank,
                    config.sequence_length,
                    slot_extractor=extractor,
                    train_top_layers=top,
                    decoder_layers=int(settings.get("decoder_layers", 0)),
                )
                tasks += reply_tasks(
                    reply,
                    dialogues,
                    read_dialogues(settings["valid"]),
                    config.batch_size,
                    max_turns=int(settings.get("max_turns", 3)),
                    weight=float(settings.get("weight", 1.0)),
                    generation_weight=float(settings.get("generation_weight", 1.0)),
                    seed=config.seed,
                )
                # The decoder starts from scratch beside the pretrained encoder (see `train_reply`).
                decoder_rate = float(settings.get("decoder_learning_rate", 1e-3))
                multipliers["reply_decoder"] = decoder_rate / config.learning_rate
            if "mlm" in config.tasks:
                settings = config.tasks["mlm"]
                texts = _mlm_texts(settings)
                tasks.append(
                    mlm_task(
                        masked_lm(encoder),
                        encoder,
                        texts,
                        config.batch_size,
                        sequence_length=config.sequence_length,
                        mask_rate=float(settings.get("mask_rate", 0.15)),
                        seed=config.seed,
                        weight=float(settings.get("weight", 1.0)),
                    )
                )
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
            log_hparams(run_dir, {k: v for k, v in config.to_dict().items() if k not in ("tasks", "hparams")})
        reports = []
        if intent is not None and trainer.is_chief:
            reports.append(
                lambda t, epoch, logs: intent_report(run_dir, intent, valid_texts, valid_ids, epoch)
            )
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
            if intent is not None:
                save_model(intent, run_dir / MODEL_FILE)
            if reply is not None:
                save_model(reply, run_dir / REPLY_MODEL_FILE)
            if "mlm" in config.tasks:
                save_encoder(encoder, run_dir / ENCODER_DIR)
        return history
    finally:
        keras.mixed_precision.set_global_policy("float32")
