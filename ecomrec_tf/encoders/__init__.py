"""Pretrained and random-init BERT encoders."""

from ecomrec_tf.encoders.bert_encoder import (
    PRESETS,
    Encoder,
    EncoderError,
    from_pretrained,
    load_encoder,
    minilm_path,
)
from ecomrec_tf.encoders.freezing import train_top_layers

__all__ = [
    "PRESETS",
    "Encoder",
    "EncoderError",
    "from_pretrained",
    "load_encoder",
    "minilm_path",
    "train_top_layers",
]
