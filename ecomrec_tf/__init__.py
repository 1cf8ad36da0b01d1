"""ecomrec_tf: BERT models for e-commerce search, recommendation and customer service.

Importing the top-level package is cheap: TensorFlow, Keras and keras-hub are imported by the
submodules that need them (``ecomrec_tf.encoders``, ``ecomrec_tf.models``, ...). It also makes
``keras.models.load_model`` read the package's ``.keras`` files: the first load registers every Keras
object the package saves (models, layers, optimizer, schedules, metrics; ``ecomrec_tf.keras_objects``),
and loaded BERT encoders get the package's training kernels (``ecomrec_tf.encoders.fast_kernels``).
"""

import importlib.abc
import importlib.util
import os
import sys

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the progress bars users read.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"


def _registering(load):
    def load_model(*args, **kwargs):
        import ecomrec_tf.keras_objects  # noqa: F401  (registers; imported once, on the first load)
        from ecomrec_tf.encoders.fast_kernels import use_fast_kernels

        model = load(*args, **kwargs)
        # A reloaded BERT encoder trains with the same kernels as one from `load_encoder` (same outputs).
        return use_fast_kernels(model) if hasattr(model, "_flatten_layers") else model

    load_model.__wrapped__, load_model.__doc__ = load, load.__doc__
    return load_model


def _wrap_load_model(keras) -> None:
    if not hasattr(keras.saving.load_model, "__wrapped__"):
        keras.saving.load_model = keras.models.load_model = _registering(keras.saving.load_model)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Wraps `keras.saving.load_model` once `keras` is imported (nothing else is touched)."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        # Stays in place until keras is executed: TensorFlow looks keras up (find_spec) before importing it.
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _wrap_load_model(module)

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _wrap_load_model(sys.modules["keras"])
else:
    sys.meta_path.insert(0, _AfterKeras())
