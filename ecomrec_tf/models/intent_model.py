"""Intent model: raw text -> TextPreprocessor -> BERT encoder -> IntentHead."""

from __future__ import annotations

import keras
import tensorflow as tf

from ecomrec_tf import encoders
from ecomrec_tf.heads import IntentHead
from ecomrec_tf.models.text_model import TextModel, feature_inputs
from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.serialization import deserialize_objects, serialize_objects


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class IntentModel(TextModel):
    """Classifies shopping queries and customer messages into intents.

    Inputs are raw strings; outputs are `probabilities` over `labels` and an L2-normalised
    `intent_vector`. Training targets are label ids for `probabilities`.

    Args:
        backbone: keras-hub `BertBackbone`.
        preprocessor: `TextPreprocessor` for the backbone's vocabulary.
        labels: intent names; output `i` of `probabilities` is `labels[i]`.
        vector_dim: size of the intent vector.
        dropout: head dropout while training.
        train_top_layers: train only the top K encoder layers (see
            `encoders.train_top_layers`); None trains the whole encoder. Part of the config, so a
            saved model reloads with the same weights trainable.
        lora_rank: train rank-`lora_rank` LoRA factors in the encoder's attention instead of its
            weights (see `encoders.enable_lora`); the head trains fully.

    Example:
        >>> from ecomrec_tf.encoders import load_encoder
        >>> encoder = load_encoder("tiny")
        >>> model = IntentModel(encoder.backbone, TextPreprocessor(encoder.tokenizer, 32),
        ...                     labels=["order_status", "refund"])
        >>> model.predict(["where is my parcel"], verbose=0)["probabilities"].shape
        (1, 2)
    """

    target_output = "probabilities"

    def __init__(
        self,
        backbone,
        preprocessor,
        labels,
        vector_dim: int = 128,
        dropout: float = 0.1,
        train_top_layers: int | None = None,
        lora_rank: int | None = None,
        **kwargs,
    ):
        labels = [str(label) for label in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be at least two distinct names, got {labels}")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = IntentHead(len(labels), vector_dim=vector_dim, dropout=dropout, name="intent_head")
        if lora_rank and train_top_layers is not None:
            raise ValueError("train_top_layers and lora_rank exclude each other: LoRA freezes the encoder")
        if lora_rank:
            encoders.enable_lora(backbone, lora_rank)
        else:
            encoders.train_top_layers(backbone, train_top_layers)

        # === Functional Model ===
        features = feature_inputs()
        sequence_output = backbone(features)["sequence_output"]
        self.core = keras.Model(features, self.head(sequence_output, features["padding_mask"]), name="core")
        text = keras.Input(shape=(), dtype="string", name="text")
        super().__init__(inputs=text, outputs=self.core(preprocessor(text)), **kwargs)

        # === Config ===
        self.labels = labels
        self.vector_dim = vector_dim
        self.dropout = dropout
        self.train_top_layers = train_top_layers
        self.lora_rank = lora_rank

    def serving_signatures(self):
        """`serving_default(text) -> label, label_id, probabilities, intent_vector` for export."""
        labels = tf.constant(self.labels)

        def serve(text):
            outputs = self(text, training=False)
            label_id = tf.argmax(outputs["probabilities"], axis=-1, output_type=tf.int32)
            return {
                "label": tf.gather(labels, label_id),
                "label_id": label_id,
                "probabilities": outputs["probabilities"],
                "intent_vector": outputs["intent_vector"],
            }

        return {"serving_default": (serve, [tf.TensorSpec([None], tf.string, name="text")])}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **serialize_objects(backbone=self.backbone, preprocessor=self.preprocessor),
            "labels": self.labels,
            "vector_dim": self.vector_dim,
            "dropout": self.dropout,
            "train_top_layers": self.train_top_layers,
            "lora_rank": self.lora_rank,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_objects(config, "backbone", "preprocessor"))


def build_intent_model(encoder, labels, sequence_length: int = 128, **kwargs) -> IntentModel:
    """An `IntentModel` on an `ecomrec_tf.encoders.Encoder`."""
    preprocessor = TextPreprocessor(encoder.tokenizer, sequence_length=sequence_length)
    return IntentModel(encoder.backbone, preprocessor, labels, **kwargs)
