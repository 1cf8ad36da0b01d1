"""Trains a small model with `training.fit` in a fresh process and SIGKILLs itself at a chosen point,
for the crash-resume tests and `bench/crash_resume.py`.

Usage: python -m tests.training.crash_script RUN_DIR [--kill-at POINT:EPOCH]

Points: `batch` (mid-epoch), `weights` (the backup's weights file half written), `state` (the backup
written, not yet renamed into place), `cleanup` (renamed, older backups not yet deleted), `save`
(training done, the model file half written). Prints `resumed at epoch N`, then `epoch N backed up`
after each epoch, and when done writes
`RUN_DIR/final.npz` (the weights) and `RUN_DIR/history.json`.
"""

import argparse
import importlib
import json
import os
import signal
from pathlib import Path

import keras
import numpy as np

fit_module = importlib.import_module("ecomrec_tf.training.fit")  # the package exports the function

EPOCHS = 6


def build() -> tuple[keras.Model, tuple, tuple]:
    """A small regression model and data, deterministic: one run reproduces another exactly."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.3 * np.sin(3 * x[:, :1])).astype("float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16, activation="tanh")(inputs)))
    model.compile(keras.optimizers.Adam(0.02), loss="mse")
    return model, (x[:64], y[:64]), (x[64:], y[64:])


def train(run_dir: Path, verbose: int = 0) -> tuple[keras.Model, dict]:
    import tensorflow as tf

    model, (x, y), valid = build()
    train_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    valid_data = tf.data.Dataset.from_tensor_slices(valid).batch(32)
    history = fit_module.fit(
        model, train_data, valid_data, epochs=EPOCHS, run_dir=run_dir, patience=2, verbose=verbose
    )
    return model, history.history


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def half_written(path: Path) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    die()


def arm(point: str, epoch: int) -> list[keras.callbacks.Callback]:
    """Patches the package (in this process only) to die at `point`; callbacks to add to `fit`."""
    backup = fit_module.CrashSafeBackup

    def at_epoch(self) -> bool:
        return self._current_epoch == epoch

    if point == "batch":

        class Die(keras.callbacks.Callback):
            def on_epoch_begin(self, index, logs=None):
                self.index = index

            def on_train_batch_end(self, batch, logs=None):
                if self.index + 1 == epoch and batch == 1:
                    die()

        return [Die()]
    if point in ("weights", "state", "cleanup"):
        real_save, real_fsync = backup._save_model, fit_module.fsync

        def save(self):
            if at_epoch(self) and point == "weights":
                real_weights = self.model.save_weights

                def weights(path, **kwargs):
                    real_weights(path, **kwargs)
                    half_written(path)

                self.model.save_weights = weights
            if at_epoch(self):

                def fsync(path):
                    real_fsync(path)
                    renamed = path == Path(self.backup_dir)
                    if (point == "state" and path.name.startswith(".epoch-")) or (
                        point == "cleanup" and renamed
                    ):
                        die()

                fit_module.fsync = fsync
            real_save(self)

        backup._save_model = save
        return []
    if point == "save":
        real = keras.Model.save
        keras.Model.save = lambda self, path, **kwargs: (real(self, path, **kwargs), half_written(path))
        return []
    raise SystemExit(f"unknown kill point {point!r}")


class Progress(keras.callbacks.Callback):
    """Prints `epoch N backed up` after each epoch's backup (it runs after `run_callbacks`)."""

    def on_epoch_end(self, epoch, logs=None):
        print("epoch", epoch + 1, "backed up", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--kill-at", default=None, help="POINT:EPOCH")
    args = parser.parse_args()
    callbacks = []
    if args.kill_at:
        point, _, epoch = args.kill_at.partition(":")
        callbacks = arm(point, int(epoch or 0))
    states = sorted((args.run_dir / "backup").glob("epoch-*"))
    print("resumed at epoch", int(states[-1].name.split("-")[1]) if states else 0, flush=True)
    real_callbacks = fit_module.run_callbacks
    fit_module.run_callbacks = lambda *a, **k: [*callbacks, *real_callbacks(*a, **k), Progress()]
    model, history = train(args.run_dir)
    from ecomrec_tf.training.fit import save_model

    save_model(model, args.run_dir / "model.keras")
    np.savez(args.run_dir / "final.npz", *model.get_weights())
    (args.run_dir / "history.json").write_text(json.dumps(history))


if __name__ == "__main__":
    main()
