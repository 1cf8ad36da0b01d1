"""Task heads on top of a BERT encoder's outputs."""

from ecomrec_tf.heads.intent_head import IntentHead

__all__ = ["IntentHead"]
