"""Every Keras object ecomrec_tf saves in `.keras` files, registered by importing their modules:
models, layers, the optimizer and its schedule, metrics. `import ecomrec_tf` imports this module on
the first `keras.models.load_model` call."""

import ecomrec_tf.encoders.sentence_encoder  # noqa: F401
import ecomrec_tf.heads  # noqa: F401
import ecomrec_tf.models  # noqa: F401
import ecomrec_tf.preprocessing  # noqa: F401
import ecomrec_tf.training.metrics  # noqa: F401
import ecomrec_tf.training.optimizer  # noqa: F401
import ecomrec_tf.training.reply  # noqa: F401
