"""What a user sees on the console running `ecomrec-tf` with output into a file."""

import subprocess
import sys

import pytest


def test_keras_prints_one_line_per_epoch_when_output_is_not_a_terminal(monkeypatch):
    from ecomrec_tf.cli.options import verbosity

    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert verbosity() == 2  # Keras: one line per epoch, no bar of control codes
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert verbosity() == "auto"


@pytest.mark.subprocess
def test_commands_print_no_start_up_noise(tiny_intent_export, tmp_path):
    """As a user runs them: TensorFlow starts (devices, ops) but prints nothing on stderr."""

    def command(*args):
        done = subprocess.run(
            [sys.executable, "-m", "ecomrec_tf.cli", *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    predict = command("predict", "--model", str(tiny_intent_export[1]), "where is my parcel")
    assert predict.stderr == "" and "where is my parcel" in predict.stdout
    assert command("--help").stderr == ""
