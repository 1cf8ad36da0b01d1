import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.encoders import minilm_path
from ecomrec_tf.preprocessing import TextPreprocessor
from tests.helpers import assert_config_round_trip

# Shop strings that trip tokenizers: accents, emoji, CJK, glued model names, units, sizes, URLs,
# punctuation, control characters and odd whitespace.
TRICKY = [
    "Café crème, Größe 42, naïve résumé",
    "running shoes 👟🔥 for kids",
    "笔记本电脑 ノートパソコン 노트북",
    "iPhone15Pro case",
    "64GB ram laptop",
    "size 10.5 sneakers",
    "https://shop.example.com/p/123?ref=abc&utm=x",
    "WHERE IS MY ORDER #A-12345??",
    "don't can't l'oréal",
    "tab\tnew\nline  and  spaces",
    "a\u200bb zero-width, e\u0301 combining",
    "Ａｍａｚｏｎ full-width ℌ ①",
    "",
]


@pytest.fixture(scope="module")
def preprocessor(tiny_encoder):
    return TextPreprocessor(tiny_encoder.tokenizer, sequence_length=128)


def test_token_ids_equal_hugging_face_tokenizers(preprocessor):
    from tokenizers import Tokenizer

    oracle = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    oracle.no_padding()
    oracle.no_truncation()
    features = preprocessor(tf.constant(TRICKY))
    for i, text in enumerate(TRICKY):
        expected = oracle.encode(text).ids  # with [CLS] ... [SEP]
        row = features["token_ids"][i].numpy()
        length = int(features["padding_mask"][i].numpy().sum())
        assert row[:length].tolist() == expected, text
        assert (row[length:] == 0).all()


def test_pads_to_the_longest_text_in_the_batch(preprocessor):
    features = preprocessor(tf.constant(["red shoes", "where is my order"]))
    assert features["token_ids"].shape == (2, 6)
    np.testing.assert_array_equal(features["padding_mask"].numpy().sum(1), [4, 6])
    assert features["segment_ids"].numpy().sum() == 0
    assert features["token_ids"].dtype == tf.int32 and features["padding_mask"].dtype == tf.bool


def test_long_text_is_truncated_and_keeps_sep(tiny_encoder):
    features = TextPreprocessor(tiny_encoder.tokenizer, sequence_length=8)(tf.constant(["word " * 1000]))
    ids = features["token_ids"].numpy()[0]
    assert ids.shape == (8,)
    assert ids[0] == tiny_encoder.tokenizer.cls_token_id and ids[-1] == tiny_encoder.tokenizer.sep_token_id


def test_invalid_utf8_and_empty_strings_give_defined_tokens(preprocessor):
    features = preprocessor(tf.constant([b"\xff\xfe caf\xc3\xa9 \xc3", b"", b"   "]))
    ids = features["token_ids"].numpy()
    lengths = features["padding_mask"].numpy().sum(1)
    # invalid bytes are dropped, the valid "café" survives as "cafe"
    assert lengths.tolist() == [3, 2, 2]
    assert ids[1, :2].tolist() == [101, 102]


def test_rejects_non_string_input(preprocessor):
    with pytest.raises(TypeError, match="takes strings, got int32"):
        preprocessor(tf.constant([1, 2]))


def test_config_round_trip(preprocessor):
    assert_config_round_trip(preprocessor)


def test_conversations_can_lose_their_oldest_tokens_instead(tiny_encoder):
    text = tf.constant(["old " * 100 + "where is my order", "short"])
    end = TextPreprocessor(tiny_encoder.tokenizer, sequence_length=8)(text)["token_ids"].numpy()
    start = TextPreprocessor(tiny_encoder.tokenizer, sequence_length=8, truncate="start")(text)[
        "token_ids"
    ].numpy()
    tokenizer = tiny_encoder.tokenizer
    assert [tokenizer.id_to_token(int(i)) for i in start[0, 1:-1]] == [
        "old",
        "old",
        "where",
        "is",
        "my",
        "order",
    ]
    assert [tokenizer.id_to_token(int(i)) for i in end[0, 1:-1]] == ["old"] * 6
    np.testing.assert_array_equal(start[1], end[1])  # short texts are not cut at all
    with pytest.raises(ValueError, match="truncate must be"):
        TextPreprocessor(tiny_encoder.tokenizer, truncate="middle")


def test_the_fitted_sequence_length_holds_most_texts_whole(tiny_encoder):
    from ecomrec_tf.preprocessing.text_preprocessor import fitting_sequence_length

    texts = ["shoes " * n for n in range(1, 101)]  # n words -> n + 2 tokens with [CLS] and [SEP]
    length, cut = fitting_sequence_length(tiny_encoder.tokenizer, texts, percentile=95)
    assert length == 104 and cut == 0.0  # the 95th percentile, 97.05, rounded up to a multiple of 8
    length, cut = fitting_sequence_length(tiny_encoder.tokenizer, texts, limit=48)
    assert length == 48 and cut == pytest.approx(0.54)  # 54 texts need more than 48
    assert fitting_sequence_length(tiny_encoder.tokenizer, ["hi"])[0] == 8
