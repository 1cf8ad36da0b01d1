import json

import pytest

from ecomrec_tf.cli import main


@pytest.fixture(scope="module")
def trained_run(intent_data_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    code = main(
        [
            "train",
            "intent",
            "--train",
            str(intent_data_dir / "train.jsonl"),
            "--valid",
            str(intent_data_dir / "valid.jsonl"),
            "--encoder",
            "tiny",
            "--epochs",
            "1",
            "--learning-rate",
            "1e-3",
            "--runs-dir",
            str(runs),
            "--run-name",
            "r1",
        ]
    )
    assert code == 0
    return runs / "r1"


def test_train_writes_the_run_folder(trained_run):
    for name in (
        "model.keras",
        "config.json",
        "history.json",
        "curves.png",
        "valid_metrics.json",
        "valid_confusion_matrix.png",
    ):
        assert (trained_run / name).is_file(), name
    assert any((trained_run / "train").glob("events.out.tfevents.*"))
    assert any((trained_run / "validation").glob("events.out.tfevents.*"))
    assert not (trained_run / "backup").exists()  # removed once training finished
    assert json.loads((trained_run / "config.json").read_text())["encoder"] == "tiny"


def test_evaluate_prints_json(trained_run, intent_data_dir, capsys):
    assert (
        main(
            [
                "evaluate",
                "intent",
                "--model",
                str(trained_run),
                "--data",
                str(intent_data_dir / "test.jsonl"),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["accuracy"] <= 1 and len(result["per_class"]) == 22
    assert (trained_run / "test_confusion_matrix.png").is_file()


def test_export_then_predict_from_the_saved_model(trained_run, tmp_path, capsys):
    base = tmp_path / "saved_models"
    assert main(["export", "--model", str(trained_run / "model.keras"), "--base-dir", str(base)]) == 0
    assert (base / "intent" / "1" / "saved_model.pb").is_file()
    capsys.readouterr()
    assert main(["predict", "--model", str(base / "intent"), "--json", "where is my order", ""]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["text"] for row in rows] == ["where is my order", ""]
    assert all(0 < row["confidence"] <= 1 for row in rows)


def test_missing_training_file_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "train",
            "intent",
            "--train",
            str(tmp_path / "nope.jsonl"),
            "--valid",
            "x.jsonl",
            "--encoder",
            "tiny",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_validation_label_unseen_in_training_is_refused(intent_data_dir, tmp_path, capsys):
    valid = tmp_path / "valid.jsonl"
    valid.write_text('{"text": "hello", "label": "order_status"}\n{"text": "x", "label": "teleport"}\n')
    code = main(
        [
            "train",
            "intent",
            "--train",
            str(intent_data_dir / "train.jsonl"),
            "--valid",
            str(valid),
            "--encoder",
            "tiny",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "valid.jsonl: labels not in the training data: 'teleport' (1x)" in capsys.readouterr().err


def test_unknown_encoder_is_a_clear_error(intent_data_dir, tmp_path, capsys):
    code = main(
        [
            "train",
            "intent",
            "--train",
            str(intent_data_dir / "train.jsonl"),
            "--valid",
            str(intent_data_dir / "valid.jsonl"),
            "--encoder",
            "bert-xxl",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "unknown encoder 'bert-xxl'" in capsys.readouterr().err
