"""Evaluation metrics and plots."""

from ecomrec_tf.evaluation.classification import (
    classification_metrics,
    format_report,
    plot_confusion_matrix,
    plot_history,
)

__all__ = ["classification_metrics", "format_report", "plot_confusion_matrix", "plot_history"]
