"""Train and evaluate a reply model (retrieval; generation with a decoder) from `{context, reply, intent?}`
files, into a run folder; and the reply model as tasks for the distributed loop."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import keras
import tensorflow as tf

from ecomrec_tf.data.readers import DataError, read_dialogues, read_records
from ecomrec_tf.data.reply_bank import reply_bank_entries
from ecomrec_tf.data.task_datasets import dialogue_dataset
from ecomrec_tf.defaults import REPLY
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.evaluation.classification import plot_history
from ecomrec_tf.evaluation.reply import RetrievalSet
from ecomrec_tf.models.reply_model import ReplyModel, build_reply_model
from ecomrec_tf.models.text_model import training_view
from ecomrec_tf.preprocessing import SlotExtractor
from ecomrec_tf.preprocessing.slot_extractor import ORDER_ID
from ecomrec_tf.training.fit import MODEL_FILE, fit, save_model, save_run_config
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import Task, compile_tasks
from ecomrec_tf.training.tensorboard import log_hparams


def read_reply_bank(path: str | Path) -> list[dict]:
    """Vetted replies `{text, intent?}` from JSONL/CSV/TFRecord; errors name the file and line."""
    return [{"text": r["text"], "intent": r.get("intent") or ""} for _, r in read_records(path, ("text",))]


EMBEDDED_BANK = "embedded"  # `bank_file` value naming the embedded shop's vetted bank


def slot_values_of(items_file: str | Path | None) -> dict[str, list[str]]:
    """Phrases for the bank's vocabulary slots from an items file, or from the embedded shop's catalog."""
    from ecomrec_tf.data.events import read_items
    from ecomrec_tf.data.reply_bank import shop_slot_values
    from ecomrec_tf.data.shop import generate_catalog

    catalog = generate_catalog() if items_file is None else list(read_items(items_file).values())
    return shop_slot_values(catalog)


def shop_slot_extractor(slot_values: dict[str, list[str]] | None = None) -> SlotExtractor:
    """Order numbers by `ORDER_ID` and the phrase lists `slot_values` (default: the embedded shop's
    products, payment methods, promo codes and categories)."""
    return SlotExtractor({"order_id": ORDER_ID}, slot_values or slot_values_of(None))


def items_slot_extractor(items_file: str | Path | None) -> SlotExtractor:
    """Order numbers by `ORDER_ID`, and with an items file its product names and categories: the
    slots a shop's own replies can be templated on, with nothing from the embedded shop."""
    if items_file is None:
        return SlotExtractor({"order_id": ORDER_ID})
    from ecomrec_tf.data.events import read_items

    items = read_items(items_file).values()
    return SlotExtractor(
        {"order_id": ORDER_ID},
        {
            "product": sorted({item["title"].split(",")[0] for item in items}),
            "category": sorted({item["category"] for item in items}),
        },
    )


def bank_from_replies(dialogues: list[dict], extractor: SlotExtractor) -> list[dict]:
    """A reply bank from a shop's own vetted replies: each distinct training reply, with every slot
    value the extractor finds in it (an order number, a product) turned into its `{slot}`, so a
    reply is filled from the current conversation, never with another customer's values. Replies
    that become the same template are kept once, with the intent most of them have."""
    replies = sorted({d["reply"] for d in dialogues})
    found = extractor(tf.constant(replies)) if replies else {}
    intents: dict[str, Counter] = {}
    reply_intents = {}
    for d in dialogues:
        reply_intents.setdefault(d["reply"], Counter())[d.get("intent") or ""] += 1
    for row, reply in enumerate(replies):
        template = reply.replace("{", "{{").replace("}", "}}")
        for slot, values in found.items():
            value = values.numpy()[row].decode()
            if value:
                pattern = re.escape(value.replace("{", "{{").replace("}", "}}"))
                template = re.sub(rf"(?<!\w){pattern}(?!\w)", "{" + slot + "}", template, flags=re.IGNORECASE)
        intents.setdefault(template, Counter()).update(reply_intents[reply])
    return [{"text": text, "intent": counts.most_common(1)[0][0]} for text, counts in intents.items()]


