"""Runs an exported SavedModel the way TF Serving does: TensorFlow plus TF Text's C++ ops, nothing else.

A script, not a module of the package. It blocks imports of keras, keras_hub and ecomrec_tf and
registers TF Text's ops from their shared libraries (TF Serving links the same kernels), so a run
proves an export needs none of those Python packages at serving time. (TF Text's Python package
would import Keras itself, which is why it is not imported.)

    python ecomrec_tf/serving/tf_only.py predict saved_models/intent/1 "where is my order"
        -> one JSON object: {"outputs": [one dict per text]}
    python ecomrec_tf/serving/tf_only.py saved_model_cli run --dir saved_models/intent/1 \
        --tag_set serve --signature_def serving_default --input_exprs 'text=["hi"]'
        -> TensorFlow's saved_model_cli, with TF Text's ops registered
"""

import glob
import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _blocked in ("keras", "keras_hub", "ecomrec_tf"):
    sys.modules[_blocked] = None  # any import of these now fails loudly

import tensorflow as tf  # noqa: E402


def register_tf_text_ops():
    """Loads every TF Text op library without importing TF Text's Python package."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None:
        sys.exit("tensorflow-text is not installed")
    ops_dir = os.path.join(os.path.dirname(spec.origin), "python", "ops")
    for library in sorted(glob.glob(os.path.join(ops_dir, "*.so"))):
        tf.load_op_library(library)


def _jsonable(value):
    value = value.numpy()
    if value.dtype == object:
        return [v.decode("utf-8", errors="replace") for v in value.tolist()]
    return value.tolist()


def predict(model_dir, texts, signature="serving_default"):
    serve = tf.saved_model.load(model_dir).signatures[signature]
    outputs = serve(text=tf.constant(texts, dtype=tf.string))
    columns = {name: _jsonable(value) for name, value in outputs.items()}
    return [{name: column[i] for name, column in columns.items()} for i in range(len(texts))]


def main(argv):
    register_tf_text_ops()
    if len(argv) >= 2 and argv[0] == "predict":
        print(json.dumps({"outputs": predict(argv[1], argv[2:])}, ensure_ascii=False))
    elif argv and argv[0] == "saved_model_cli":
        from tensorflow.python.tools import saved_model_cli

        sys.argv = ["saved_model_cli", *argv[1:]]
        saved_model_cli.main()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
