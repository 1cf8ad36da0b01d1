import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training.loop import Trainer
from tests.conftest import LABELS, TEXTS

IDS = [0, 1, 2, 0, 1, 2]


def fresh_model():
    keras.utils.set_random_seed(3)
    return build_intent_model(load_encoder("tiny", dropout=0.0), LABELS, sequence_length=16, dropout=0.0)


def test_the_loop_matches_fit_step_for_step():
    """Same model, data and seed (no dropout): identical weights after an epoch of fit or of the loop."""
    data = text_classification_dataset(TEXTS * 3, IDS * 3, batch_size=4, bucket=False)  # a partial last batch
    by_fit = fresh_model()
    by_fit.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    by_fit.fit(data, epochs=1, verbose=0)
    by_loop = fresh_model()
    trainer = Trainer(by_loop, keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy())
    losses = []
    trainer.train_epoch(data, on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 5 and all(np.isfinite(losses))
    for a, b in zip(by_fit.weights, by_loop.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


@pytest.mark.subprocess
def test_two_replicas_match_one_at_the_same_global_batch():
    """MirroredStrategy over 2 logical CPUs gives the weights of 1 replica (tolerance 1e-5)."""
    script = textwrap.dedent(
        """
        import sys, numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        sys.path.insert(0, ".")
        import keras
        from ecomrec_tf.data import text_classification_dataset
        from tests.training.test_loop import fresh_model, TEXTS, IDS
        from ecomrec_tf.training.loop import Trainer
        results = []
        one = tf.distribute.OneDeviceStrategy("/cpu:0")
        for strategy in (one, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
            with strategy.scope():
                model = fresh_model()
                loss = keras.losses.SparseCategoricalCrossentropy()
                trainer = Trainer(model, keras.optimizers.Adam(1e-3), loss, strategy)
            data = strategy.distribute_datasets_from_function(
                lambda c: text_classification_dataset(TEXTS * 4, IDS * 4, 8, bucket=False, input_context=c)
            )
            trainer.train_epoch(data)
            results.append([w.numpy() for w in model.weights])
            print(strategy.num_replicas_in_sync, "replicas")
        print("max difference", max(float(np.abs(a - b).max()) for a, b in zip(*results)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas" in result.stdout
    difference = float(result.stdout.strip().splitlines()[-1].split()[-1])
    assert difference < 1e-5
