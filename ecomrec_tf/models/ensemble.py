"""Ensembles: several trained models of one head as one model, with the members' inputs, outputs and
serving signatures, so it trains nothing new, saves as one `.keras` file and exports like a member."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ecomrec_tf.models.intent_model import IntentModel
from ecomrec_tf.models.purchase_model import PurchaseModel
from ecomrec_tf.models.text_model import TextModel

METHODS = ("average", "stacking")
VECTORS = ("intent_vector", "user_vector", "item_vector")
EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class MemberWeights(keras.layers.Layer):
    """Stacking: `sum_i weight_i * scores[:, i]` (+ a bias) over the members' scores `(batch, members,
    ...)`; weights start at `1 / members` (the mean), the bias at 0."""

    def __init__(self, members: int, **kwargs):
        super().__init__(**kwargs)
        self.members = members
        self.weight = self.add_weight(
            name="weights", shape=(members,), initializer=keras.initializers.Constant(1.0 / members)
        )
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, scores, bias: bool = True):
        weights = ops.reshape(self.weight, (1, self.members) + (1,) * (len(scores.shape) - 2))
        summed = ops.sum(ops.cast(scores, "float32") * weights, axis=1)
        return summed + self.bias if bias else summed

    def get_config(self):
        return super().get_config() | {"members": self.members}


class Ensemble(TextModel):
    """Members of one head (all `IntentModel`s, or all `PurchaseModel`s taking the same inputs), frozen,
    combined by `method`:

    - `"average"`: the weighted mean of the members' probabilities (`weights`, default equal).
    - `"stacking"`: a weighted sum of the members' scores (intent: log-probabilities, then a softmax;
      purchase: calibrated logits, plus a bias), one weight per member fitted on validation data by
      maximum likelihood (`training.ensemble.fit_stacking`); until fitted, the mean of the scores. One
      weight per member, not per class: a few hundred validation examples fit it, and a class the
      validation data lacks is stacked like the others.

    Outputs are the members' (`probabilities`, or `purchase_probability` and `logit`); vector outputs
    (`intent_vector`, `user_vector`, `item_vector`) are the members' unit vectors scaled by
    `sqrt(weight)` and concatenated: still unit vectors, whose dot product is the weighted mean of the
    members' cosines, so a two-tower ensemble still retrieves by dot product. Build one with
    `build_ensemble`.
    """

    def __init__(self, members, method: str = "average", weights=None, **kwargs):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        _check_alike(members)
        weights = np.full(len(members), 1.0) if weights is None else np.asarray(weights, float)
        if len(weights) != len(members) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"weights must be {len(members)} non-negative numbers, not all 0: {list(weights)}"
            )
        # === Layers ===
        self.members = list(members)
        for number, member in enumerate(self.members, 1):
            member.trainable = False
            member.name = f"member_{number}"  # unique in the ensemble's graph (two loads share a name)
        self.stacker = MemberWeights(len(members), name="stacker")

        # === Functional Model ===
        first = members[0].input
        if isinstance(first, dict):
            inputs = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in first.items()}
        else:
            inputs = keras.Input(first.shape[1:], dtype=first.dtype, name=first.name)
        self.method = method
        self.member_weights = (weights / weights.sum()).tolist()
        outputs = self.combine([member(inputs, training=False) for member in self.members])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def combine(self, outputs: list[dict]) -> dict:
        """The ensemble's outputs from its members' (symbolic tensors, or numpy arrays of their
        predictions: the same function scores held-out data from cached member predictions)."""
        weights = self.member_weights
        combined = {}
        if "probabilities" in outputs[0]:
            probabilities = [ops.convert_to_tensor(o["probabilities"], "float32") for o in outputs]
            if self.method == "average":
                combined["probabilities"] = sum(w * p for w, p in zip(weights, probabilities))
            else:
                scores = ops.stack([ops.log(p + EPSILON) for p in probabilities], axis=1)  # (B, members, L)
                combined["probabilities"] = ops.softmax(self.stacker(scores, bias=False), axis=-1)
        else:
            if self.method == "average":
                p = sum(
                    w * ops.convert_to_tensor(o["purchase_probability"], "float32")
                    for w, o in zip(weights, outputs)
                )
                p = ops.clip(p, EPSILON, 1.0 - EPSILON)
                logit = ops.log(p) - ops.log(1.0 - p)
            else:
                logits = ops.stack([ops.convert_to_tensor(o["logit"], "float32") for o in outputs], axis=1)
                logit = self.stacker(logits)  # (B, members) -> (B,)
            combined |= {"purchase_probability": ops.sigmoid(logit), "logit": logit}
        for name in VECTORS:
            if name in outputs[0]:
                parts = [
                    float(np.sqrt(w)) * ops.convert_to_tensor(o[name], "float32")
                    for w, o in zip(weights, outputs)
                ]
                combined[name] = ops.concatenate(parts, axis=-1)
        return combined

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "members": [keras.saving.serialize_keras_object(member) for member in self.members],
            "method": self.method,
            "weights": self.member_weights,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["members"] = [keras.saving.deserialize_keras_object(member) for member in config["members"]]
        return cls(**config)


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class IntentEnsemble(Ensemble):
    """An ensemble of `IntentModel`s: `labels` and the `serving_default` signature of its members."""

    serving_signatures = IntentModel.serving_signatures

    def __init__(self, members, method: str = "average", weights=None, **kwargs):
        super().__init__(members, method, weights, **kwargs)
        self.labels = members[0].labels


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class PurchaseEnsemble(Ensemble):
    """An ensemble of `PurchaseModel`s: its members' signatures (`purchase_probability`, `embed_user`,
    `embed_item`, `rank`), served by the same code, on the ensemble's outputs."""

    input_specs = PurchaseModel.input_specs
    embed_items = PurchaseModel.embed_items
    embed_users = PurchaseModel.embed_users
    _one_side = PurchaseModel._one_side
    rank = PurchaseModel.rank
    rank_specs = PurchaseModel.rank_specs
    rank_inputs = PurchaseModel.rank_inputs
    serving_signatures = PurchaseModel.serving_signatures

    def __init__(self, members, method: str = "average", weights=None, **kwargs):
        super().__init__(members, method, weights, **kwargs)
        self.parts = members[0].parts
        self.item_features = members[0].item_features
        self.intent_model = members[0].intent_model  # `rank`'s intent outputs, as the first member's


def build_ensemble(members, method: str = "average", weights=None) -> Ensemble:
    """An `IntentEnsemble` or `PurchaseEnsemble` of `members` (trained models of one head)."""
    kind = {IntentModel: IntentEnsemble, PurchaseModel: PurchaseEnsemble}.get(type(members[0]))
    if kind is None:
        raise ValueError(f"ensembles take intent or purchase models, got {type(members[0]).__name__}")
    return kind(members, method, weights)


def _check_alike(members) -> None:
    kinds = {type(member).__name__ for member in members}
    if len(kinds) > 1:
        raise ValueError(f"ensemble members must be models of one head, got {sorted(kinds)}")
    if len({id(member.backbone) for member in members}) < len(members):  # a .keras file could not reload it
        raise ValueError("ensemble members share an encoder object; build or load each with its own")
    if isinstance(members[0], IntentModel):
        labels = [member.labels for member in members]
        if any(found != labels[0] for found in labels):
            raise ValueError(f"ensemble members must share their labels, got {labels}")
    elif isinstance(members[0], PurchaseModel):
        specs = [
            {name: (spec.shape.as_list(), spec.dtype.name) for name, spec in m.input_specs().items()}
            for m in members
        ]
        if any(found != specs[0] for found in specs):
            different = sorted(
                {n for found in specs for n in {*found, *specs[0]} if found.get(n) != specs[0].get(n)}
            )
            raise ValueError(f"ensemble members must take the same inputs; they differ in {different}")
