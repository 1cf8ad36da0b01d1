"""In-graph text preprocessing shared by training and serving."""

from ecomrec_tf.preprocessing.text_preprocessor import TextPreprocessor, normalize_text

__all__ = ["TextPreprocessor", "normalize_text"]
