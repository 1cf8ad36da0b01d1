"""Purchase model: user history + candidate item (+ query, price, ids, counts) -> P(purchase), and ranking."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from ecomrec_tf.data.event_state import FEATURES, ITEM_FEATURES, PAIR_FEATURES, USER_FEATURES
from ecomrec_tf.data.item_features import ItemFeatures
from ecomrec_tf.encoders.sentence_encoder import SentenceEncoder
from ecomrec_tf.heads.count_features import CountFeatures
from ecomrec_tf.heads.id_embedding import IdEmbedding
from ecomrec_tf.heads.item_fusion import FUSIONS, ItemFusion
from ecomrec_tf.heads.purchase_layers import (
    Calibration,
    apply_layers,
    feed_forward,
    image_similarities,
    text_similarities,
)
from ecomrec_tf.heads.target_attention import TargetAttention
from ecomrec_tf.models.text_model import TextModel
from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.serialization import deserialize_objects, serialize_objects

MODES = ("attention", "two_tower")
PARTS = ("ids", "counts")  # what the model reads besides item texts, query and price
ID_KINDS = ("user", "item", "category")


def input_specs(
    parts=PARTS, side: str = "all", features: ItemFeatures | None = None
) -> dict[str, tf.TensorSpec]:
    """Raw inputs by name for the model's `parts` and item `features` (`data.item_features`): `side`
    "user" (history, query, ...), "item" (the candidate) or "all". Shapes are per example: `(batch,)`,
    histories `(batch, items)`, item features `(batch, size)` and `(batch, items, size)`."""
    user = {"history": ((None, None), tf.string), "query": ((None,), tf.string)}
    item = {"item": ((None,), tf.string), "price": ((None,), tf.float32)}
    if "ids" in parts:
        user |= {"user_id": ((None,), tf.string), "history_ids": ((None, None), tf.string)}
        item |= {"item_id": ((None,), tf.string), "category": ((None,), tf.string)}
    if "counts" in parts:
        user |= {name: ((None,), tf.float32) for name in USER_FEATURES}
        item |= {name: ((None,), tf.float32) for name in (*ITEM_FEATURES, *PAIR_FEATURES)}
    for name, (size, dtype) in (features or ItemFeatures()).shapes().items():
        user[f"history_{name}"] = ((None, None, size), tf.as_dtype(dtype))
        item[name] = ((None, size), tf.as_dtype(dtype))
    chosen = {"user": user, "item": item, "all": user | item}[side]
    return {name: tf.TensorSpec(shape, dtype, name=name) for name, (shape, dtype) in chosen.items()}


def raw_inputs(parts=PARTS, features: ItemFeatures | None = None) -> dict[str, keras.KerasTensor]:
    """Symbolic raw inputs (`input_specs`): `history` `(batch, items)` item texts ("" pads), `item`,
    `query` ("" for none), `price` (NaN when unknown); with ids `user_id`, `item_id`, `history_ids`
    (aligned with `history`), `category`; with counts the `data.event_state.FEATURES`; with item
    `features` `image_vector`, `numeric_attributes`, `categorical_attributes` and their `history_` forms."""
    return {
        name: keras.Input(spec.shape[1:], dtype=spec.dtype.name, name=name)
        for name, spec in input_specs(parts, features=features).items()
    }


def vector_inputs(
    hidden_dim: int, intent_dim: int | None = None, parts=PARTS, features: ItemFeatures | None = None
) -> dict[str, keras.KerasTensor]:
    """Symbolic inputs of `PurchaseModel.core`: what `PurchaseModel.vectorize` makes of the raw inputs
    (texts become the frozen encoder's vectors; ids and counts pass through)."""
    inputs = {
        "history": keras.Input((None, hidden_dim), name="history"),
        "history_mask": keras.Input((None,), dtype="bool", name="history_mask"),
        "item": keras.Input((hidden_dim,), name="item"),
        "query": keras.Input((hidden_dim,), name="query"),
        "has_query": keras.Input((), dtype="bool", name="has_query"),
        "price": keras.Input((), name="price"),
    }
    raw = raw_inputs(parts, features)
    inputs |= {name: raw[name] for name in raw if name not in ("history", "item", "query", "price")}
    if intent_dim:
        inputs["query_intent"] = keras.Input((intent_dim,), name="query_intent")
    return inputs


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class PurchaseModel(TextModel):
    """Scores how likely a user buys a candidate item, from item texts, ids and event counts.

    Every item (history and candidate) is read from its text (`data.item_text`: title, category,
    description) by a frozen `SentenceEncoder`, so item vectors can be computed ahead of time and
    items never seen in training still score. A shared item tower adds the price and, with `"ids"`
    in `parts`, a learned item id embedding. With `"ids"`, user and category embeddings join too
    (`IdEmbedding`: new ids at serving map to a learned out-of-vocabulary vector); with `"counts"`,
    the `data.event_state.FEATURES` (the user's and the item's views and purchases, recent purchase
    rates, idle time, the user's counts in the candidate's category, price against the user's usual),
    log-transformed and standardised in the graph (`CountFeatures`). Then, in `mode`:

    - `"attention"`: the history is pooled by DIN-style attention to the candidate
      (`TargetAttention`), and the logit is a deep part, an MLP of `[history; item; query; products;
      price; encoder cosines; user, item, category embeddings; counts]`, plus a wide part: a linear
      term of the counts, user and item biases and the factorisation term `<user, item>` of the id
      embeddings.
    - `"two_tower"`: a user tower (history mean + query + user id + user counts) and an item tower
      (text + price + item id + category + item counts) give unit vectors whose cosine, scaled, is
      the logit; items can be retrieved from a large catalog by dot product.

    With `item_features` (`data.item_features.ItemFeatures`: an image vector, numeric and categorical
    attributes per item), every item's text vector, history and candidate alike, is first fused with
    them (`heads.ItemFusion`, `fusion` "concat" or "gated"), item by item: an item missing them keeps
    its text vector.

    Both modes output `user_vector` and `item_vector` (the towers) and a calibrated probability
    (Platt scaling fitted on validation data by `calibrate`). With `intent_model` (a trained
    `IntentModel`, frozen), the query's intent vector joins the query's representation, and `rank`
    also returns the query's intent.

    Inputs (`raw_inputs`): `history` `(batch, items)` item texts, most recent first, "" as padding
    (an empty row is a new user); `item` `(batch,)`; `query` `(batch,)` ("" when none); `price`
    `(batch,)` float, NaN when unknown (then 0 and a missing-price flag); with ids `user_id`,
    `item_id`, `history_ids` and `category`; with counts one float input per `FEATURES` name, which a
    caller computes from its event log as `data.event_state.EventState` does. Outputs:
    `purchase_probability` `(batch,)`, `logit` `(batch,)` (trained on, from logits), `user_vector`,
    `item_vector` `(batch, tower_dim)`.

    Args:
        backbone: keras-hub `BertBackbone` (kept frozen).
        preprocessor: `TextPreprocessor` for the backbone's vocabulary.
        mode: `"attention"` or `"two_tower"`.
        tower_dim: size of the item and user vectors.
        hidden: units of the scoring MLP's layers (attention mode).
        dropout: dropout in the towers and MLP while training.
        intent_model: optional trained `IntentModel` whose intent vector describes the query.
        parts: what besides texts the model reads: a subset of `("ids", "counts")`.
        vocabulary_sizes: `{"user", "item", "category"}` vocabulary sizes of the id embeddings
            (their vocabularies are set from training data by `set_vocabularies`).
        id_dim: size of the id embeddings.
        id_l2: L2 penalty on the id embeddings a batch looks up.
        item_features: `ItemFeatures` (or its config) of the catalog's image vectors and attributes,
            which the model then takes as inputs; None for text only.
        fusion: how they join the text vector: `"concat"` (chosen on validation AUC, docs/purchase.md) or
            `"gated"` (`heads.ItemFusion`).

    Example:
        >>> from ecomrec_tf.encoders import load_encoder
        >>> encoder = load_encoder("tiny")
        >>> model = PurchaseModel(encoder.backbone, TextPreprocessor(encoder.tokenizer, 32), parts=())
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
        parts: tuple[str, ...] | list[str] = PARTS,
        vocabulary_sizes: dict[str, int] | None = None,
        id_dim: int = 32,
        id_l2: float = 1.0,
        item_features: ItemFeatures | dict | None = None,
        fusion: str = "concat",
        **kwargs,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"parts must be a subset of {PARTS}, got {sorted(unknown)}")
        parts = tuple(part for part in PARTS if part in parts)
        sizes = {kind: 1 for kind in ID_KINDS} | dict(vocabulary_sizes or {})
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if not isinstance(item_features, ItemFeatures):
            item_features = ItemFeatures.from_config(item_features)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.encoder = SentenceEncoder(backbone, preprocessor, name="sentence_encoder")
        self.intent_model = intent_model
        if intent_model is not None:
            intent_model.trainable = False
        self.item_tower = feed_forward([2 * tower_dim], tower_dim, dropout, "item_tower")
        self.query_projection = keras.layers.Dense(tower_dim, name="query_projection")
        self.user_tower = feed_forward([2 * tower_dim], tower_dim, dropout, "user_tower")
        self.ids = {}
        if "ids" in parts:
            self.ids = {
                kind: IdEmbedding(sizes[kind], id_dim, id_l2, name=f"{kind}_ids") for kind in ID_KINDS
            }
        self.counts = CountFeatures(name="count_features") if "counts" in parts else None
        self.fusion = ItemFusion(item_features, fusion, name="item_fusion") if item_features else None
        if mode == "attention":
            self.attention = TargetAttention(hidden=tower_dim, name="target_attention")
            self.scorer = feed_forward(hidden, 1, dropout, "scorer")
            self.wide = keras.layers.Dense(1, use_bias=False, name="wide") if self.counts else None
        else:  # cosine -> logit, starting at a usable temperature
            self.item_side = feed_forward([2 * tower_dim], tower_dim, dropout, "item_side")
            self.scorer = [
                keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(5.0), name="scorer")
            ]
        self.calibration = Calibration(name="calibration")

        # === Functional Model ===
        intent_dim = intent_model.vector_dim if intent_model is not None else None
        self.item_features = item_features
        vectors = vector_inputs(backbone.hidden_dim, intent_dim, parts, item_features)
        self.core = keras.Model(vectors, self._score(vectors, mode, parts), name="purchase_core")
        raw = raw_inputs(parts, item_features)
        super().__init__(inputs=raw, outputs=self.core(self.vectorize(raw)), **kwargs)

        # === Config ===
        self.mode = mode
        self.tower_dim = tower_dim
        self.hidden = list(hidden)
        self.dropout = dropout
        self.parts = parts
        self.vocabulary_sizes = sizes
        self.id_dim = id_dim
        self.id_l2 = id_l2
        self.fusion_mode = fusion

    def input_specs(self, side: str = "all") -> dict[str, tf.TensorSpec]:
        """`input_specs` of this model's parts and item features."""
        return input_specs(self.parts, side, self.item_features)

    # --- raw strings -> vectors (the frozen encoder) ---------------------------------------------

    def vectorize(self, raw: dict) -> dict:
        """Raw inputs -> `core`'s inputs: text vectors, masks, the query's intent vector; ids and
        counts unchanged."""
        (history, history_mask), (item, _), (query, has_query) = self.encoder(
            [raw["history"], raw["item"], raw["query"]]
        )  # one encoder pass: a candidate also in the history is encoded once
        vectors = {name: value for name, value in raw.items() if name not in ("history", "item", "query")}
        vectors |= {"history": history, "history_mask": history_mask, "item": item, "query": query,
                    "has_query": has_query}  # fmt: skip
        if self.intent_model is not None:
            vectors["query_intent"] = self.intent_vectors(raw["query"])
        return vectors

    def intent_vectors(self, query):
        model = self.intent_model
        return model.core(model.preprocessor(query), training=False)["intent_vector"]

    def set_vocabularies(self, ids: dict[str, list[str]]) -> None:
        """Sets the id embeddings' vocabularies, `{"user", "item", "category"}` -> ids (see `IdEmbedding`)."""
        for kind, layer in self.ids.items():
            layer.set_vocabulary(ids.get(kind, []))

    # --- vectors -> outputs (what trains) --------------------------------------------------------

    def _item_vectors(self, text_vectors, price, item_ids=None, side=None, training=None):
        """Item tower on text vectors `(..., H)`, prices `(...)`, ids and item features (`side`, by
        input name) -> `(..., tower_dim)`."""
        if self.fusion is not None:
            text_vectors = self.fusion(text_vectors, side)
        known = ops.logical_and(ops.isfinite(price), ops.greater_equal(price, 0.0))
        log_price = ops.where(known, ops.log1p(ops.maximum(ops.where(known, price, 0.0), 0.0)), 0.0)
        price_features = ops.stack([log_price, ops.cast(known, "float32")], axis=-1)
        parts = [text_vectors, price_features]
        if self.ids:
            parts.append(self.ids["item"](item_ids, training=training)[0])
        return apply_layers(self.item_tower, ops.concatenate(parts, axis=-1), training), price_features

    def _user(self, vectors, counts=None, training=None):
        """History item vectors, the query's vector and the user vector (no candidate needed)."""
        history_price = ops.cast(vectors["history_mask"], "float32") * 0.0 - 1.0  # unknown for history items
        side = {name: vectors[f"history_{name}"] for name in self.item_features.shapes()}
        history, _ = self._item_vectors(
            vectors["history"], history_price, vectors.get("history_ids"), side, training
        )  # (B, N, D)
        mask = ops.cast(vectors["history_mask"], "float32")
        count = ops.sum(mask, axis=1, keepdims=True)  # (B, 1)
        mean = ops.sum(history * ops.expand_dims(mask, -1), axis=1) / ops.maximum(count, 1.0)
        query = vectors["query"]
        if "query_intent" in vectors:
            query = ops.concatenate([query, vectors["query_intent"]], axis=-1)
        has_query = ops.expand_dims(ops.cast(vectors["has_query"], "float32"), -1)
        query = self.query_projection(query) * has_query  # (B, D); zeros without a query
        log_count = ops.log1p(count)
        parts = [mean, query, log_count]
        extra = {"has_query": has_query, "log_count": log_count}
        if self.ids:
            extra["user_id"], extra["user_bias"] = self.ids["user"](vectors["user_id"], training=training)
            parts.append(extra["user_id"])
        if counts is not None:
            parts.append(counts["user"])
        user = apply_layers(self.user_tower, ops.concatenate(parts, axis=-1), training)
        return history, query, ops.normalize(user, axis=-1), extra

    def _score(self, vectors, mode, parts, training=None):
        counts = None
        if "counts" in parts:
            counts = self.counts({name: vectors[name] for name in (*FEATURES, "price")})
        history, query, user, extra = self._user(vectors, counts, training)
        side = {name: vectors[name] for name in self.item_features.shapes()}
        item, price_features = self._item_vectors(
            vectors["item"], vectors["price"], vectors.get("item_id"), side, training
        )
        if mode == "two_tower":
            side = [item]
            if self.ids:
                side.append(self.ids["category"](vectors["category"], training=training)[0])
            if counts is not None:
                side.append(counts["item"])
            item_unit = ops.normalize(
                apply_layers(self.item_side, ops.concatenate(side, axis=-1), training), axis=-1
            )
            logit = apply_layers(self.scorer, ops.sum(user * item_unit, axis=-1, keepdims=True), training)
        else:
            item_unit = ops.normalize(item, axis=-1)
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
                text_similarities(vectors),
            ]
            if self.item_features.image_dim:
                features.append(image_similarities(vectors))
            wide = 0.0
            if self.ids:
                item_id, item_bias = self.ids["item"](vectors["item_id"], training=training)
                category, category_bias = self.ids["category"](vectors["category"], training=training)
                features += [extra["user_id"], category]
                fm = ops.sum(extra["user_id"] * item_id, axis=-1)  # factorisation term
                wide = fm + extra["user_bias"] + item_bias + category_bias
            if counts is not None:
                numbers = ops.concatenate([counts["user"], counts["item"], counts["pair"]], axis=-1)
                features.append(numbers)
                wide = wide + ops.squeeze(self.wide(numbers), -1)
            deep = apply_layers(self.scorer, ops.concatenate(features, axis=-1), training)
            logit = deep + ops.expand_dims(wide, -1) if self.ids or counts is not None else deep
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

    def embed_items(self, inputs: dict):
        """Unit item vectors `(batch, tower_dim)` from the item-side raw inputs (`input_specs(side="item")`):
        what a catalog index stores (in two-tower mode, their dot product with `embed_users` is the
        model's cosine)."""
        return self._one_side(inputs, "item_vector")

    def embed_users(self, inputs: dict):
        """Unit user vectors `(batch, tower_dim)` from the user-side raw inputs
        (`input_specs(side="user")`)."""
        return self._one_side(inputs, "user_vector")

    def _one_side(self, inputs: dict, output: str):
        """One output of the full model with the other side's inputs filled with placeholders, which
        that output does not read."""
        batch = tf.shape(next(iter(inputs.values())))[0]
        filled = {}
        for name, spec in self.input_specs().items():
            if name in inputs:
                filled[name] = inputs[name]
            else:  # one "" or 0 per example (and per history item, per feature)
                shape = [batch] + [1 if size is None else size for size in spec.shape[1:]]
                filled[name] = tf.fill(shape, "" if spec.dtype == tf.string else 0.0)
        return self(filled, training=False)[output]

    def rank(self, inputs: dict) -> dict:
        """Scores each row's candidates for its user and query; "" candidates rank last.

        `inputs`: the user-side raw inputs `(batch, ...)` and the item-side ones as `candidate_*`
        `(batch, C)` (`rank_specs`). Returns a dict: `scores` (P(purchase), -1 for padding) and
        `ranking` (candidate indices, best first), both `(batch, C)`; with an intent model also the
        query's `intent` and `intent_confidence`.
        """
        candidates = inputs["candidates"]
        batch, width = tf.shape(candidates)[0], tf.shape(candidates)[1]
        raw = {}
        for name in self.input_specs("user"):
            raw[name] = tf.repeat(inputs[name], width, axis=0)  # encoded once per distinct item anyway
        for name, spec in self.input_specs("item").items():  # (B, C, ...) -> (B * C, ...)
            raw[name] = tf.reshape(inputs[candidate_name(name)], [-1, *spec.shape[1:]])
        probability = tf.reshape(self(raw, training=False)["purchase_probability"], [batch, width])
        present = tf.strings.length(tf.strings.strip(candidates)) > 0
        scores = tf.where(present, probability, -1.0)
        result = {
            "scores": scores,
            "ranking": tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True),
        }
        if self.intent_model is not None:
            probabilities = self.intent_model(inputs["query"], training=False)["probabilities"]
            label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            result["intent"] = tf.gather(tf.constant(self.intent_model.labels), label_id)
            result["intent_confidence"] = tf.reduce_max(probabilities, axis=-1)
        return result

    def rank_specs(self) -> dict[str, tf.TensorSpec]:
        """Inputs of `rank`: the user side as for scoring, each item-side input as `candidate_*`
        `(batch, C)`."""
        specs = dict(self.input_specs("user"))
        for name, spec in self.input_specs("item").items():
            shape = [None, None, *spec.shape[1:]]
            specs[candidate_name(name)] = tf.TensorSpec(shape, spec.dtype, name=candidate_name(name))
        return specs

    def rank_inputs(self, requests: list[dict]) -> dict[str, tf.Tensor]:
        """`rank`'s input tensors from request rows (dicts as `data.event_state.EventState.request`
        makes them, with at least the inputs `rank_specs` names): histories and candidate lists
        padded to the longest with "" (strings) and 0 (numbers)."""
        return request_tensors(requests, self.rank_specs())

    def serving_signatures(self):
        """`purchase_probability` (= `serving_default`), `embed_user`, `embed_item`, `rank`, from raw strings,
        ids and counts (the inputs `input_specs` and `rank_specs` list)."""

        def purchase_probability(inputs):
            outputs = self(inputs, training=False)
            return {"purchase_probability": outputs["purchase_probability"], "logit": outputs["logit"]}

        scoring = _signature(purchase_probability, self.input_specs())
        return {
            "serving_default": scoring,
            "purchase_probability": scoring,
            "embed_user": _signature(
                lambda x: {"user_vector": self.embed_users(x)}, self.input_specs("user")
            ),
            "embed_item": _signature(
                lambda x: {"item_vector": self.embed_items(x)}, self.input_specs("item")
            ),
            "rank": _signature(self.rank, self.rank_specs()),
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
            "parts": list(self.parts),
            "vocabulary_sizes": self.vocabulary_sizes,
            "id_dim": self.id_dim,
            "id_l2": self.id_l2,
            "item_features": self.item_features.get_config() if self.item_features else None,
            "fusion": self.fusion_mode,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_objects(config, "backbone", "preprocessor", "intent_model"))


