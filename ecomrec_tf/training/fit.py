"""`model.fit` with the callbacks every run needs: TensorBoard, crash recovery, best weights."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf


def run_callbacks(
    run_dir: str | Path,
    monitor: str = "val_loss",
    patience: int | None = None,
) -> list[keras.callbacks.Callback]:
    """TensorBoard logs in `run_dir`, resume-after-crash state in `run_dir/backup`, early stopping.

    `BackupAndRestore` saves at each epoch end and is deleted when `fit` finishes, so a run that
    crashes resumes from its last finished epoch when started again with the same `run_dir`.
    """
    run_dir = Path(run_dir)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log_dir=str(run_dir), update_freq="epoch"),
        keras.callbacks.BackupAndRestore(backup_dir=str(run_dir / "backup")),
    ]
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=patience,
                mode="min" if monitor.endswith("loss") else "max",
                restore_best_weights=True,
            )
        )
    return callbacks


def fit(
    model: keras.Model,
    train: tf.data.Dataset,
    valid: tf.data.Dataset | None,
    epochs: int,
    run_dir: str | Path,
    patience: int | None = None,
    verbose: int | str = "auto",
    monitor: str = "val_loss",
    callbacks: list[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Trains a compiled model with `run_callbacks` (early stopping on `monitor` with `patience`,
    restoring the best epoch's weights), showing Keras progress bars. `callbacks` run first each
    epoch, so metrics they add to the logs can be monitored."""
    return model.fit(
        train,
        validation_data=valid,
        epochs=epochs,
        shuffle=False,  # datasets arrive shuffled by their pipeline
        callbacks=[*callbacks, *run_callbacks(run_dir, monitor=monitor, patience=patience)],
        verbose=verbose,
    )


def save_run_config(run_dir: str | Path, arguments: dict, skip: tuple[str, ...] = ()) -> dict:
    """Writes a training function's arguments (`locals()` on entry) to `run_dir/config.json`.

    Paths become strings; `run_dir`, `verbose` and the names in `skip` are left out.
    """
    skipped = {"run_dir", "verbose", *skip}
    config = {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items() if k not in skipped}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "config.json").write_text(json.dumps(config, indent=2))
    return config
