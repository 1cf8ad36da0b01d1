"""In-graph text preprocessing shared by training and serving."""

from ecomrec_tf.preprocessing.text_augmenter import TextAugmenter, load_synonyms
from ecomrec_tf.preprocessing.text_preprocessor import TextPreprocessor, normalize_text

__all__ = ["TextAugmenter", "TextPreprocessor", "load_synonyms", "normalize_text"]
