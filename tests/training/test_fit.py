import importlib

import keras
import numpy as np
import pytest

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.training import fit
from tests.conftest import TEXTS


class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("simulated crash")


def test_a_crashed_run_resumes_from_its_last_finished_epoch(tiny_intent_model, tmp_path, monkeypatch):
    model = tiny_intent_model
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    data = text_classification_dataset(TEXTS, [0, 1, 2, 0, 1, 2], batch_size=3)
    fit_module = importlib.import_module("ecomrec_tf.training.fit")  # the package's `fit` is the function
    real_callbacks = fit_module.run_callbacks
    monkeypatch.setattr(fit_module, "run_callbacks", lambda *a, **k: real_callbacks(*a, **k) + [Crash()])
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, None, epochs=4, run_dir=tmp_path, verbose=0)
    assert (tmp_path / "backup").is_dir()
    weights_at_crash = [w.numpy().copy() for w in model.weights]

    monkeypatch.setattr(fit_module, "run_callbacks", real_callbacks)
    history = fit(model, data, None, epochs=4, run_dir=tmp_path, verbose=0)
    assert history.epoch == [2, 3]  # epochs 0 and 1 were done before the crash
    assert not (tmp_path / "backup").exists()
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(weights_at_crash, model.weights))
