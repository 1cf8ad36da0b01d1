"""Data: the embedded default data generators, readers for users' files, tf.data pipelines."""

from ecomrec_tf.data.intent_data import generate_intent_data, write_intent_data
from ecomrec_tf.data.pipeline import text_classification_dataset, text_classification_dataset_from_tfrecords
from ecomrec_tf.data.readers import DataError, read_intent_file, read_records

__all__ = [
    "DataError",
    "generate_intent_data",
    "read_intent_file",
    "read_records",
    "text_classification_dataset",
    "text_classification_dataset_from_tfrecords",
    "write_intent_data",
]
