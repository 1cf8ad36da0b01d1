"""Trainable models: encoder + preprocessor + head, as Keras functional models."""

from ecomrec_tf.models.ensemble import IntentEnsemble, PurchaseEnsemble, build_ensemble
from ecomrec_tf.models.intent_model import IntentModel, build_intent_model
from ecomrec_tf.models.purchase_model import PurchaseModel, build_purchase_model, top_k_items
from ecomrec_tf.models.reply_model import ReplyModel, build_reply_model
from ecomrec_tf.models.shop_assistant import ShopAssistant
from ecomrec_tf.models.text_model import TextModel, strings_to_tensors, training_view

__all__ = [
    "IntentEnsemble",
    "IntentModel",
    "PurchaseEnsemble",
    "PurchaseModel",
    "ReplyModel",
    "ShopAssistant",
    "TextModel",
    "build_ensemble",
    "build_intent_model",
    "build_purchase_model",
    "build_reply_model",
    "strings_to_tensors",
    "top_k_items",
    "training_view",
]
