"""The layers on top of an encoder's outputs, which the models combine."""

from ecomrec_tf.heads.count_features import CountFeatures
from ecomrec_tf.heads.id_embedding import IdEmbedding
from ecomrec_tf.heads.in_batch_similarity import InBatchSimilarity
from ecomrec_tf.heads.intent_head import IntentHead
from ecomrec_tf.heads.item_fusion import ItemFusion
from ecomrec_tf.heads.pooled_projection import PooledProjection
from ecomrec_tf.heads.purchase_layers import Calibration
from ecomrec_tf.heads.reply_decoder import ReplyDecoder
from ecomrec_tf.heads.target_attention import TargetAttention

__all__ = [
    "Calibration",
    "CountFeatures",
    "IdEmbedding",
    "InBatchSimilarity",
    "IntentHead",
    "ItemFusion",
    "PooledProjection",
    "ReplyDecoder",
    "TargetAttention",
]
