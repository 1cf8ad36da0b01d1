"""Kill -9 at random moments: does every `fit` run resume, and end where an unbroken run ends?

    python bench/crash_resume.py              # 20 kills
    python bench/crash_resume.py --kills 50

Runs `tests/training/crash_script.py` (a small model trained with `training.fit`, 6 epochs, early
stopping, crash backups each epoch) in a fresh process, SIGKILLs it at a random moment of the epochs
after its first (the backups take much of each epoch, so many kills land inside one; one in the final
model's save), reruns it on the same run folder,
and so on until `--kills` kills have landed; then lets it finish. Prints how many reruns could not
resume (the target is 0) and the largest difference between the final weights and an unbroken run's.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.training.crash_script", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="crash_resume_"))

    begun = time.perf_counter()
    unbroken = start(work / "unbroken")
    lines = [(time.perf_counter(), line) for line in unbroken.stdout]  # "resumed at", "epoch N backed up"
    assert unbroken.wait() == 0, "the unbroken run failed"
    epochs = [at for at, line in lines if "backed up" in line]
    epoch_seconds = (epochs[-1] - epochs[0]) / (len(epochs) - 1)
    print(f"unbroken run: {time.perf_counter() - begun:.1f} s; one epoch + backup {epoch_seconds:.2f} s")

    run, kills, failures, restarts = work / "run", 0, 0, 0
    while True:
        process = start(run)
        line = process.stdout.readline()  # "resumed at epoch N"
        restarts += 1
        if kills < args.kills:
            first = process.stdout.readline()  # the first epoch of this run is traced: kill after it
            left = 6 - int(first.split()[1]) if "backed up" in first else 0
            time.sleep(rng.uniform(0, left * epoch_seconds))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        code = process.wait()
        if code == -signal.SIGKILL:
            kills += 1
            print(f"kill {kills:>3}: {line.strip()}, killed", flush=True)
            continue
        if code != 0:
            failures += 1
            print(f"rerun {restarts}: {line.strip()}, exit {code}: cannot resume", flush=True)
            if failures > 3:
                break
            continue
        if kills >= args.kills:
            break
        print(f"run {restarts}: {line.strip()}, finished before the kill; again", flush=True)
        for path in run.iterdir() if run.exists() else []:
            if path.is_file():
                path.unlink()  # a finished run: start the next one from scratch
    a, b = np.load(run / "final.npz"), np.load(work / "unbroken" / "final.npz")
    difference = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    print(f"\n{kills} kills, {restarts} starts, {failures} reruns that could not resume (target 0)")
    print(f"largest difference from the unbroken run's final weights: {difference:.2e}")


if __name__ == "__main__":
    main()
