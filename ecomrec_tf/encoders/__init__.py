"""Pretrained and random-init BERT encoders."""

from ecomrec_tf.encoders.bert_encoder import (
    PRESETS,
    Encoder,
    EncoderError,
    from_pretrained,
    load_encoder,
    minilm_path,
    save_encoder,
)
from ecomrec_tf.encoders.freezing import enable_lora, train_top_layers
from ecomrec_tf.encoders.sentence_encoder import SentenceEncoder

__all__ = [
    "PRESETS",
    "SentenceEncoder",
    "Encoder",
    "EncoderError",
    "enable_lora",
    "from_pretrained",
    "load_encoder",
    "minilm_path",
    "save_encoder",
    "train_top_layers",
]
