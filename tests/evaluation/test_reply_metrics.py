import numpy as np
import pytest

from ecomrec_tf.evaluation.reply import (
    Bm25Retriever,
    RetrievalSet,
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
    sets = candidate_sets([0, 1], pool_size=10, size=100, also_right=[{1, 2}, set()])
    assert sets.shape == (2, 8) and not {1, 2} & set(sets[0]) and sets[1, 0] == 1


def test_retrieval_metrics_by_hand():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0],  # rank 1
            [0.5, 0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # rank 2
            [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.0],  # rank 6
            [0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],  # a tie of two: the expected rank 1.5
        ]
    )
    result = retrieval_metrics(scores)
    assert result["recall@1"] == 0.25 and result["recall@5"] == 0.75
    assert result["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 6 + 1 / 1.5) / 4)
    constant = retrieval_metrics(np.zeros((3, 100)))  # a random guess: the middle of 100
    assert constant["recall@1"] == 0.0 and constant["mrr"] == pytest.approx(1 / 50.5)


def test_retrieval_sets_draw_other_replies_and_never_one_that_is_also_right():
    dialogues = [{"context": ["tell me a joke"], "reply": f"joke {i}"} for i in range(3)]
    dialogues += [{"context": [f"q{i}"], "reply": f"a{i}"} for i in range(5)]
    train = [{"context": ["x"], "reply": f"train {i}"} for i in range(50)]
    retrieval = RetrievalSet(dialogues, train, candidates=20, seed=0)
    assert len(retrieval.pool) == 20 and retrieval.sets.shape == (8, 18)  # 2 other jokes are excluded
    pool = np.array(retrieval.pool)
    for row, dialogue in zip(retrieval.sets, dialogues):
        assert pool[row[0]] == dialogue["reply"]
        if dialogue["context"] == ["tell me a joke"]:
            assert not any(p.startswith("joke") for p in pool[row[1:]])
    topped_up = [p for p in retrieval.pool if p.startswith("train")]
    assert topped_up != [f"train {i}" for i in range(12)]  # drawn at random, not the first ones


def test_bm25_by_hand():
    bm25 = Bm25Retriever(["red shoes", "blue shoes", "a red kettle for tea"], k1=1.5, b=0.75)
    scores = bm25.scores(["red"], ["red shoes", "blue shoes"])
    idf = np.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # "red" is in 2 of 3 documents
    mean_length = (2 + 2 + 5) / 3  # words per document
    expected = idf * 2.5 / (1 + 1.5 * (1 - 0.75 + 0.75 * 2 / mean_length))
    np.testing.assert_allclose(scores, [[expected, 0.0]], rtol=1e-6)


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