def reply_targets(dataset: tf.data.Dataset, model: ReplyModel) -> tf.data.Dataset:
    """`({"context", "reply"}, intent)` batches -> `(x, targets)` for `model.fit`: each context's own
    reply is the positive among the batch's replies (`logits`: its row index); with a decoder, also
    the reply's next tokens (`next_token_logits`, teacher forcing)."""

    def targets(x, _):
        positives = tf.range(tf.shape(x["reply"])[0])
        if model.decoder is None:
            return x, positives
        return x, {"logits": positives, "next_token_logits": model.generation_targets(x["reply"])}

    return dataset.map(targets, num_parallel_calls=tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class SymmetricInBatchLoss(keras.losses.Loss):
    """In-batch softmax cross-entropy both ways, as CLIP trains: each context against the batch's
    replies and each reply against the batch's contexts, averaged. The positives are the diagonal
    of the `(batch, batch)` logits (`y_true` is each row's own index)."""

    def call(self, y_true, y_pred):
        labels = tf.range(tf.shape(y_pred)[0])
        rows = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, y_pred)
        columns = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.transpose(y_pred))
        return (rows + columns) / 2


def reply_losses(model: ReplyModel) -> dict[str, keras.losses.Loss]:
    """Symmetric in-batch cross-entropy for `logits`; per-token cross-entropy (padding ignored) for
    `next_token_logits`."""
    pad = model.preprocessor.tokenizer.pad_token_id
    return {
        "logits": SymmetricInBatchLoss(),
        "next_token_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=pad),
    }


def reply_tasks(
    model: ReplyModel,
    train: list[dict],
    valid: list[dict] | None = None,
    batch_size: int = 32,
    max_turns: int = 3,
    weight: float = 1.0,
    generation_weight: float = 1.0,
    seed: int = 0,
) -> list[Task]:
    """The reply head's tasks, which `train_reply` (`model.fit`, via `compile_tasks`) and the `Trainer`
    (`training.run`) both train: `reply` (symmetric in-batch cross-entropy on `logits`; each replica's
    batch is its negatives; in-batch accuracy) and, with a decoder, `generation` (per-token
    cross-entropy on `next_token_logits` by teacher forcing, averaged over the reply tokens). Both
    read the same `reply_targets` batches of dialogues (no length bucketing: contexts are short alike,
    and the schedule needs the epoch's step count).
    """

    def batches(dialogues: list[dict], shuffle: bool):
        def build(context: tf.distribute.InputContext | None):
            data = dialogue_dataset(
                dialogues,
                batch_size,
                max_turns,
                shuffle=shuffle,
                seed=seed,
                input_context=context,
                bucket=False,
            )
            return reply_targets(data, model)

        return build

    view = training_view(model, model.target_output)
    losses = reply_losses(model)
    generates = model.decoder is not None
    tasks = [
        Task(
            name="reply",
            model=view,
            loss=losses["logits"],
            train=batches(train, True),
            valid=batches(valid, False) if valid else None,
            weight=weight,
            output="logits" if generates else None,
            metrics=lambda: [keras.metrics.SparseCategoricalAccuracy("in_batch_accuracy")],
        )
    ]
    if generates:
        tasks.append(
            Task(
                name="generation",
                model=view,
                loss=losses["next_token_logits"],
                train=tasks[0].train,
                valid=tasks[0].valid,
                weight=generation_weight,
                output="next_token_logits",
            )
        )
    return tasks


def reply_bank_for(
    bank_file: str | Path | None, items_file: str | Path | None, train_dialogues: list[dict]
) -> tuple[list[dict], SlotExtractor]:
    """The reply bank and slot extractor of a run: `bank_file` `"embedded"` is the embedded shop's
    vetted bank with its slots; another file is read as a bank (`read_reply_bank`); None makes the
    bank from the training replies (`bank_from_replies`) with the slots of `items_slot_extractor`."""
    if bank_file == EMBEDDED_BANK:
        return reply_bank_entries(), shop_slot_extractor(slot_values_of(items_file))
    extractor = items_slot_extractor(items_file)
    bank = read_reply_bank(bank_file) if bank_file else bank_from_replies(train_dialogues, extractor)
    return bank, extractor


class RetrievalValidation(keras.callbacks.Callback):
    """Adds `val_mrr` and `val_recall@1` (the reference among candidates, `RetrievalSet`) to each
    epoch's logs, for early stopping on what the model is for: list it before `EarlyStopping`."""

    def __init__(self, model: ReplyModel, retrieval: RetrievalSet):
        super().__init__()
        self.retrieval = retrieval
        self.encoders = (
            tf.function(model.embed_contexts, reduce_retracing=True),
            tf.function(model.embed_replies, reduce_retracing=True),
        )

    def score(self) -> dict[str, float]:
        return self.retrieval.metrics(*self.encoders)

    def on_epoch_end(self, epoch, logs=None):
        metrics = self.score()
        if logs is not None:
            logs["val_mrr"], logs["val_recall@1"] = metrics["mrr"], metrics["recall@1"]


