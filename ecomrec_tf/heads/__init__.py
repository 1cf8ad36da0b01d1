"""Task heads on top of a BERT encoder's outputs."""

from ecomrec_tf.heads.intent_head import IntentHead
from ecomrec_tf.heads.target_attention import TargetAttention

__all__ = ["IntentHead", "TargetAttention"]
