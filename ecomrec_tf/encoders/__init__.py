"""Pretrained and random-init BERT encoders."""

from ecomrec_tf.encoders.bert_encoder import (
    PRESETS,
    Encoder,
    EncoderError,
    from_pretrained,
    load_encoder,
    minilm_path,
)

__all__ = ["PRESETS", "Encoder", "EncoderError", "from_pretrained", "load_encoder", "minilm_path"]
