"""Dialogue-reply metrics: retrieval among candidates (Recall@k, MRR), BLEU and ROUGE-L against references,
and a TF-IDF retrieval baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.feature_extraction.text import TfidfVectorizer


def candidate_sets(correct: Sequence[int], pool_size: int, size: int = 100, seed: int = 0) -> np.ndarray:
    """For each example, `size` candidate indices into a pool of replies: its correct one first, then
    `size - 1` distinct others drawn at random (fewer when the pool is smaller).

    Returns:
        int array `(examples, min(size, pool_size))`; column 0 holds the correct index.
    """
    rng = np.random.default_rng(seed)
    size = min(size, pool_size)
    rows = []
    for index in correct:
        others = rng.choice(pool_size - 1, size - 1, replace=False)
        others = others + (others >= index)  # skip the correct one
        rows.append(np.concatenate([[index], others]))
    return np.asarray(rows, dtype=np.int64)


def retrieval_metrics(scores: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k and MRR when column 0 of `scores` `(examples, candidates)` is the correct reply.

    Ties count against the model (the correct reply ranks below every candidate scoring the same), so a
    constant scorer gets Recall@1 0, not 1.
    """
    scores = np.asarray(scores, dtype=float)
    rank = 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)  # 1 = best
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
