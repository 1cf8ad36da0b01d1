"""Train and evaluate a reply model (retrieval; generation with a decoder) from `{context, reply, intent?}`
files, into a run folder; and the reply model as tasks for the distributed loop."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.data.readers import DataError, read_dialogues, read_records
from ecomrec_tf.data.reply_bank import reply_bank_entries
from ecomrec_tf.data.task_datasets import dialogue_context, dialogue_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.encoders.sentence_encoder import encode_in_batches
from ecomrec_tf.evaluation.classification import plot_history
from ecomrec_tf.evaluation.reply import TfidfRetriever, candidate_sets, retrieval_metrics, text_metrics
from ecomrec_tf.models.reply_model import ReplyModel, build_reply_model
from ecomrec_tf.preprocessing import SlotExtractor
from ecomrec_tf.preprocessing.slot_extractor import ORDER_ID
from ecomrec_tf.training.fit import fit, save_run_config
from ecomrec_tf.training.intent import MODEL_FILE, save_model
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import Task
from ecomrec_tf.training.tensorboard import log_hparams


def read_reply_bank(path: str | Path) -> list[dict]:
    """Vetted replies `{text, intent?}` from JSONL/CSV/TFRecord; errors name the file and line."""
    return [{"text": r["text"], "intent": r.get("intent") or ""} for _, r in read_records(path, ("text",))]


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


def reply_losses(model: ReplyModel) -> dict[str, keras.losses.Loss]:
    """In-batch softmax cross-entropy for `logits`; per-token cross-entropy (padding ignored) for
    `next_token_logits`."""
    pad = model.preprocessor.tokenizer.pad_token_id
    return {
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
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
    """The reply model as `Task`s for the distributed loop (`training.Trainer`): `reply` (in-batch
    negatives; each replica's batch is its negatives) and, with a decoder, `generation` (teacher
    forcing, the loss averaged over reply tokens). Both read the same dialogues.
    """

    def dataset(dialogues: list[dict], shuffle: bool, generation: bool):
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
            if not generation:
                return data.map(lambda x, _: (x, tf.range(tf.shape(x["reply"])[0])))

            def tokens(x, _):
                targets = model.generation_targets(x["reply"])
                return x, targets, tf.cast(targets != model.preprocessor.tokenizer.pad_token_id, tf.float32)

            return data.map(tokens)

        return build

    losses = reply_losses(model)
    parts = [("reply", "logits", weight, False)]
    if model.decoder is not None:
        parts.append(("generation", "next_token_logits", generation_weight, True))
    return [
        Task(
            name=name,
            model=model,
            loss=losses[output],
            train=dataset(train, True, generation),
            valid=dataset(valid, False, generation) if valid else None,
            weight=task_weight,
            output=output,
            metrics=list
            if generation
            else lambda: [keras.metrics.SparseCategoricalAccuracy("in_batch_accuracy")],
        )
        for name, output, task_weight, generation in parts
    ]


def train_reply(
    train_file: str | Path,
    valid_file: str | Path,
    run_dir: str | Path,
    encoder: str = "minilm-l6",
    bank_file: str | Path | None = None,
    slot_values: dict[str, list[str]] | None = None,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    sequence_length: int = 96,
    max_turns: int = 3,
    train_top_layers: int | None = 3,
    threshold: float = 0.3,
    decoder_layers: int = 2,
    decoder_learning_rate: float = 1e-3,
    generation_weight: float = 1.0,
    decoding: str = "beam",
    intent_model: str | Path | None = None,
    intent_weight: float = 0.0,
    intent_filter: float = 0.0,
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[ReplyModel, dict]:
    """Trains the dual encoder with in-batch negatives (and, with `decoder_layers`, the reply decoder
    by teacher forcing, its loss weighted `generation_weight`) and saves `run_dir/model.keras`.

    The decoder starts from scratch beside a pretrained encoder, so it learns at its own peak rate,
    `decoder_learning_rate`, on the same warm-up and decay schedule.

    The reply bank is `bank_file` (`{text, intent?}` records) or the embedded vetted bank; slots
    are read by `ORDER_ID` and the phrase lists `slot_values` (`slot_values_of(items_file)`; by
    default the embedded shop's products, payment methods, promo codes and categories).
    `intent_model` (a trained intent model's `.keras` file) boosts replies of the
    predicted intent by `intent_weight` and skips those below `intent_filter` probability.
    Writes `config.json`, `history.json`, `curves.png` and TensorBoard logs; rerunning after a crash
    resumes from the last finished epoch.
    """
    config = save_run_config(run_dir, locals(), skip=("slot_values",))
    run_dir = Path(run_dir)
    train_dialogues, valid_dialogues = read_dialogues(train_file), read_dialogues(valid_file)
    if len(train_dialogues) < 2:
        raise DataError(f"{train_file}: in-batch negatives need at least two dialogues")
    bank = read_reply_bank(bank_file) if bank_file else reply_bank_entries()

    keras.utils.set_random_seed(seed)
    extractor = shop_slot_extractor(slot_values)
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
    # No length bucketing: contexts are short alike, and the schedule needs the epoch's step count.
    train = dialogue_dataset(train_dialogues, batch_size, max_turns, shuffle=True, seed=seed, bucket=False)
    train = reply_targets(train, model)
    valid = reply_targets(dialogue_dataset(valid_dialogues, batch_size, max_turns, bucket=False), model)
    in_batch_accuracy = keras.metrics.SparseCategoricalAccuracy("in_batch_accuracy")
    losses = reply_losses(model)
    generates = model.decoder is not None
    model.compile(
        optimizer=make_optimizer(
            learning_rate,
            total_steps=int(train.cardinality()) * epochs,
            multipliers={"reply_decoder": decoder_learning_rate / learning_rate},
        ),
        loss=losses if generates else losses["logits"],
        loss_weights={"logits": 1.0, "next_token_logits": generation_weight} if generates else None,
        metrics={"logits": [in_batch_accuracy]} if generates else [in_batch_accuracy],
    )
    history = fit(model, train, valid, epochs=epochs, run_dir=run_dir, verbose=verbose)
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_history({k: v for k, v in history.items() if "learning_rate" not in k}, run_dir / "curves.png")
    log_hparams(run_dir, config)
    save_model(model, run_dir / MODEL_FILE)
    return model, history


def evaluate_reply(
    model: ReplyModel,
    data_file: str | Path,
    train_file: str | Path,
    out_dir: str | Path | None = None,
    max_turns: int = 3,
    candidates: int = 100,
    examples: int = 5,
    decoding: str | None = None,
    seed: int = 0,
) -> dict:
    """The dual encoder beside a TF-IDF baseline (fitted on `train_file`) on labelled dialogues, and
    the model's generated replies when it has a decoder.

    Retrieval: Recall@1, Recall@5 and MRR of the reference reply among `candidates` (it and
    others drawn from the distinct references of `data_file`, topped up with training replies when
    it has fewer). Text: BLEU and ROUGE-L (case-insensitive: the encoder is uncased) against the
    reference of the reply each method picks from the bank (slots filled from the conversation),
    and of the generated reply (`decoding`: the model's default search, or `"greedy"`, `"beam"`,
    `"top_k"`). Also fallback rates and `examples` exchanges. Writes `reply_metrics.json`.
    """
    dialogues = read_dialogues(data_file)
    contexts = [dialogue_context(d["context"], max_turns) for d in dialogues]
    references = [d["reply"] for d in dialogues]
    train = read_dialogues(train_file)
    # Candidates: the distinct references, topped up with training replies when fewer than `candidates`.
    pool = sorted(set(references))
    pool += sorted({d["reply"] for d in train} - set(pool))[: max(candidates - len(pool), 0)]
    if len(pool) < 2:
        raise DataError(f"{data_file}: needs at least two distinct replies to rank")
    index = {reply: i for i, reply in enumerate(pool)}
    sets = candidate_sets([index[r] for r in references], len(pool), candidates, seed)

    context_vectors = encode_in_batches(tf.function(model.embed_contexts, reduce_retracing=True), contexts)
    pool_vectors = encode_in_batches(tf.function(model.embed_replies, reduce_retracing=True), pool)
    model_scores = np.take_along_axis(context_vectors @ pool_vectors.T, sets, axis=1)
    tfidf = TfidfRetriever(
        [dialogue_context(d["context"], max_turns) for d in train] + [d["reply"] for d in train]
    )
    baseline_scores = np.take_along_axis(tfidf.scores(contexts, pool), sets, axis=1)

    bank = model.bank_vectors()
    chosen = _batched(lambda c: model.reply(c, k=1, bank_vectors=bank), contexts)
    chosen["score"] = chosen["scores"][:, 0]
    bank_texts = [r["text"] for r in model.reply_bank]
    baseline = model.choose_replies(tf.constant(contexts), tfidf.scores(contexts, bank_texts), k=1)
    baseline_replies = [r.decode() for r in baseline["replies"].numpy()[:, 0]]
    shown = [
        {"context": c, "reply": r, "score": float(s), "reference": ref}
        for c, r, s, ref in zip(contexts[:examples], chosen["reply"], chosen["score"], references)
    ]
    result = {
        "dual_encoder": {
            **retrieval_metrics(model_scores),
            **text_metrics(chosen["reply"], references),
            "fallback_rate": float(np.mean(chosen["fallback"])),
        },
        "tfidf": {**retrieval_metrics(baseline_scores), **text_metrics(baseline_replies, references)},
        "examples": shown,
        "data_file": str(data_file),
        "dialogues": len(dialogues),
        "distinct_replies": len(pool),
    }
    if model.decoder is not None:
        decoding = decoding or model.decoding
        generated = _batched(lambda c: model.generate(c, decoding), contexts, description="generating")
        result["generated"] = {
            **text_metrics(generated["reply"], references),
            "fallback_rate": float(np.mean(generated["fallback"])),
            "decoding": decoding,
        }
        for example, text in zip(shown, generated["reply"]):
            example["generated"] = text
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "reply_metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def _batched(function, contexts: list[str], description: str = "replying") -> dict:
    """`function` (contexts -> dict of tensors) over `contexts` in batches, as one tf.function: numpy
    arrays, 1-D strings decoded."""
    result = encode_in_batches(
        tf.function(function, reduce_retracing=True), contexts, progress=True, description=description
    )
    return {
        key: [item.decode() for item in value] if value.dtype == object and value.ndim == 1 else value
        for key, value in result.items()
    }
