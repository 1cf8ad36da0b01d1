"""In-graph text preprocessing shared by training and serving."""

from ecomrec_tf.preprocessing.mlm_substituter import MLMSubstituter
from ecomrec_tf.preprocessing.slot_extractor import SlotExtractor
from ecomrec_tf.preprocessing.text_augmenter import TextAugmenter, load_synonyms
from ecomrec_tf.preprocessing.text_preprocessor import TextPreprocessor, normalize_text, token_lengths
from ecomrec_tf.preprocessing.whole_word_masker import WholeWordMasker

__all__ = [
    "MLMSubstituter",
    "SlotExtractor",
    "TextAugmenter",
    "TextPreprocessor",
    "WholeWordMasker",
    "load_synonyms",
    "normalize_text",
    "token_lengths",
]
