"""Keras metrics the stock set lacks, for validation during `fit` and the distributed loop."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ecomrec_tf")
class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 of class probabilities against integer labels, as scikit-learn's
    `f1_score(average="macro")` computes it: the mean over every class that occurs as a label or a
    prediction of `2 tp / (2 tp + fp + fn)`. Accumulates a confusion matrix, so it is exact over an
    epoch (Keras's `F1Score` wants one-hot labels).

    Args:
        num_classes: number of classes.
    """

    def __init__(self, num_classes: int, name: str = "macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_weight(
            name="confusion", shape=(num_classes, num_classes), initializer="zeros", dtype="float32"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        predicted = tf.argmax(tf.reshape(y_pred, [-1, self.num_classes]), axis=-1, output_type=tf.int32)
        weights = None if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        self.confusion.assign_add(
            tf.math.confusion_matrix(labels, predicted, self.num_classes, weights=weights, dtype=tf.float32)
        )

    def result(self):
        true_positive = tf.linalg.diag_part(self.confusion)
        actual, predicted = tf.reduce_sum(self.confusion, axis=1), tf.reduce_sum(self.confusion, axis=0)
        f1 = tf.math.divide_no_nan(2 * true_positive, actual + predicted)
        present = tf.cast(actual + predicted > 0, tf.float32)
        return tf.math.divide_no_nan(tf.reduce_sum(f1 * present), tf.reduce_sum(present))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