def train_reply(
    train_file: str | Path,
    valid_file: str | Path,
    run_dir: str | Path,
    encoder: str = "minilm-l6",
    bank_file: str | Path | None = None,
    items_file: str | Path | None = None,
    epochs: int = REPLY["epochs"],
    batch_size: int = REPLY["batch_size"],
    learning_rate: float = REPLY["learning_rate"],
    sequence_length: int = REPLY["sequence_length"],
    max_turns: int = 3,
    train_top_layers: int | None = REPLY["train_top_layers"],
    threshold: float = 0.3,
    decoder_layers: int = 2,
    decoder_learning_rate: float = 1e-3,
    generation_weight: float = 1.0,
    decoding: str = "beam",
    intent_model: str | Path | None = None,
    intent_weight: float = 0.0,
    intent_filter: float = 0.0,
    patience: int | None = REPLY["patience"],
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[ReplyModel, dict]:
    """Trains the dual encoder with in-batch negatives (symmetric loss), and with `decoder_layers`
    the reply decoder by teacher forcing (its loss weighted `generation_weight`), and saves
    `run_dir/model.keras`.

    Training starts from the pretrained encoder's own sentence similarity (identity projections)
    and keeps what validation shows best: each epoch is scored by MRR of the reference among 100
    candidates on `valid_file` (`RetrievalValidation`), training stops after `patience` epochs
    without a gain and the best epoch's weights are kept, and when no epoch beats the untrained
    encoder the encoder and projections are reset to it (the decoder keeps its training).

    The decoder starts from scratch beside a pretrained encoder, so it learns at its own peak rate,
    `decoder_learning_rate`, on the same warm-up and decay schedule.

    The reply bank is `bank_file` (`{text, intent?}` records; `"embedded"` for the embedded shop's
    vetted bank), else the training file's own replies (`bank_from_replies`: distinct, with order
    numbers and, given `items_file`, product names and categories turned into slots filled from the
    conversation). `intent_model` (a trained intent model's `.keras` file) boosts replies of the
    predicted intent by `intent_weight` and skips those below `intent_filter` probability.
    Writes `config.json`, `history.json`, `curves.png` and TensorBoard logs; rerunning after a crash
    resumes from the last finished epoch.
    """
    config = save_run_config(run_dir, locals())
    run_dir = Path(run_dir)
    train_dialogues, valid_dialogues = read_dialogues(train_file), read_dialogues(valid_file)
    if len(train_dialogues) < 2:
        raise DataError(f"{train_file}: in-batch negatives need at least two dialogues")
    bank, extractor = reply_bank_for(bank_file, items_file, train_dialogues)

    keras.utils.set_random_seed(seed)
    model = build_reply_model(
        load_encoder(encoder),
        bank,
        sequence_length,
        slot_extractor=extractor,
        threshold=threshold,
        train_top_layers=train_top_layers,
        decoder_layers=decoder_layers,
        decoding=decoding,
        intent_model=keras.saving.load_model(intent_model) if intent_model else None,
        intent_weight=intent_weight,
        intent_filter=intent_filter,
    )
    tasks = reply_tasks(
        model,
        train_dialogues,
        valid_dialogues,
        batch_size,
        max_turns,
        generation_weight=generation_weight,
        seed=seed,
    )
    train, valid = tasks[0].dataset("train"), tasks[0].dataset("valid")
    compile_tasks(
        tasks,
        make_optimizer(
            learning_rate,
            total_steps=int(train.cardinality()) * epochs,
            multipliers={"reply_decoder": decoder_learning_rate / learning_rate},
        ),
    )
    validation = RetrievalValidation(model, RetrievalSet(valid_dialogues, train_dialogues, max_turns))
    retrieval_weights = [w for w in model.weights if not w.path.startswith("reply_decoder")]
    untrained = [w.numpy() for w in retrieval_weights]
    floor = validation.score()["mrr"]
    history = fit(
        tasks[0].model, train, valid, epochs=epochs, run_dir=run_dir, patience=patience, monitor="val_mrr",
        verbose=verbose, callbacks=[validation],
    )  # fmt: skip
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    history["untrained_val_mrr"] = [floor]
    if max(history["val_mrr"]) <= floor:
        print(f"no epoch beat the untrained encoder on validation MRR ({floor:.4f}): keeping its weights")
        for weight, value in zip(retrieval_weights, untrained):
            weight.assign(value)
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_history({k: v for k, v in history.items() if "learning_rate" not in k}, run_dir / "curves.png")
    log_hparams(run_dir, config)
    save_model(model, run_dir / MODEL_FILE)
    return model, history
