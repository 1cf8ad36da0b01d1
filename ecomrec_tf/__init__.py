"""ecomrec_tf: BERT models for e-commerce search, recommendation and customer service.

Importing the top-level package is cheap: TensorFlow, Keras and keras-hub are imported by the
submodules that need them (``ecomrec_tf.encoders``, ``ecomrec_tf.models``, ...).
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the progress bars users read.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
