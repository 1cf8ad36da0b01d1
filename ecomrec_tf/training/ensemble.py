"""Fitting an ensemble's stacking weights on validation data."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax

from ecomrec_tf.models.ensemble import EPSILON, Ensemble


def stacking_scores(outputs: list[dict]) -> np.ndarray:
    """The members' scores side by side, `(examples, members, ...)`: log-probabilities (intent) or
    calibrated logits (purchase), what the stacker weighs."""
    if "probabilities" in outputs[0]:
        return np.stack(
            [np.log(np.asarray(o["probabilities"], np.float64) + EPSILON) for o in outputs], axis=1
        )
    return np.stack([np.asarray(o["logit"], np.float64).reshape(-1) for o in outputs], axis=1)


def fit_stacking(ensemble: Ensemble, outputs: list[dict], labels) -> dict:
    """Fits the stacker's member weights (and, for purchase, its bias) by maximum likelihood on the
    members' predictions `outputs` for validation data and their true `labels` (label ids, or 0/1), and
    sets them in the ensemble.

    Returns:
        `{"weights": [...], "bias": float, "log_loss": fitted, "log_loss_of_mean": at the start}`.

    Raises:
        ValueError: when the ensemble does not stack.
    """
    if ensemble.method != "stacking":
        raise ValueError(f"the ensemble averages (method {ensemble.method!r}); nothing to fit")
    scores, labels = stacking_scores(outputs), np.asarray(labels).astype(int)
    members = scores.shape[1]
    classes = scores.ndim == 3

    def log_loss(params: np.ndarray) -> float:
        weights, bias = params[:members], params[members]
        if classes:  # softmax over the weighted log-probabilities; no bias
            chosen = log_softmax(np.einsum("nmc,m->nc", scores, weights), axis=-1)
            return float(-chosen[np.arange(len(labels)), labels].mean())
        p = np.clip(expit(scores @ weights + bias), EPSILON, 1 - EPSILON)
        return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())

    start = np.r_[np.full(members, 1.0 / members), 0.0]
    bounds = [(None, None)] * members + [(0.0, 0.0) if classes else (None, None)]
    found = minimize(log_loss, start, method="L-BFGS-B", bounds=bounds)
    ensemble.stacker.weight.assign(found.x[:members])
    ensemble.stacker.bias.assign(found.x[members])
    return {
        "weights": found.x[:members].tolist(),
        "bias": float(found.x[members]),
        "log_loss": float(found.fun),
        "log_loss_of_mean": log_loss(start),
    }
