"""What a user sees on the console running `ecomrec-tf` with output into a file."""

import subprocess
import sys

import pytest


@pytest.mark.subprocess
def test_commands_print_no_start_up_noise_and_epoch_lines_into_a_file(intent_data_dir, tmp_path):
    """As a user runs them, output to a file: no TensorFlow start-up lines, no progress-bar codes."""

    def command(*args):
        done = subprocess.run(
            [sys.executable, "-m", "ecomrec_tf.cli", *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    data = intent_data_dir
    files = ["--train", str(data / "train.jsonl"), "--valid", str(data / "valid.jsonl")]
    options = ["--encoder", "tiny", "--epochs", "2", "--sequence-length", "16", "--runs-dir", str(tmp_path)]
    train = command("train", "intent", *files, *options, "--run-name", "q")
    assert train.stderr == "", train.stderr
    assert "\x1b[" not in train.stdout and "\r" not in train.stdout
    assert train.stdout.count("Epoch ") == 2 and train.stdout.count(" - val_macro_f1: ") == 2
    predict = command("predict", "--model", str(tmp_path / "q"), "where is my parcel")
    assert predict.stderr == "" and "where is my parcel" in predict.stdout
    assert command("--help").stderr == ""
