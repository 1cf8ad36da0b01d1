"""Training: optimizers, the `fit` entry point and the distributed loop shared by every model."""

from ecomrec_tf.evaluation.intent import evaluate_intent
from ecomrec_tf.training.fit import fit, run_callbacks, save_model
from ecomrec_tf.training.intent import train_intent
from ecomrec_tf.training.loop import Trainer, task_probabilities
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.purchase import evaluate_purchase, train_purchase
from ecomrec_tf.training.purchase_update import update_purchase
from ecomrec_tf.training.task import Task, text_task

__all__ = [
    "Task",
    "Trainer",
    "evaluate_intent",
    "evaluate_purchase",
    "fit",
    "make_optimizer",
    "run_callbacks",
    "save_model",
    "task_probabilities",
    "text_task",
    "train_intent",
    "train_purchase",
    "update_purchase",
]
