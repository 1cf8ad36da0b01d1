"""Trainable models: encoder + preprocessor + head, as Keras functional models."""

from ecomrec_tf.models.intent_model import IntentModel, build_intent_model
from ecomrec_tf.models.text_model import TextModel, strings_to_tensors

__all__ = ["IntentModel", "TextModel", "build_intent_model", "strings_to_tensors"]
