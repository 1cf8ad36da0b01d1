"""Training: optimizers, callbacks and the fit entry point shared by every model."""

from ecomrec_tf.training.fit import fit, run_callbacks
from ecomrec_tf.training.intent import evaluate_intent, save_model, train_intent
from ecomrec_tf.training.loop import Trainer
from ecomrec_tf.training.optimizer import make_optimizer

__all__ = [
    "Trainer",
    "evaluate_intent",
    "fit",
    "make_optimizer",
    "run_callbacks",
    "save_model",
    "train_intent",
]
