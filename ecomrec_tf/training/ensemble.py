"""Fitting an ensemble's stacker on validation data, and scoring members and ensemble side by side."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ecomrec_tf.models.ensemble import EPSILON, Ensemble


def stacking_features(ensemble: Ensemble, outputs: list[dict]) -> np.ndarray:
    """The stacker's inputs from the members' predictions: log-probabilities (intent) or logits
    (purchase), side by side."""
    if "probabilities" in outputs[0]:
        return np.concatenate([np.log(np.asarray(o["probabilities"]) + EPSILON) for o in outputs], axis=-1)
    return np.stack([np.asarray(o["logit"]).reshape(-1) for o in outputs], axis=-1)


def fit_stacking(ensemble: Ensemble, outputs: list[dict], labels, c: float = 1.0) -> LogisticRegression:
    """Fits the stacker, a logistic regression (multinomial for intents) on `stacking_features`, to the
    members' predictions `outputs` on validation data and their true `labels` (label ids, or 0/1), and
    sets it in the ensemble.

    Raises:
        ValueError: when the ensemble does not stack, or a label never occurs in `labels`.
    """
    if ensemble.method != "stacking":
        raise ValueError(f"the ensemble averages (method {ensemble.method!r}); nothing to fit")
    labels = np.asarray(labels).astype(int)
    units = int(ensemble.stacker.kernel.shape[-1])
    missing = sorted(set(range(max(units, 2))) - set(labels.tolist()))
    if missing:
        names = [ensemble.labels[i] for i in missing] if hasattr(ensemble, "labels") else missing
        raise ValueError(f"stacking needs every label in the validation data; missing: {names}")
    model = LogisticRegression(C=c, max_iter=2000).fit(stacking_features(ensemble, outputs), labels)
    ensemble.stacker.kernel.assign(model.coef_.T)  # (features, 1): one logit; (features, labels): softmax
    ensemble.stacker.bias.assign(model.intercept_)
    return model
