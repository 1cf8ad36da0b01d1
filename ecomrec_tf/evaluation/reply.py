"""Dialogue-reply metrics: retrieval among candidates (Recall@k, MRR), BLEU and ROUGE-L against references,
TF-IDF and BM25 retrieval baselines, and `evaluate_reply`, which scores a reply model beside them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sacrebleu
import tensorflow as tf
from rouge_score import rouge_scorer
from sklearn.feature_extraction.text import TfidfVectorizer

from ecomrec_tf.data.readers import DataError, read_dialogues
from ecomrec_tf.data.task_datasets import dialogue_context
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.encoders.sentence_encoder import encode_in_batches

if TYPE_CHECKING:
    from ecomrec_tf.models.reply_model import ReplyModel


def candidate_sets(
    correct: Sequence[int],
    pool_size: int,
    size: int = 100,
    seed: int = 0,
    also_right: Sequence[set[int]] | None = None,
) -> np.ndarray:
    """For each example, `size` candidate indices into a pool of replies: its correct one first, then
    `size - 1` distinct others drawn at random, never one in `also_right[i]` (other replies the same
    context has: they would be right too). Every row has the same width: the smallest pool any row
    can draw from, when that is under `size`.

    Returns:
        int array `(examples, width)`; column 0 holds the correct index.
    """
    rng = np.random.default_rng(seed)
    also_right = also_right or [set()] * len(correct)
    size = min([size] + [pool_size - len(right - {index}) for index, right in zip(correct, also_right)])
    rows = []
    for index, right in zip(correct, also_right):
        allowed = np.setdiff1d(
            np.arange(pool_size), np.fromiter(right | {index}, np.int64, len(right | {index}))
        )
        rows.append(np.concatenate([[index], rng.choice(allowed, size - 1, replace=False)]))
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), size)


def retrieval_metrics(scores: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k and MRR when column 0 of `scores` `(examples, candidates)` is the correct reply.

    Ties count at their expected rank (the correct reply in the middle of the candidates scoring
    the same), so a constant scorer gets the rank of a random guess and Recall@1 0, not 1.
    """
    scores = np.asarray(scores, dtype=float)
    above = (scores[:, 1:] > scores[:, :1]).sum(axis=1)
    tied = (scores[:, 1:] == scores[:, :1]).sum(axis=1)
    rank = 1 + above + tied / 2  # 1 = best
    result = {f"recall@{k}": float(np.mean(rank <= k)) for k in ks}
    result["mrr"] = float(np.mean(1.0 / rank))
    result["candidates"] = int(scores.shape[1])
    result["examples"] = int(scores.shape[0])
    return result


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenisation, case-insensitive: our encoders are uncased), 0-100."""
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=True).score)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure (rouge-score, stemmed), 0-1."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references)]
    return float(np.mean(scores)) if scores else float("nan")


def text_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """BLEU, ROUGE-L and exact-match rate (case-insensitive) of replies against references."""
    exact = (
        np.mean([h.strip().lower() == r.strip().lower() for h, r in zip(hypotheses, references)])
        if references
        else np.nan
    )
    return {"bleu": bleu(hypotheses, references), "rouge_l": rouge_l(hypotheses, references),
            "exact_match": float(exact)}  # fmt: skip


class RetrievalSet:
    """Dialogues whose reference reply is ranked among candidates: the shared protocol of evaluation
    and of validation during training.

    Each reference competes with `candidates - 1` others drawn (seeded) from the distinct
    references of `dialogues`, topped up with training replies drawn at random when there are
    fewer, and never a reply the same context also has (it would be right too).

    Args:
        dialogues: `{context, reply}` records to rank for.
        train_dialogues: the training records (replies for the top-up).
        max_turns: context turns kept, as in training.
    """

    def __init__(self, dialogues: list[dict], train_dialogues: list[dict], max_turns: int = 3,
                 candidates: int = 100, seed: int = 0):  # fmt: skip
        from ecomrec_tf.data.task_datasets import dialogue_context

        self.contexts = [dialogue_context(d["context"], max_turns) for d in dialogues]
        self.references = [d["reply"] for d in dialogues]
        pool = sorted(set(self.references))
        extra = sorted({d["reply"] for d in train_dialogues} - set(pool))
        rng = np.random.default_rng(seed)
        pool += [extra[i] for i in rng.permutation(len(extra))[: max(candidates - len(pool), 0)]]
        if len(pool) < 2:
            raise ValueError("ranking needs at least two distinct replies")
        self.pool = pool
        index = {reply: i for i, reply in enumerate(pool)}
        by_context: dict[str, set[int]] = {}
        for context, reply in zip(self.contexts, self.references):
            by_context.setdefault(context, set()).add(index[reply])
        correct = [index[r] for r in self.references]
        also_right = [by_context[c] - {i} for c, i in zip(self.contexts, correct)]
        self.sets = candidate_sets(correct, len(pool), candidates, seed, also_right)

    def scores(self, context_vectors: np.ndarray, pool_vectors: np.ndarray) -> np.ndarray:
        """Candidate scores `(dialogues, candidates)` (column 0 the reference) from unit vectors."""
        return np.take_along_axis(np.asarray(context_vectors) @ np.asarray(pool_vectors).T, self.sets, axis=1)

    def pool_scores(self, all_scores: np.ndarray) -> np.ndarray:
        """Candidate scores from a `(dialogues, pool)` score matrix (e.g. a baseline's)."""
        return np.take_along_axis(np.asarray(all_scores), self.sets, axis=1)

    def metrics(self, embed_contexts, embed_replies) -> dict[str, float]:
        """`retrieval_metrics` of an encoder pair (strings -> unit vectors, e.g. tf.functions)."""
        from ecomrec_tf.encoders.sentence_encoder import encode_in_batches

        contexts = encode_in_batches(embed_contexts, self.contexts)
        return retrieval_metrics(self.scores(contexts, encode_in_batches(embed_replies, self.pool)))


class Bm25Retriever:
    """The second baseline: Okapi BM25 (`k1`, `b`) of the context's words against each reply,
    with document frequencies and the mean length from `documents` (the training replies)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75):
        from sklearn.feature_extraction.text import CountVectorizer

        self.vectorizer = CountVectorizer(token_pattern=r"(?u)\b\w+\b").fit(list(documents))
        counts = self.vectorizer.transform(list(documents))
        n, frequency = counts.shape[0], np.asarray((counts > 0).sum(axis=0)).ravel()
        self.idf = np.log(1 + (n - frequency + 0.5) / (frequency + 0.5))
        self.mean_length = max(float(counts.sum()) / max(n, 1), 1e-9)
        self.k1, self.b = k1, b

    def scores(self, contexts: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        """BM25 scores `(contexts, replies)`; words outside the training vocabulary count for nothing."""
        counts = self.vectorizer.transform(list(replies)).toarray().astype(float)  # (R, V)
        length = counts.sum(axis=1, keepdims=True)
        saturation = self.k1 * (1 - self.b + self.b * length / self.mean_length)
        weight = counts * (self.k1 + 1) / (counts + saturation)
        query = (self.vectorizer.transform(list(contexts)) > 0).astype(float)  # (C, V)
        return np.asarray(query @ (weight * self.idf).T)


class TfidfRetriever:
    """The baseline: replies scored by TF-IDF cosine between the context and each reply text.

    Fitted on training contexts and replies (word 1-2 grams, sublinear term frequency), so the
    vocabulary is the shop's.
    """

    def __init__(self, texts: Sequence[str]):
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit(list(texts))

    def scores(self, contexts: Sequence[str], replies: Sequence[str]) -> np.ndarray:
        """Cosine similarities `(contexts, replies)`."""
        return (
            self.vectorizer.transform(list(contexts)) @ self.vectorizer.transform(list(replies)).T
        ).toarray()


def zero_shot_encoders(encoder: str | Path, sequence_length: int = 96):
    """`(embed_contexts, embed_replies)` of a pretrained encoder as it comes, mean-pooled and
    L2-normalised (contexts truncated from the start, as the reply model's): the retrieval a user gets
    for free, which training must beat."""
    from ecomrec_tf.encoders.sentence_encoder import SentenceEncoder
    from ecomrec_tf.preprocessing import TextPreprocessor

    loaded = load_encoder(encoder)

    def embed(truncate: str):
        layer = SentenceEncoder(
            loaded.backbone, TextPreprocessor(loaded.tokenizer, sequence_length, truncate)
        )
        return tf.function(
            lambda texts: tf.math.l2_normalize(layer(texts)[0], axis=-1), reduce_retracing=True
        )

    return embed("start"), embed("end")


def evaluate_reply(
    model: ReplyModel,
    data_file: str | Path,
    train_file: str | Path,
    out_dir: str | Path | None = None,
    max_turns: int = 3,
    candidates: int = 100,
    examples: int = 5,
    decoding: str | None = None,
    zero_shot: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """The dual encoder beside TF-IDF and BM25 baselines (fitted on `train_file`) and, with
    `zero_shot` (an encoder name or folder, e.g. the one the model started from), that encoder
    untrained, on labelled dialogues; and the model's generated replies when it has a decoder.

    Retrieval (`evaluation.reply.RetrievalSet`): Recall@1, Recall@5 and MRR of the reference reply
    among `candidates`. Text: BLEU and ROUGE-L (case-insensitive: the encoder is uncased) against
    the reference of the reply each method picks from the bank (slots filled from the
    conversation), and of the generated reply (`decoding`: the model's default search, or
    `"greedy"`, `"beam"`, `"top_k"`). Also fallback rates and `examples` exchanges. Writes
    `reply_metrics.json`.
    """
    dialogues, train = read_dialogues(data_file), read_dialogues(train_file)
    try:
        retrieval = RetrievalSet(dialogues, train, max_turns, candidates, seed)
    except ValueError as error:
        raise DataError(f"{data_file}: {error}") from None
    contexts, references = retrieval.contexts, retrieval.references
    model_metrics = retrieval.metrics(
        tf.function(model.embed_contexts, reduce_retracing=True),
        tf.function(model.embed_replies, reduce_retracing=True),
    )
    train_contexts = [dialogue_context(d["context"], max_turns) for d in train]
    tfidf = TfidfRetriever(train_contexts + [d["reply"] for d in train])
    bm25 = Bm25Retriever([d["reply"] for d in train])

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
            **model_metrics,
            **text_metrics(chosen["reply"], references),
            "fallback_rate": float(np.mean(chosen["fallback"])),
        },
        "tfidf": {
            **retrieval_metrics(retrieval.pool_scores(tfidf.scores(contexts, retrieval.pool))),
            **text_metrics(baseline_replies, references),
        },
        "bm25": retrieval_metrics(retrieval.pool_scores(bm25.scores(contexts, retrieval.pool))),
        "examples": shown,
        "data_file": str(data_file),
        "dialogues": len(dialogues),
        "distinct_replies": len(retrieval.pool),
    }
    if zero_shot is not None:
        result["zero_shot"] = {
            **retrieval.metrics(*zero_shot_encoders(zero_shot, model.preprocessor.sequence_length)),
            "encoder": str(zero_shot),
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
