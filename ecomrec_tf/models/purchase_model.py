"""Purchase model: user history + candidate item (+ query, price) -> P(purchase), and candidate ranking."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from ecomrec_tf.encoders.sentence_encoder import SentenceEncoder
from ecomrec_tf.heads.target_attention import TargetAttention
from ecomrec_tf.models.text_model import TextModel
from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.serialization import deserialize_objects, serialize_objects

MODES = ("attention", "two_tower")


def raw_inputs() -> dict[str, keras.KerasTensor]:
    """Symbolic raw inputs: `history` (batch, items) item texts ("" pads), `item`, `query` ("" for none),
    `price` (NaN when unknown)."""
    return {
        "history": keras.Input((None,), dtype="string", name="history"),
        "item": keras.Input((), dtype="string", name="item"),
        "query": keras.Input((), dtype="string", name="query"),
        "price": keras.Input((), dtype="float32", name="price"),
    }


def vector_inputs(hidden_dim: int, intent_dim: int | None = None) -> dict[str, keras.KerasTensor]:
    """Symbolic inputs of `PurchaseModel.core`: what `PurchaseModel.vectorize` makes of the raw inputs."""
    inputs = {
        "history": keras.Input((None, hidden_dim), name="history"),
        "history_mask": keras.Input((None,), dtype="bool", name="history_mask"),
        "item": keras.Input((hidden_dim,), name="item"),
        "query": keras.Input((hidden_dim,), name="query"),
        "has_query": keras.Input((), dtype="bool", name="has_query"),
        "price": keras.Input((), name="price"),
    }
    if intent_dim:
        inputs["query_intent"] = keras.Input((intent_dim,), name="query_intent")
    return inputs


def _feed_forward(hidden, units: int, dropout: float, name: str) -> list[keras.layers.Layer]:
    """Dense-GELU-dropout layers then a linear `units` layer, applied to the last axis of any rank."""
    layers = []
    for i, width in enumerate(hidden):
        layers += [
            keras.layers.Dense(width, activation="gelu", name=f"{name}_{i}"),
            keras.layers.Dropout(dropout),
        ]
    return layers + [keras.layers.Dense(units, name=f"{name}_out")]


def _text_similarities(vectors):
    """Cosines of the encoder's own vectors: query-item (0 without a query), and the candidate's
    max and mean over the history (0 for a new user). `(batch, 3)`: relevance the frozen encoder
    already knows, which the towers need not relearn."""
    item = ops.normalize(vectors["item"], axis=-1)
    query = ops.sum(ops.normalize(vectors["query"], axis=-1) * item, axis=-1)
    query = query * ops.cast(vectors["has_query"], "float32")
    cosines = ops.einsum("bnh,bh->bn", ops.normalize(vectors["history"], axis=-1), item)  # (B, N)
    mask = ops.cast(vectors["history_mask"], "float32")
    count = ops.maximum(ops.sum(mask, axis=-1), 1.0)
    top = ops.max(ops.where(vectors["history_mask"], cosines, -1.0), axis=-1) * ops.minimum(count, 1.0)
    top = ops.where(ops.sum(mask, axis=-1) > 0, top, 0.0)
    return ops.stack([query, top, ops.sum(cosines * mask, axis=-1) / count], axis=-1)


def _apply(layers, x, training=None):
    for layer in layers:
        x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
    return x


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class Calibration(keras.layers.Layer):
    """Platt scaling `scale * logit + bias`, set after training (`training.purchase.calibrate`)."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros", trainable=False)

    def call(self, logit):
        return logit * self.scale + self.bias


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class PurchaseModel(TextModel):
    """Scores how likely a user buys a candidate item, from item texts the BERT encoder reads.

    Every item (history and candidate) is encoded from its text (`data.item_text`: title, category,
    description) by a frozen `SentenceEncoder`, so item vectors can be computed ahead of time, and
    a shared item tower adds the price. Then, in `mode`:

    - `"attention"`: the history is pooled by DIN-style attention to the candidate
      (`TargetAttention`), and `P(purchase) = sigmoid(MLP([history; item; query; products; price]))`.
    - `"two_tower"`: a user tower (history mean + query) and the item tower give unit vectors whose
      cosine, scaled, is the logit; items can be retrieved from a large catalog by dot product.

    Both modes output `user_vector` and `item_vector` (the towers) and a calibrated probability
    (Platt scaling fitted on validation data by `calibrate`). With `intent_model` (a trained
    `IntentModel`, frozen), the query's intent vector joins the query's representation: the intent
    -> personalised scoring -> ranking chain runs inside one model, and `rank` also returns the
    query's intent.

    Inputs (`raw_inputs`): `history` `(batch, items)` item texts, most recent first, "" as padding
    (an empty row is a new user); `item` `(batch,)`; `query` `(batch,)` ("" when none); `price`
    `(batch,)` float, NaN when unknown (then 0 and a missing-price flag). Outputs:
    `purchase_probability` `(batch,)`, `logit` `(batch,)` (trained on, from logits),
    `user_vector`, `item_vector` `(batch, tower_dim)`.

    Args:
        backbone: keras-hub `BertBackbone` (kept frozen).
        preprocessor: `TextPreprocessor` for the backbone's vocabulary.
        mode: `"attention"` or `"two_tower"`.
        tower_dim: size of the item and user vectors.
        hidden: units of the scoring MLP's layers (attention mode).
        dropout: dropout in the towers and MLP while training.
        intent_model: optional trained `IntentModel` whose intent vector describes the query.

    Example:
        >>> from ecomrec_tf.encoders import load_encoder
        >>> encoder = load_encoder("tiny")
        >>> model = PurchaseModel(encoder.backbone, TextPreprocessor(encoder.tokenizer, 32))
        >>> x = {"history": [["Acme Pro 2 kettle | kitchen", ""]], "item": ["Acme Lite 9 toaster | kitchen"],
        ...      "query": [""], "price": [39.0]}
        >>> model.predict(x, verbose=0)["purchase_probability"].shape
        (1,)
    """

    target_output = "logit"

    def __init__(
        self,
        backbone,
        preprocessor,
        mode: str = "attention",
        tower_dim: int = 64,
        hidden: tuple[int, ...] | list[int] = (128, 64),
        dropout: float = 0.1,
        intent_model=None,
        **kwargs,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.encoder = SentenceEncoder(backbone, preprocessor, name="sentence_encoder")
        self.intent_model = intent_model
        if intent_model is not None:
            intent_model.trainable = False
        self.item_tower = _feed_forward([2 * tower_dim], tower_dim, dropout, "item_tower")
        self.query_projection = keras.layers.Dense(tower_dim, name="query_projection")
        self.user_tower = _feed_forward([2 * tower_dim], tower_dim, dropout, "user_tower")
        if mode == "attention":
            self.attention = TargetAttention(hidden=tower_dim, name="target_attention")
            self.scorer = _feed_forward(hidden, 1, dropout, "scorer")
        else:  # cosine -> logit, starting at a usable temperature
            self.scorer = [
                keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(5.0), name="scorer")
            ]
        self.calibration = Calibration(name="calibration")

        # === Functional Model ===
        intent_dim = intent_model.vector_dim if intent_model is not None else None
        vectors = vector_inputs(backbone.hidden_dim, intent_dim)
        self.core = keras.Model(vectors, self._score(vectors, mode), name="purchase_core")
        raw = raw_inputs()
        super().__init__(inputs=raw, outputs=self.core(self.vectorize(raw)), **kwargs)

        # === Config ===
        self.mode = mode
        self.tower_dim = tower_dim
        self.hidden = list(hidden)
        self.dropout = dropout

    # --- raw strings -> vectors (the frozen encoder) ---------------------------------------------

    def vectorize(self, raw: dict) -> dict:
        """Raw inputs -> `core`'s inputs: text vectors, masks, the query's intent vector."""
        history, history_mask = self.encoder(raw["history"])
        item, _ = self.encoder(raw["item"])
        query, has_query = self.encoder(raw["query"])
        vectors = {
            "history": history,
            "history_mask": history_mask,
            "item": item,
            "query": query,
            "has_query": has_query,
            "price": raw["price"],
        }
        if self.intent_model is not None:
            vectors["query_intent"] = self.intent_vectors(raw["query"])
        return vectors

    def intent_vectors(self, query):
        model = self.intent_model
        return model.core(model.preprocessor(query), training=False)["intent_vector"]

    # --- vectors -> outputs (what trains) --------------------------------------------------------

    def _item_vectors(self, text_vectors, price, training=None):
        """Item tower on text vectors `(..., H)` and prices `(...)` -> `(..., tower_dim)`."""
        known = ops.logical_and(ops.isfinite(price), ops.greater_equal(price, 0.0))
        log_price = ops.where(known, ops.log1p(ops.maximum(ops.where(known, price, 0.0), 0.0)), 0.0)
        price_features = ops.stack([log_price, ops.cast(known, "float32")], axis=-1)
        tower_input = ops.concatenate([text_vectors, price_features], axis=-1)
        return _apply(self.item_tower, tower_input, training), price_features

    def _user(self, vectors, training=None):
        """History item vectors, the query's vector and the user vector (no candidate needed)."""
        history_price = ops.cast(vectors["history_mask"], "float32") * 0.0 - 1.0  # unknown for history items
        history, _ = self._item_vectors(vectors["history"], history_price, training)  # (B, N, D)
        mask = ops.cast(vectors["history_mask"], "float32")
        count = ops.sum(mask, axis=1, keepdims=True)  # (B, 1)
        mean = ops.sum(history * ops.expand_dims(mask, -1), axis=1) / ops.maximum(count, 1.0)
        query = vectors["query"]
        if "query_intent" in vectors:
            query = ops.concatenate([query, vectors["query_intent"]], axis=-1)
        has_query = ops.expand_dims(ops.cast(vectors["has_query"], "float32"), -1)
        query = self.query_projection(query) * has_query  # (B, D); zeros without a query
        log_count = ops.log1p(count)
        user = _apply(self.user_tower, ops.concatenate([mean, query, log_count], axis=-1), training)
        return history, query, ops.normalize(user, axis=-1), {"has_query": has_query, "log_count": log_count}

    def _score(self, vectors, mode, training=None):
        history, query, user, extra = self._user(vectors, training)
        item, price_features = self._item_vectors(vectors["item"], vectors["price"], training)
        item_unit = ops.normalize(item, axis=-1)
        cosine = ops.sum(user * item_unit, axis=-1, keepdims=True)  # (B, 1)
        if mode == "two_tower":
            logit = _apply(self.scorer, cosine, training)
        else:
            pooled, _ = self.attention(history, item, vectors["history_mask"])  # (B, D)
            features = [
                pooled,
                item,
                query,
                query * item,
                pooled * item,
                user * item_unit,
                price_features,
                extra["has_query"],
                extra["log_count"],
                _text_similarities(vectors),
            ]
            logit = _apply(self.scorer, ops.concatenate(features, axis=-1), training)
        logit = ops.squeeze(self.calibration(logit), -1)
        return {
            "purchase_probability": ops.sigmoid(logit),
            "logit": logit,
            "user_vector": user,
            "item_vector": item_unit,
        }

    def set_calibration(self, scale: float, bias: float) -> None:
        """Sets the Platt scaling applied to the trained logit (see `training.purchase.calibrate`)."""
        self.calibration.scale.assign(scale)
        self.calibration.bias.assign(bias)

    # --- serving ------------------------------------------------------------------------------

    def embed_items(self, item, price):
        """Unit item vectors `(batch, tower_dim)` for item texts and prices: what a catalog index stores."""
        text_vectors, _ = self.encoder(item)
        return ops.normalize(self._item_vectors(text_vectors, price)[0], axis=-1)

    def embed_users(self, history, query):
        """Unit user vectors `(batch, tower_dim)` for histories and queries ("" for none)."""
        vectors = {"query": query}
        vectors["history"], vectors["history_mask"] = self.encoder(history)
        vectors["query"], vectors["has_query"] = self.encoder(query)
        if self.intent_model is not None:
            vectors["query_intent"] = self.intent_vectors(query)
        return self._user(vectors)[2]

    def rank(self, query, history, candidates, candidate_price):
        """Scores `candidates` `(batch, C)` for each row's user and query; "" candidates rank last.

        Returns a dict: `scores` (P(purchase), -1 for padding) and `ranking` (candidate indices,
        best first), both `(batch, C)`; with an intent model also the query's `intent`,
        `intent_confidence` and `intent_vector`.
        """
        batch, width = tf.shape(candidates)[0], tf.shape(candidates)[1]
        raw = {
            "history": tf.repeat(history, width, axis=0),  # encoded once per distinct item anyway
            "item": tf.reshape(candidates, [-1]),
            "query": tf.repeat(query, width, axis=0),
            "price": tf.reshape(candidate_price, [-1]),
        }
        probability = tf.reshape(self(raw, training=False)["purchase_probability"], [batch, width])
        present = tf.strings.length(tf.strings.strip(candidates)) > 0
        scores = tf.where(present, probability, -1.0)
        result = {
            "scores": scores,
            "ranking": tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True),
        }
        if self.intent_model is not None:
            probabilities = self.intent_model(query, training=False)["probabilities"]
            label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            result["intent"] = tf.gather(tf.constant(self.intent_model.labels), label_id)
            result["intent_confidence"] = tf.reduce_max(probabilities, axis=-1)
        return result

    def serving_signatures(self):
        """`purchase_probability` (= `serving_default`), `embed_user`, `embed_item`, `rank`: raw strings."""
        history = tf.TensorSpec([None, None], tf.string, name="history")
        item = tf.TensorSpec([None], tf.string, name="item")
        query = tf.TensorSpec([None], tf.string, name="query")
        price = tf.TensorSpec([None], tf.float32, name="price")

        def purchase_probability(history, item, query, price):
            outputs = self({"history": history, "item": item, "query": query, "price": price}, training=False)
            return {"purchase_probability": outputs["purchase_probability"], "logit": outputs["logit"]}

        def embed_user(history, query):
            return {"user_vector": self.embed_users(history, query)}

        def embed_item(item, price):
            return {"item_vector": self.embed_items(item, price)}

        def rank(query, history, candidates, candidate_price):
            return self.rank(query, history, candidates, candidate_price)

        scoring = (purchase_probability, [history, item, query, price])
        candidates = tf.TensorSpec([None, None], tf.string, name="candidates")
        candidate_price = tf.TensorSpec([None, None], tf.float32, name="candidate_price")
        return {
            "serving_default": scoring,
            "purchase_probability": scoring,
            "embed_user": (embed_user, [history, query]),
            "embed_item": (embed_item, [item, price]),
            "rank": (rank, [query, history, candidates, candidate_price]),
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **serialize_objects(
                backbone=self.backbone, preprocessor=self.preprocessor, intent_model=self.intent_model
            ),
            "mode": self.mode,
            "tower_dim": self.tower_dim,
            "hidden": self.hidden,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_objects(config, "backbone", "preprocessor", "intent_model"))


def build_purchase_model(encoder, sequence_length: int = 64, **kwargs) -> PurchaseModel:
    """A `PurchaseModel` on an `ecomrec_tf.encoders.Encoder`."""
    return PurchaseModel(encoder.backbone, TextPreprocessor(encoder.tokenizer, sequence_length), **kwargs)


def top_k_items(user_vectors, item_vectors, k: int = 100):
    """Exact maximum-inner-product search: `(scores, indices)` `(batch, k)` of the best items per user.

    `item_vectors` `(items, tower_dim)` come from `PurchaseModel.embed_items` (or the `embed_item`
    signature), computed once per catalog. One matrix product and `tf.math.top_k`: exact and fast on
    CPU to a few hundred thousand items; beyond that, an approximate index (ScaNN, which TensorFlow
    Recommenders wraps as `tfrs.layers.factorized_top_k.ScaNN`, or FAISS) takes the same vectors.
    """
    scores = tf.matmul(
        tf.convert_to_tensor(user_vectors), tf.convert_to_tensor(item_vectors), transpose_b=True
    )
    return tf.math.top_k(scores, k=min(k, int(scores.shape[-1])))
