"""Dialogue-reply model: a dual encoder (context tower, reply tower) on the shared BERT encoder, and
retrieval from a bank of vetted replies whose slots are filled only from the conversation."""

from __future__ import annotations

import string

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf import encoders
from ecomrec_tf.heads.in_batch_similarity import InBatchSimilarity
from ecomrec_tf.models.text_model import TextModel
from ecomrec_tf.preprocessing import SlotExtractor, TextPreprocessor
from ecomrec_tf.serialization import deserialize_objects, serialize_objects

FALLBACK = "I'm connecting you with a member of our team now; the wait is usually under 5 minutes."


def template_parts(templates: list[str], slots: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits templates at their `{slot}` fields for in-graph filling.

    Returns:
        `(segments (R, M) str, fields (R, M) int, needs (R, S) bool)`: template r is
        `segments[r, 0] + value(fields[r, 0]) + segments[r, 1] + ...`, where field `S` (one past the
        last slot) is the empty value; `needs[r, s]` says template r has slot s.

    Raises:
        ValueError: naming a template with a slot not in `slots`, or a malformed field.
    """
    parsed = []
    for template in templates:
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as error:
            raise ValueError(f"reply template {template!r}: {error}") from None
        unknown = {name for _, name, _, _ in parts if name and name not in slots}
        if unknown:
            raise ValueError(f"reply template {template!r} has slots {sorted(unknown)} with no extractor")
        parsed.append([(text, slots.index(name) if name else len(slots)) for text, name, _, _ in parts])
    width = max(len(p) for p in parsed)
    segments = np.full((len(parsed), width), "", dtype=object)
    fields = np.full((len(parsed), width), len(slots), dtype=np.int32)
    needs = np.zeros((len(parsed), len(slots)), dtype=bool)
    for r, parts in enumerate(parsed):
        for i, (text, field) in enumerate(parts):
            segments[r, i], fields[r, i] = text, field
            if field < len(slots):
                needs[r, field] = True
    return segments, fields, needs


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class ReplyModel(TextModel):
    """Scores customer-service replies for a conversation, and answers from a vetted reply bank.

    A context tower and a reply tower share the BERT encoder (mean-pooled tokens, then each its own
    projection to an L2-normalised vector); trained with in-batch negatives and a learned
    temperature (`InBatchSimilarity`). Inputs (training): `context` (the last turns with speaker
    markers, `data.task_datasets.dialogue_context`) and `reply`; target: each row's own index in
    the batch, for `logits`.

    `reply(contexts)` answers from `reply_bank` (templates with `{slot}` fields): slots are read from
    the conversation by `slot_extractor`, a template whose slots cannot all be filled is skipped,
    and below `threshold` cosine the safe `fallback` (hand-over to a person) answers instead.

    Args:
        backbone: keras-hub `BertBackbone`.
        preprocessor: `TextPreprocessor` for replies; contexts get a copy that truncates from the
            start (the oldest turns), so the customer's latest message always counts.
        reply_bank: vetted replies, `[{"text": template, "intent": name}, ...]`.
        slot_extractor: `SlotExtractor` for the bank's slots (None: templates must have no slots).
        vector_dim: size of the context and reply vectors.
        threshold: lowest cosine that answers from the bank.
        fallback: the reply below `threshold`.
        train_top_layers: train only the top K encoder layers; None trains all.
    """

    target_output = "logits"

    def __init__(
        self,
        backbone,
        preprocessor,
        reply_bank: list[dict],
        slot_extractor: SlotExtractor | None = None,
        vector_dim: int = 128,
        threshold: float = 0.3,
        fallback: str = FALLBACK,
        train_top_layers: int | None = None,
        **kwargs,
    ):
        if not reply_bank:
            raise ValueError("reply_bank must hold at least one reply")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.slot_extractor = slot_extractor or SlotExtractor()
        # Long conversations lose their oldest tokens, never the customer's latest turn.
        self.context_preprocessor = TextPreprocessor(
            preprocessor.tokenizer,
            preprocessor.sequence_length,
            truncate="start",
            name="context_preprocessor",
        )
        encoders.train_top_layers(backbone, train_top_layers)
        self.pooling = keras.layers.GlobalAveragePooling1D()
        self.context_projection = keras.layers.Dense(vector_dim, name="context_projection")
        self.reply_projection = keras.layers.Dense(vector_dim, name="reply_projection")
        self.similarity = InBatchSimilarity(name="similarity")

        # === Functional Model ===
        inputs = {
            "context": keras.Input((), dtype="string", name="context"),
            "reply": keras.Input((), dtype="string", name="reply"),
        }
        context_vector = self.embed_contexts(inputs["context"])
        reply_vector = self.embed_replies(inputs["reply"])
        outputs = {
            "context_vector": context_vector,
            "reply_vector": reply_vector,
            "logits": self.similarity(context_vector, reply_vector, inputs["reply"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.reply_bank = [{"text": str(r["text"]), "intent": str(r.get("intent") or "")} for r in reply_bank]
        self.vector_dim = vector_dim
        self.threshold = threshold
        self.fallback = fallback
        self.train_top_layers = train_top_layers
        slots = list(self.slot_extractor.patterns) + list(self.slot_extractor.vocabularies)
        self._slots = slots
        self._parts = template_parts([r["text"] for r in self.reply_bank], slots)

    def _encode(self, texts, preprocessor, projection, training=None):
        features = preprocessor(texts)
        tokens = self.backbone(features, training=training)["sequence_output"]
        pooled = self.pooling(tokens, mask=features["padding_mask"])
        return keras.ops.normalize(keras.ops.cast(projection(pooled), "float32"), axis=-1)

    def embed_contexts(self, contexts, training=None):
        """Unit context vectors `(batch, vector_dim)` for raw context strings."""
        return self._encode(contexts, self.context_preprocessor, self.context_projection, training)

    def embed_replies(self, replies, training=None):
        """Unit reply vectors `(batch, vector_dim)` for raw reply strings (or templates)."""
        return self._encode(replies, self.preprocessor, self.reply_projection, training)

    def bank_vectors(self) -> tf.Tensor:
        """The reply bank's vectors `(replies, vector_dim)`, templates encoded as written."""
        return self.embed_replies(tf.constant([r["text"] for r in self.reply_bank]))

    def reply(self, contexts, k: int = 5, bank_vectors=None) -> dict[str, tf.Tensor]:
        """The best `k` fillable replies from the bank for each context, slots filled.

        Returns a dict: `replies` `(batch, k)` filled texts (the best first; "" past the fillable
        ones), `scores` `(batch, k)` cosines (-1 past them), `reply_ids` `(batch, k)` bank indices
        (-1 past them), `reply` `(batch,)` the answer (the fallback when the best score is below
        `threshold`), `fallback` `(batch,)` bool, and each slot's extracted value.
        """
        contexts = tf.convert_to_tensor(contexts, tf.string)
        bank = self.bank_vectors() if bank_vectors is None else bank_vectors
        scores = tf.matmul(self.embed_contexts(contexts), bank, transpose_b=True)  # (B, R)
        return self.choose_replies(contexts, scores, k)

    def choose_replies(self, contexts, scores, k: int = 5) -> dict[str, tf.Tensor]:
        """Top-`k` fillable bank replies by any `scores` `(batch, replies)` (the model's, or a baseline's)."""
        contexts = tf.convert_to_tensor(contexts, tf.string)
        scores = tf.cast(scores, tf.float32)
        values = self.slot_extractor(contexts)
        value_matrix = tf.stack([values[s] for s in self._slots] + [tf.fill(tf.shape(contexts), "")], axis=1)
        have = tf.strings.length(value_matrix[:, :-1]) > 0  # (B, S)
        segments, fields, needs = (tf.constant(p) for p in self._parts)
        missing = tf.logical_and(needs[None], tf.logical_not(have[:, None, :]))  # (B, R, S)
        fillable = tf.logical_not(tf.reduce_any(missing, axis=-1))  # (B, R)
        masked = tf.where(fillable, scores, -2.0)
        top, ids = tf.math.top_k(masked, k=min(k, len(self.reply_bank)))  # (B, k)
        valid = top > -2.0
        chosen_values = tf.gather(value_matrix, tf.gather(fields, ids), batch_dims=1)  # (B, k, M)
        pieces = tf.stack([tf.gather(segments, ids), chosen_values], axis=-1)  # (B, k, M, 2)
        filled = tf.strings.reduce_join(tf.reshape(pieces, tf.concat([tf.shape(ids), [-1]], 0)), axis=-1)
        replies = tf.where(valid, filled, "")
        use_fallback = tf.logical_or(~valid[:, 0], top[:, 0] < self.threshold)
        return {
            "replies": replies,
            "scores": tf.where(valid, top, -1.0),
            "reply_ids": tf.where(valid, ids, -1),
            "reply": tf.where(use_fallback, self.fallback, replies[:, 0]),
            "fallback": use_fallback,
            **{f"slot_{name}": value for name, value in values.items()},
        }

    def serving_signatures(self, k: int = 5):
        """`reply` (= `serving_default`), `embed_context`, `embed_reply`; raw strings in.

        The reply bank's vectors are computed now and stored in the SavedModel as constants: after
        changing the bank (or the weights), export again.
        """
        bank = tf.constant(self.bank_vectors())
        text = tf.TensorSpec([None], tf.string, name="context")

        def reply(context):
            return self.reply(context, k=k, bank_vectors=bank)

        def embed_context(context):
            return {"context_vector": self.embed_contexts(context)}

        def embed_reply(reply):
            return {"reply_vector": self.embed_replies(reply)}

        return {
            "serving_default": (reply, [text]),
            "reply": (reply, [text]),
            "embed_context": (embed_context, [text]),
            "embed_reply": (embed_reply, [tf.TensorSpec([None], tf.string, name="reply")]),
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **serialize_objects(
                backbone=self.backbone, preprocessor=self.preprocessor, slot_extractor=self.slot_extractor
            ),
            "reply_bank": self.reply_bank,
            "vector_dim": self.vector_dim,
            "threshold": self.threshold,
            "fallback": self.fallback,
            "train_top_layers": self.train_top_layers,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_objects(config, "backbone", "preprocessor", "slot_extractor"))


def build_reply_model(encoder, reply_bank: list[dict], sequence_length: int = 128, **kwargs) -> ReplyModel:
    """A `ReplyModel` on an `ecomrec_tf.encoders.Encoder`."""
    return ReplyModel(
        encoder.backbone, TextPreprocessor(encoder.tokenizer, sequence_length), reply_bank, **kwargs
    )
