import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.training import crash_script

# Each point kills the run once; every rerun resumes from what the kills before it left.
KILLS = ["batch:2", "weights:3", "state:4", "cleanup:5", "save:0"]


def _run(run_dir, kill_at=None):
    return subprocess.run(
        [sys.executable, "-m", "tests.training.crash_script", str(run_dir),
         *(["--kill-at", kill_at] if kill_at else [])],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip


@pytest.mark.subprocess
def test_a_run_killed_at_every_point_of_an_epoch_resumes_to_the_unbroken_result(tmp_path):
    """SIGKILL mid-epoch, while the backup's weights are half written, before and after the backup is
    renamed into place, and while the trained model is half written: each rerun resumes from the
    last finished epoch (early stopping's best weights included) and the end result, weights and
    history, is the unbroken run's."""
    run = tmp_path / "run"
    resumed_at = []
    for kill in KILLS:
        killed = _run(run, kill)
        assert killed.returncode == -signal.SIGKILL, (kill, killed.stderr[-3000:])
        resumed_at.append(int(killed.stdout.split("resumed at epoch")[1].split()[0]))
    finished = _run(run)
    assert finished.returncode == 0, finished.stderr[-3000:]
    # Where each rerun started: a kill loses at most the epoch it interrupts (the kill after the
    # rename keeps epoch 5).
    assert resumed_at == [0, 1, 2, 3, 5]
    assert "resumed at epoch 6" in finished.stdout  # killed saving the model: nothing to retrain
    assert not (run / "backup").exists() and not list(run.glob(".*"))  # nothing half-written left

    model, history = crash_script.train(tmp_path / "unbroken")
    resumed = np.load(run / "final.npz")
    for index, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(resumed[f"arr_{index}"], weight, atol=1e-5)
    resumed_history = json.loads((run / "history.json").read_text())
    assert set(resumed_history) == set(history) and len(resumed_history["val_loss"]) == 6
    for key, values in history.items():
        np.testing.assert_allclose(resumed_history[key], values, rtol=1e-5)
    # Early stopping restored the best epoch, before the last: a resume that lost its state would not.
    assert int(np.argmin(history["val_loss"])) < 5
