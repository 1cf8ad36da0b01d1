import json

import pytest

from ecomrec_tf.cli import main


def test_the_tuner_searches_and_reports_the_best_trial(tmp_path, intent_data_dir, capsys):
    args = [
        "tune",
        "intent",
        "--train",
        str(intent_data_dir / "train.jsonl"),
        "--valid",
        str(intent_data_dir / "valid.jsonl"),
        "--encoder",
        "tiny",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    best = json.loads(printed[printed.rindex("\n{") :])
    assert set(best["hyperparameters"]) == {"train_top_layers", "batch_size", "dropout", "learning_rate"}
    assert 0 <= best["val_accuracy"] <= 1
    assert 1e-5 <= best["hyperparameters"]["learning_rate"] <= 1e-3
    assert json.loads((tmp_path / "best.json").read_text()) == best
    trials = [p for p in (tmp_path / "intent").iterdir() if p.name.startswith("trial_")]
    assert len(trials) == 2
    scores = [json.loads((trial / "trial.json").read_text())["score"] for trial in trials]
    assert best["val_accuracy"] == pytest.approx(max(scores))  # the best of the trials, not any one