def request_tensors(requests: list[dict], specs: dict[str, tf.TensorSpec]) -> dict[str, tf.Tensor]:
    """One tensor per spec from request rows (dicts with at least the specs' names): lists per example
    (histories, candidate lists, and their item features) padded to the longest row with "" (strings),
    0 (numbers) or, for item features, a missing item (NaN, "")."""
    tensors = {}
    for name, spec in specs.items():
        values = [row[name] for row in requests]
        if spec.shape.rank >= 2 and spec.shape[1] is None:
            width = max([1] + [len(v) for v in values])
            pad = "" if spec.dtype == tf.string else 0.0 if spec.shape.rank == 2 else math.nan
            if spec.shape.rank == 3:
                pad = [pad] * spec.shape[2]
            values = [list(v) + [pad] * (width - len(v)) for v in values]
        tensors[name] = tf.constant(values, spec.dtype)
    return tensors


def candidate_name(name: str) -> str:
    """The `rank` input holding an item-side input for every candidate: `item` -> `candidates`,
    `item_id` -> `candidate_ids`, any other `x` -> `candidate_x`."""
    return {"item": "candidates", "item_id": "candidate_ids"}.get(name, f"candidate_{name}")


def _signature(function, specs: dict[str, tf.TensorSpec]):
    """`(function of positional tensors, specs)` for `export_saved_model` from a function of one dict."""
    names = list(specs)

    def serve(*tensors):
        return function(dict(zip(names, tensors)))

    return serve, list(specs.values())


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
