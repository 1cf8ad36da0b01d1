"""Dialogue-reply model: a dual encoder (context tower, reply tower) on the shared BERT encoder for
retrieval from a bank of vetted replies whose slots are filled only from the conversation, and
optionally a Transformer decoder that generates replies."""

from __future__ import annotations

import string

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from ecomrec_tf import encoders
from ecomrec_tf.compat import core_slice_update
from ecomrec_tf.heads.in_batch_similarity import InBatchSimilarity
from ecomrec_tf.heads.pooled_projection import PooledProjection
from ecomrec_tf.heads.reply_decoder import ReplyDecoder
from ecomrec_tf.models.text_model import TextModel
from ecomrec_tf.preprocessing import SlotExtractor, TextPreprocessor
from ecomrec_tf.serialization import deserialize_objects, serialize_objects

FALLBACK = "I'm connecting you with a member of our team now; the wait is usually under 5 minutes."
DECODINGS = ("greedy", "beam", "top_k")


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


def _numbers(texts) -> tf.SparseTensor:
    """Each text's runs of 3 or more digits, `(batch, runs)` sparse strings (for `tf.sets`)."""
    runs = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(texts, r"\D+", " ")))
    return tf.ragged.boolean_mask(runs, tf.strings.length(runs) >= 3).to_sparse()


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class ReplyModel(TextModel):
    """Scores customer-service replies for a conversation, answers from a vetted reply bank, and
    (with `decoder_layers`) writes replies of its own.

    A context tower and a reply tower share the BERT encoder (mean-pooled tokens, then each its own
    projection to an L2-normalised vector); trained with in-batch negatives and a learned
    temperature (`InBatchSimilarity`). Inputs (training): `context` (the last turns with speaker
    markers, `data.task_datasets.dialogue_context`) and `reply`; targets: `logits` each row's own
    index in the batch, and with a decoder `next_token_logits` the reply's next tokens
    (`generation_targets`, teacher forcing).

    `reply(contexts)` answers from `reply_bank` (templates with `{slot}` fields): slots are read from
    the conversation by `slot_extractor`, a template whose slots cannot all be filled is skipped,
    an `intent_model` can boost (`intent_weight`) or filter (`intent_filter`) replies by the
    predicted intent of the customer's latest turn, and below `threshold` cosine the safe
    `fallback` (hand-over to a person) answers instead. `generate(contexts)` decodes with
    keras-hub samplers (`greedy`, `beam`, `top_k`) inside the graph. Both answer with the fallback
    when the customer's latest turn has no letters or digits, or is mostly in a non-Latin script
    (the shop's languages are Latin-script; other-language text gets a person).

    Args:
        backbone: keras-hub `BertBackbone`.
        preprocessor: `TextPreprocessor` for replies; contexts get a copy that truncates from the
            start (the oldest turns), so the customer's latest message always counts.
        reply_bank: vetted replies, `[{"text": template, "intent": name}, ...]`.
        slot_extractor: `SlotExtractor` for the bank's slots (None: templates must have no slots).
        vector_dim: size of the context and reply vectors; None (the default) is the encoder's
            width, with both projections starting at the identity, so the untrained model scores
            replies by the pretrained encoder's own mean-pooled cosine (what a sentence-transformers
            checkpoint such as MiniLM was trained for) and training starts from that floor.
        threshold: lowest cosine that answers from the bank.
        fallback: the reply below `threshold`, and for unanswerable contexts.
        train_top_layers: train only the top K encoder layers; None trains all.
        decoder_layers: Transformer decoder blocks for generation; 0 builds a retrieval-only model.
        max_reply_length: most generated tokens.
        decoding: the `generate` signature's search: `"greedy"`, `"beam"` or `"top_k"`.
        num_beams: beams for `"beam"`.
        top_k: candidates per step for `"top_k"`.
        intent_model: optional trained `IntentModel` (frozen) whose labels name the bank's intents.
        intent_weight: added to a reply's score times the probability of its intent.
        intent_filter: with an intent model, replies whose intent has a probability below this are
            skipped (replies of intents the model does not know are kept); 0 filters nothing.
    """

    def __init__(
        self,
        backbone,
        preprocessor,
        reply_bank: list[dict],
        slot_extractor: SlotExtractor | None = None,
        vector_dim: int | None = None,
        threshold: float = 0.3,
        fallback: str = FALLBACK,
        train_top_layers: int | None = None,
        decoder_layers: int = 0,
        max_reply_length: int = 64,
        decoding: str = "beam",
        num_beams: int = 4,
        top_k: int = 10,
        intent_model=None,
        intent_weight: float = 0.0,
        intent_filter: float = 0.0,
        **kwargs,
    ):
        if not reply_bank:
            raise ValueError("reply_bank must hold at least one reply")
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
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
        width = vector_dim or backbone.hidden_dim
        start = "identity" if width == backbone.hidden_dim else "glorot_uniform"
        self.context_projection = PooledProjection(width, kernel_initializer=start, name="context_projection")
        self.reply_projection = PooledProjection(width, kernel_initializer=start, name="reply_projection")
        self.similarity = InBatchSimilarity(name="similarity")
        self.decoder = None
        if decoder_layers:
            self.decoder = ReplyDecoder(
                decoder_layers,
                backbone.num_heads,
                backbone.intermediate_dim,
                max_length=preprocessor.sequence_length,
                name="reply_decoder",
            )
            # Created here, not while tracing: top-k sampling keeps a seed variable.
            self.samplers = {
                "greedy": keras_hub.samplers.GreedySampler(),
                "beam": keras_hub.samplers.BeamSampler(num_beams=num_beams),
                "top_k": keras_hub.samplers.TopKSampler(k=top_k),
            }
            self.top_k_seed = self.samplers["top_k"].seed_generator
        self.intent_model = intent_model
        if intent_model is not None:
            intent_model.trainable = False

        # === Functional Model ===
        inputs = {
            "context": keras.Input((), dtype="string", name="context"),
            "reply": keras.Input((), dtype="string", name="reply"),
        }
        context_features = self.context_preprocessor(inputs["context"])
        context_tokens = self.backbone(context_features)["sequence_output"]
        reply_features = self.preprocessor(inputs["reply"])
        context_vector = self._project(context_tokens, context_features, self.context_projection)
        reply_vector = self._project(
            self.backbone(reply_features)["sequence_output"], reply_features, self.reply_projection
        )
        outputs = {
            "context_vector": context_vector,
            "reply_vector": reply_vector,
            "logits": self.similarity(context_vector, reply_vector, inputs["reply"]),
        }
        if self.decoder is not None:  # teacher forcing: token i predicts token i + 1
            outputs["next_token_logits"] = self._next_token_logits(
                reply_features["token_ids"][:, :-1],
                reply_features["padding_mask"][:, :-1],
                context_tokens,
                context_features["padding_mask"],
            )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.reply_bank = [{"text": str(r["text"]), "intent": str(r.get("intent") or "")} for r in reply_bank]
        self.vector_dim = vector_dim
        self.threshold = threshold
        self.fallback = fallback
        self.train_top_layers = train_top_layers
        self.decoder_layers = decoder_layers
        self.max_reply_length = min(max_reply_length, preprocessor.sequence_length)
        self.decoding = decoding
        self.num_beams = num_beams
        self.top_k = top_k
        self.intent_weight = intent_weight
        self.intent_filter = intent_filter
        slots = list(self.slot_extractor.patterns) + list(self.slot_extractor.vocabularies)
        self._slots = slots
        self._parts = template_parts([r["text"] for r in self.reply_bank], slots)
        if intent_model is not None:
            labels = list(intent_model.labels)
            self._bank_intents = np.array(
                [labels.index(r["intent"]) if r["intent"] in labels else -1 for r in self.reply_bank],
                np.int32,
            )

    @property
    def target_output(self):
        return ("logits", "next_token_logits") if self.decoder is not None else "logits"

    # --- retrieval ---------------------------------------------------------------------------------
    def _project(self, tokens, features, projection):
        return projection(tokens, features["padding_mask"])

    def _encode(self, texts, preprocessor, projection, training=None):
        features = preprocessor(texts)
        return self._project(
            self.backbone(features, training=training)["sequence_output"], features, projection
        )

    def embed_contexts(self, contexts, training=None):
        """Unit context vectors `(batch, vector_dim)` for raw context strings."""
        return self._encode(contexts, self.context_preprocessor, self.context_projection, training)

    def embed_replies(self, replies, training=None):
        """Unit reply vectors `(batch, vector_dim)` for raw reply strings (or templates)."""
        return self._encode(replies, self.preprocessor, self.reply_projection, training)

    def bank_vectors(self) -> tf.Tensor:
        """The reply bank's vectors `(replies, vector_dim)`, templates encoded as written."""
        return self.embed_replies(tf.constant([r["text"] for r in self.reply_bank]))

    def answerable(self, contexts) -> tf.Tensor:
        """`(batch,)` bool: the customer's latest turn has letters or digits, and at least half its
        letters are Latin-script. Contexts that are not get the fallback from `reply` and `generate`."""
        contexts = tf.convert_to_tensor(contexts, tf.string)
        latest = tf.strings.regex_replace(contexts, r"(?s)^.*\[customer\]", "")
        letters = tf.strings.length(tf.strings.regex_replace(latest, r"\PL", ""), unit="UTF8_CHAR")
        latin = tf.strings.length(tf.strings.regex_replace(latest, r"\P{Latin}", ""), unit="UTF8_CHAR")
        has_text = tf.strings.regex_full_match(latest, r"(?s).*[\pL\pN].*")
        return tf.logical_and(has_text, 2 * latin >= letters)

    def reply(self, contexts, k: int = 5, bank_vectors=None) -> dict[str, tf.Tensor]:
        """The best `k` fillable replies from the bank for each context, slots filled.

        Returns a dict: `replies` `(batch, k)` filled texts (the best first; "" past the fillable
        ones), `scores` `(batch, k)` (cosine, plus the intent boost; -1 past them), `reply_ids`
        `(batch, k)` bank indices (-1 past them), `reply` `(batch,)` the answer (the fallback when
        the best score is below `threshold` or the context is not `answerable`), `fallback`
        `(batch,)` bool, each slot's extracted value, and with an intent model `intent` and
        `intent_confidence`.
        """
        contexts = tf.convert_to_tensor(contexts, tf.string)
        bank = self.bank_vectors() if bank_vectors is None else bank_vectors
        scores = tf.matmul(self.embed_contexts(contexts), bank, transpose_b=True)  # (B, R)
        if self.intent_model is None:
            return self.choose_replies(contexts, scores, k)
        # The intent model reads single messages: give it the customer's latest turn.
        latest = tf.strings.strip(tf.strings.regex_replace(contexts, r"(?s)^.*\[customer\]", ""))
        probabilities = tf.cast(self.intent_model(latest, training=False)["probabilities"], tf.float32)
        known = self._bank_intents >= 0
        p_reply = tf.where(known, tf.gather(probabilities, np.maximum(self._bank_intents, 0), axis=1), 0.0)
        scores = scores + self.intent_weight * p_reply
        allowed = tf.logical_or(~known, p_reply >= self.intent_filter)  # (B, R)
        result = self.choose_replies(contexts, scores, k, allowed)
        result["intent"] = tf.gather(tf.constant(self.intent_model.labels), tf.argmax(probabilities, axis=-1))
        result["intent_confidence"] = tf.reduce_max(probabilities, axis=-1)
        return result

    def choose_replies(self, contexts, scores, k: int = 5, allowed=None) -> dict[str, tf.Tensor]:
        """Top-`k` fillable bank replies by any `scores` `(batch, replies)` (the model's, or a
        baseline's); `allowed` `(batch, replies)` bool can rule replies out."""
        contexts = tf.convert_to_tensor(contexts, tf.string)
        scores = tf.cast(scores, tf.float32)
        values = self.slot_extractor(contexts)
        value_matrix = tf.stack([values[s] for s in self._slots] + [tf.fill(tf.shape(contexts), "")], axis=1)
        have = tf.strings.length(value_matrix[:, :-1]) > 0  # (B, S)
        segments, fields, needs = (tf.constant(p) for p in self._parts)
        missing = tf.logical_and(needs[None], tf.logical_not(have[:, None, :]))  # (B, R, S)
        fillable = tf.logical_not(tf.reduce_any(missing, axis=-1))  # (B, R)
        if allowed is not None:
            fillable = tf.logical_and(fillable, allowed)
        masked = tf.where(fillable, scores, -1e9)
        top, ids = tf.math.top_k(masked, k=min(k, len(self.reply_bank)))  # (B, k)
        valid = top > -1e9
        chosen_values = tf.gather(value_matrix, tf.gather(fields, ids), batch_dims=1)  # (B, k, M)
        pieces = tf.stack([tf.gather(segments, ids), chosen_values], axis=-1)  # (B, k, M, 2)
        filled = tf.strings.reduce_join(tf.reshape(pieces, tf.concat([tf.shape(ids), [-1]], 0)), axis=-1)
        replies = tf.where(valid, filled, "")
        weak = tf.logical_or(~valid[:, 0], top[:, 0] < self.threshold)
        use_fallback = tf.logical_or(weak, ~self.answerable(contexts))
        return {
            "replies": replies,
            "scores": tf.where(valid, top, -1.0),
            "reply_ids": tf.where(valid, ids, -1),
            "reply": tf.where(use_fallback, self.fallback, replies[:, 0]),
            "fallback": use_fallback,
            **{f"slot_{name}": value for name, value in values.items()},
        }

    # --- generation --------------------------------------------------------------------------------
    def _hidden(self, token_ids, padding_mask, encoded, encoder_mask, training=None):
        embeddings = self.backbone.token_embedding(token_ids)
        return self.decoder(embeddings, padding_mask, encoded, encoder_mask, training=training)

    def _next_token_logits(self, token_ids, padding_mask, encoded, encoder_mask, training=None):
        hidden = self._hidden(token_ids, padding_mask, encoded, encoder_mask, training)
        # The output projection is the encoder's token embedding, transposed (tied weights).
        return keras.ops.cast(self.backbone.token_embedding(hidden, reverse=True), "float32")

    def generation_targets(self, replies) -> tf.Tensor:
        """Teacher-forcing targets `(batch, length)` for `next_token_logits`: each reply's tokens
        after `[CLS]`, ending in `[SEP]`, `[PAD]`-padded (the loss ignores the pad id)."""
        return self.preprocessor(replies)["token_ids"][:, 1:]

    def generate(self, contexts, decoding: str | None = None) -> dict[str, tf.Tensor]:
        """Writes a reply for each context: `reply` `(batch,)` text and `fallback` `(batch,)` bool.

        The fallback answers for contexts that are not `answerable`, when nothing but the end token
        came out, and when the text holds a number of 3+ digits that the conversation does not
        (an order number or amount would be invented).

        Args:
            contexts: raw context strings `(batch,)`.
            decoding: `"greedy"`, `"beam"` or `"top_k"`; default the model's `decoding`.
        """
        if self.decoder is None:
            raise ValueError("this ReplyModel has no decoder: build it with decoder_layers > 0 to generate")
        decoding = decoding or self.decoding
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        contexts = tf.convert_to_tensor(contexts, tf.string)
        features = self.context_preprocessor(contexts)
        encoded = self.backbone(features, training=False)["sequence_output"]
        tokenizer = self.preprocessor.tokenizer
        batch = tf.shape(contexts)[0]
        prompt = tf.concat(
            [
                tf.fill([batch, 1], tokenizer.cls_token_id),
                tf.fill([batch, self.max_reply_length - 1], tokenizer.pad_token_id),
            ],
            axis=1,
        )
        fixed = tf.concat(
            [tf.ones([batch, 1], tf.bool), tf.zeros([batch, self.max_reply_length - 1], tf.bool)], 1
        )

        def next_token(prompt, cache, index):
            self_caches, cross_caches, encoded, encoder_mask = cache
            # Feed the token at index - 1 (cached keys/values hold the ones before it).
            token = self.backbone.token_embedding(prompt[:, index - 1 : index])
            hidden, self_caches = self.decoder.step(
                token, index - 1, encoded, encoder_mask, self_caches, cross_caches
            )
            logits = self.backbone.token_embedding(hidden[:, 0], reverse=True)
            return tf.cast(logits, tf.float32), None, (self_caches, cross_caches, encoded, encoder_mask)

        # TF core ops for the cache and prompt updates, so TF Serving can load the traced graph.
        with core_slice_update():
            caches = self.decoder.start_cache(encoded, features["padding_mask"], self.max_reply_length)
            tokens = self.samplers[decoding](
                next_token,
                prompt,
                cache=(*caches, encoded, features["padding_mask"]),
                index=1,
                mask=fixed,
                stop_token_ids=[tokenizer.sep_token_id],
            )
        text = self._detokenize(tokens)
        # A number the conversation does not hold (an order number, an amount) would be invented.
        invented = tf.sets.size(tf.sets.difference(_numbers(text), _numbers(contexts))) > 0
        use_fallback = tf.strings.length(text) == 0
        use_fallback = tf.reduce_any(tf.stack([use_fallback, invented, ~self.answerable(contexts)]), axis=0)
        return {"reply": tf.where(use_fallback, self.fallback, text), "fallback": use_fallback}

    def _detokenize(self, tokens) -> tf.Tensor:
        """Generated ids `(batch, length)` (`[CLS]` first) -> readable text, up to the first `[SEP]`."""
        tokenizer = self.preprocessor.tokenizer
        ids = tokens[:, 1:]
        ended = tf.cumsum(tf.cast(ids == tokenizer.sep_token_id, tf.int32), axis=1) > 0
        special = [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.mask_token_id]
        keep = tf.logical_and(
            ~ended, tf.reduce_all(ids[..., None] != tf.constant(special, ids.dtype), axis=-1)
        )
        pieces = tf.ragged.boolean_mask(tf.gather(tf.constant(tokenizer.get_vocabulary()), ids), keep)
        text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
        # WordPiece joins, then the spacing an uncased tokenizer loses around punctuation.
        for pattern, rewrite in (
            (r" ##", ""),
            (r" ([.,!?;:%)])", r"\1"),
            (r"([#(]) ", r"\1"),
            (r"(\d)([.,]) (\d)", r"\1\2\3"),
            (r"(\w) ' (s|t|m|d|ll|re|ve)\b", r"\1'\2"),  # contractions: I'm, don't
            (r" ' ([^']*?) ' ", r" '\1' "),  # quotes: the 'Promo code' field
            (r"(\w) - (\w)", r"\1-\2"),
            (r"\bi\b", "I"),
        ):
            text = tf.strings.regex_replace(text, pattern, rewrite)
        first = tf.minimum(tf.strings.length(text), 1)  # 0 for an empty reply (substr would fail at 1)
        start, rest = tf.zeros_like(first), tf.fill(tf.shape(first), 1 << 20)
        return tf.strings.upper(tf.strings.substr(text, start, first)) + tf.strings.substr(text, first, rest)

    # --- export ------------------------------------------------------------------------------------
    def serving_signatures(self, k: int = 5):
        """`reply` (= `serving_default`), `embed_context`, `embed_reply`, and with a decoder `generate`;
        raw strings in.

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

        signatures = {
            "serving_default": (reply, [text]),
            "reply": (reply, [text]),
            "embed_context": (embed_context, [text]),
            "embed_reply": (embed_reply, [tf.TensorSpec([None], tf.string, name="reply")]),
        }
        if self.decoder is not None:
            signatures["generate"] = (self.generate, [text])
        return signatures

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **serialize_objects(
                backbone=self.backbone,
                preprocessor=self.preprocessor,
                slot_extractor=self.slot_extractor,
                intent_model=self.intent_model,
            ),
            "reply_bank": self.reply_bank,
            "vector_dim": self.vector_dim,
            "threshold": self.threshold,
            "fallback": self.fallback,
            "train_top_layers": self.train_top_layers,
            "decoder_layers": self.decoder_layers,
            "max_reply_length": self.max_reply_length,
            "decoding": self.decoding,
            "num_beams": self.num_beams,
            "top_k": self.top_k,
            "intent_weight": self.intent_weight,
            "intent_filter": self.intent_filter,
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            **deserialize_objects(config, "backbone", "preprocessor", "slot_extractor", "intent_model")
        )


def build_reply_model(encoder, reply_bank: list[dict], sequence_length: int = 128, **kwargs) -> ReplyModel:
    """A `ReplyModel` on an `ecomrec_tf.encoders.Encoder`."""
    return ReplyModel(
        encoder.backbone, TextPreprocessor(encoder.tokenizer, sequence_length), reply_bank, **kwargs
    )
