"""`model.fit` with the callbacks every run needs: TensorBoard, crash recovery, best weights."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ecomrec_tf.training.precision import to_float32

MODEL_FILE = "model.keras"  # the trained model in a run folder
STEP_SCALARS_EVERY = 50  # steps between TensorBoard's per-step training scalars (`batch_loss`, ...)


class CrashSafeBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose saves survive a kill at any moment, and that resumes the whole run.

    Keras's callback rewrites `latest.weights.h5` in place, so a kill during the write leaves a file
    no rerun can open. Here each epoch's state goes to a fresh hidden folder (the weights with the
    optimizer's, the epoch, every finished epoch's logs and early stopping's state with its best
    weights), fsynced and renamed into place as `epoch-NNNNN`; a rerun resumes from the newest
    complete one and ignores half-written ones. With `keep` the backup outlives `fit`, for the
    caller to delete once the trained model is saved (`save_model` does), so a kill
    between the two loses nothing; otherwise it is deleted when `fit` finishes, as Keras's.
    """

    STATE = "state.json"

    def __init__(
        self,
        backup_dir: str | Path,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
        keep: bool = False,
    ):
        super().__init__(backup_dir=str(backup_dir), save_freq="epoch", delete_checkpoint=not keep)
        self.early_stopping = early_stopping
        self.logs: dict[str, list[float]] = {}  # every finished epoch's, resumed ones included

    def _states(self) -> list[Path]:
        return sorted(Path(self.backup_dir).glob("epoch-*"), reverse=True)

    def on_train_begin(self, logs=None):
        self.logs = {}
        for folder in self._states():  # the newest complete state; older ones only if it is unreadable
            try:
                state = json.loads((folder / self.STATE).read_text())
            except (OSError, ValueError):
                continue
            self._weights_path = str(folder / "weights.weights.h5")
            self._training_metadata_path = str(folder / self.STATE)
            self._load_model()
            self.logs = state["logs"]
            if self.early_stopping is not None and state.get("early_stopping"):
                stopping = self.early_stopping
                stopping.wait, stopping.best, stopping.best_epoch = state["early_stopping"]
                if (folder / "best.npz").is_file():
                    with np.load(folder / "best.npz") as best:
                        stopping.best_weights = [best[f"arr_{i}"] for i in range(len(best.files))]
            return

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.logs.setdefault(key, []).append(float(value))
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            delete_backup(self.backup_dir)

    def _save_model(self):
        root = Path(self.backup_dir)
        final = root / f"epoch-{self._current_epoch:05d}"
        partial = root / f".{final.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.model.save_weights(partial / "weights.weights.h5")
        state = {"epoch": self._current_epoch, "batch": 0, "logs": self.logs}
        stopping = self.early_stopping
        if stopping is not None:
            best = None if stopping.best is None else float(stopping.best)
            state["early_stopping"] = [int(stopping.wait), best, int(stopping.best_epoch)]
            if stopping.best_weights is not None:
                np.savez(partial / "best.npz", *stopping.best_weights)
        (partial / self.STATE).write_text(json.dumps(state), encoding="utf-8")
        for path in partial.iterdir():
            fsync(path)
        fsync(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        fsync(root)
        for stale in [*self._states()[1:], *root.glob(".epoch-*")]:  # older states, dead writers' folders
            shutil.rmtree(stale, ignore_errors=True)


def delete_backup(backup_dir: str | Path) -> None:
    """Deletes a run's backup: renamed away first, so a kill mid-delete leaves nothing to resume from
    half-deleted."""
    backup_dir = Path(backup_dir)
    if backup_dir.exists():
        doomed = backup_dir.with_name(f".{backup_dir.name}.deleted-{os.getpid()}")
        backup_dir.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    for stale in backup_dir.parent.glob(f".{backup_dir.name}.deleted-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_atomically(path: str | Path, text: str) -> None:
    """Writes `text` to `path` via a fsynced temporary file renamed over it: readers (and a rerun
    after a kill) see the old content or the new, never a part."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    fsync(partial)
    partial.replace(path)


def fsync(path: Path) -> None:
    """Flushes a file's data to disk (before renaming it into place)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class RunHistory(keras.callbacks.History):
    """The `History` `fit` returns, holding the epochs a resumed run finished before its crash too."""

    def __init__(self, backup: CrashSafeBackup):
        super().__init__()
        self.backup = backup

    def on_train_begin(self, logs=None):  # after `backup` restored its state
        self.history = {key: list(values) for key, values in self.backup.logs.items()}
        self.epoch = list(range(len(next(iter(self.history.values()), []))))


def run_callbacks(
    run_dir: str | Path,
    monitor: str = "val_loss",
    patience: int | None = None,
    keep_backup: bool = False,
) -> list[keras.callbacks.Callback]:
    """TensorBoard logs in `run_dir`, resume-after-crash state in `run_dir/backup`, early stopping.

    `CrashSafeBackup` saves at each epoch end (safe against a kill at any moment) and is deleted
    when `fit` finishes (`keep_backup`: left for the caller to delete once the model is saved), so
    a run that crashes resumes from its last finished epoch, with its early stopping state and
    history, when started again with the same `run_dir`; `fit` then returns every epoch's history.
    """
    run_dir = Path(run_dir)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log_dir=str(run_dir), update_freq=STEP_SCALARS_EVERY)
    ]
    stopping = None
    if patience is not None:
        stopping = keras.callbacks.EarlyStopping(
            monitor=monitor,
            patience=patience,
            mode="min" if monitor.endswith("loss") else "max",
            restore_best_weights=True,
        )
        callbacks.append(stopping)
    backup = CrashSafeBackup(
        run_dir / "backup", stopping, keep=keep_backup
    )  # after early stopping: saves its new state
    return [*callbacks, backup, RunHistory(backup)]


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
    epoch, so metrics they add to the logs can be monitored. The crash backup stays in
    `run_dir/backup` until the trained model is saved (`save_model`)."""
    return model.fit(
        train,
        validation_data=valid,
        epochs=epochs,
        shuffle=False,  # datasets arrive shuffled by their pipeline
        callbacks=[*callbacks, *run_callbacks(run_dir, monitor, patience, keep_backup=True)],
        verbose=verbose,
    )


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Saves a `.keras` file via a fsynced temporary file renamed over it, so a crash (or a power
    cut) never leaves a truncated model, then deletes the crash backup `fit` left beside it
    (`backup/`), which the saved model supersedes. A model trained in mixed precision is switched to
    float32 first (`precision.to_float32`): saved models compute in float32 on any machine."""
    path = Path(path)
    to_float32(model)
    partial = path.with_name(path.name + ".partial.keras")
    model.save(partial)
    fsync(partial)
    partial.replace(path)
    delete_backup(path.parent / "backup")
    return path


def save_run_config(run_dir: str | Path, arguments: dict, skip: tuple[str, ...] = ()) -> dict:
    """Writes a training function's arguments (`locals()` on entry) to `run_dir/config.json`.

    Paths become strings; `run_dir`, `verbose` and the names in `skip` are left out.
    """
    skipped = {"run_dir", "verbose", *skip}
    config = {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items() if k not in skipped}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "config.json").write_text(json.dumps(config, indent=2))
    return config
