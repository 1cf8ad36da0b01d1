"""Train and evaluate a retrieval reply model from `{context, reply, intent?}` files, into a run folder."""

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


def in_batch_targets(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`({"context", "reply"}, intent)` batches -> `({"context", "reply"}, row index)`: each context's
    own reply is the positive among the batch's replies."""
    return dataset.map(lambda x, _: (x, tf.range(tf.shape(x["reply"])[0])))


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
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[ReplyModel, dict]:
    """Trains the dual encoder with in-batch negatives and saves `run_dir/model.keras`.

    The reply bank is `bank_file` (`{text, intent?}` records) or the embedded vetted bank; slots
    are read by `ORDER_ID` and the phrase lists `slot_values` (`slot_values_of(items_file)`; by
    default the embedded shop's products, payment methods, promo codes and categories).
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
    extractor = SlotExtractor({"order_id": ORDER_ID}, slot_values or slot_values_of(None))
    model = build_reply_model(load_encoder(encoder), bank, sequence_length, slot_extractor=extractor,
                              threshold=threshold, train_top_layers=train_top_layers)  # fmt: skip
    # No length bucketing: contexts are short alike, and the schedule needs the epoch's step count.
    train = dialogue_dataset(train_dialogues, batch_size, max_turns, shuffle=True, seed=seed, bucket=False)
    train = in_batch_targets(train)
    valid = in_batch_targets(dialogue_dataset(valid_dialogues, batch_size, max_turns, bucket=False))
    model.compile(
        optimizer=make_optimizer(learning_rate, total_steps=int(train.cardinality()) * epochs),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("in_batch_accuracy")],
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
    seed: int = 0,
) -> dict:
    """The dual encoder beside a TF-IDF baseline (fitted on `train_file`) on labelled dialogues.

    Retrieval: Recall@1, Recall@5 and MRR of the reference reply among `candidates` (it and
    others drawn from the distinct references of `data_file`, topped up with training replies when
    it has fewer). Generation-style: BLEU and ROUGE-L
    of the reply each method picks from the bank (slots filled from the conversation) against the
    reference. Also the fallback rate and `examples` exchanges. Writes `reply_metrics.json`.
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

    chosen = _batched_replies(model, contexts)
    bank_texts = [r["text"] for r in model.reply_bank]
    baseline = model.choose_replies(tf.constant(contexts), tfidf.scores(contexts, bank_texts), k=1)
    baseline_replies = [r.decode() for r in baseline["replies"].numpy()[:, 0]]
    shown = zip(contexts[:examples], chosen["reply"], chosen["score"], references)
    result = {
        "dual_encoder": {
            **retrieval_metrics(model_scores),
            **text_metrics(chosen["reply"], references),
            "fallback_rate": float(np.mean(chosen["fallback"])),
        },
        "tfidf": {**retrieval_metrics(baseline_scores), **text_metrics(baseline_replies, references)},
        "examples": [{"context": c, "reply": r, "score": s, "reference": ref} for c, r, s, ref in shown],
        "data_file": str(data_file),
        "dialogues": len(dialogues),
        "distinct_replies": len(pool),
    }
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "reply_metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def _batched_replies(model: ReplyModel, contexts: list[str], batch_size: int = 128) -> dict[str, list]:
    bank = model.bank_vectors()
    reply = tf.function(lambda c: model.reply(c, k=1, bank_vectors=bank), reduce_retracing=True)
    out = {"reply": [], "score": [], "fallback": []}
    for i in range(0, len(contexts), batch_size):
        part = reply(tf.constant(contexts[i : i + batch_size]))
        out["reply"] += [r.decode() for r in part["reply"].numpy()]
        out["score"] += [float(s) for s in part["scores"].numpy()[:, 0]]
        out["fallback"] += [bool(f) for f in part["fallback"].numpy()]
    return out
