import numpy as np
import pytest

from ecomrec_tf.evaluation.reply import (
    TfidfRetriever,
    bleu,
    candidate_sets,
    retrieval_metrics,
    rouge_l,
    text_metrics,
)


def test_candidate_sets_put_the_correct_reply_first_and_never_repeat():
    sets = candidate_sets([0, 5, 99], pool_size=100, size=100, seed=1)
    assert sets.shape == (3, 100)
    assert sets[:, 0].tolist() == [0, 5, 99]
    assert all(sorted(row) == list(range(100)) for row in sets)
    assert candidate_sets([2], pool_size=10, size=100).shape == (1, 10)


def test_retrieval_metrics_by_hand():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0],  # rank 1
            [0.5, 0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # rank 2
            [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.0],  # rank 6
            [0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],  # a tie counts against: rank 2
        ]
    )
    result = retrieval_metrics(scores)
    assert result["recall@1"] == 0.25 and result["recall@5"] == 0.75
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 2) / 4)
    assert retrieval_metrics(np.zeros((3, 100)))["recall@1"] == 0.0  # a constant scorer finds nothing


def test_bleu_and_rouge_l():
    references = ["your refund is issued within 5 working days", "we ship to most countries"]
    assert bleu(references, references) == pytest.approx(100.0)
    assert rouge_l(references, references) == pytest.approx(1.0)
    assert rouge_l(["completely unrelated words"], references[:1]) == 0.0
    partial = text_metrics(["your refund is issued soon", "we ship to most countries"], references)
    assert 0 < partial["bleu"] < 100 and 0 < partial["rouge_l"] < 1 and partial["exact_match"] == 0.5


def test_tfidf_baseline_prefers_the_reply_sharing_words():
    replies = [
        "Refunds are issued within 5 working days.",
        "We ship standard and express.",
        "Gift cards last 3 years.",
    ]
    retriever = TfidfRetriever(replies + ["where is my refund", "how do you ship"])
    scores = retriever.scores(["when do i get my refund", "do you ship abroad"], replies)
    assert scores.shape == (2, 3) and scores[0].argmax() == 0 and scores[1].argmax() == 1
