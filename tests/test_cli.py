import json
import sys

import pytest

from ecomrec_tf.cli import main


def train_intent(train, valid, runs_dir, *options) -> int:
    return main(["train", "intent", "--train", str(train), "--valid", str(valid), "--encoder", "tiny",
                 "--runs-dir", str(runs_dir), *options])  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(intent_data_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    data = intent_data_dir
    code = train_intent(data / "train.jsonl", data / "valid.jsonl", runs, "--epochs", "1",
                        "--learning-rate", "1e-3", "--run-name", "r1")  # fmt: skip
    assert code == 0
    return runs / "r1"


def test_train_writes_the_run_folder(trained_run):
    for name in ("model.keras", "config.json", "history.json", "curves.png", "valid_metrics.json",
                 "valid_confusion_matrix.png"):  # fmt: skip
        assert (trained_run / name).is_file(), name
    assert any((trained_run / "train").glob("events.out.tfevents.*"))
    assert any((trained_run / "validation").glob("events.out.tfevents.*"))
    assert not (trained_run / "backup").exists()  # removed once training finished
    config = json.loads((trained_run / "config.json").read_text())
    assert config["encoder"] == "tiny" and config["class_weight"] == "balanced" and config["patience"] == 2
    assert 8 <= config["sequence_length"] <= 64 and config["sequence_length"] % 8 == 0  # fitted to the texts
    assert {"val_accuracy", "val_macro_f1"} <= set(json.loads((trained_run / "history.json").read_text()))
    assert (trained_run / "projector" / "projector_config.pbtxt").is_file()  # intent vectors in TensorBoard
    assert any(trained_run.glob("events.out.tfevents.*"))  # the HParams summary


def test_a_finished_run_is_trained_again_only_with_overwrite(trained_run, intent_data_dir, tmp_path, capsys):
    import shutil

    files, runs = (intent_data_dir / "train.jsonl", intent_data_dir / "valid.jsonl"), tmp_path / "runs"
    shutil.copytree(trained_run, runs / "done")
    before = (runs / "done" / "model.keras").read_bytes()
    assert train_intent(*files, runs, "--epochs", "1", "--run-name", "done") == 2
    error = capsys.readouterr().err
    assert "done: a finished run (it holds model.keras)" in error and "--overwrite" in error
    assert (runs / "done" / "model.keras").read_bytes() == before  # untouched

    (runs / "done" / "notes.txt").write_text("from the old run")
    assert train_intent(*files, runs, "--epochs", "1", "--run-name", "done", "--overwrite") == 0
    assert (runs / "done" / "model.keras").is_file() and not (runs / "done" / "notes.txt").exists()


def test_pr_curves_and_sample_predictions_reach_tensorboard(trained_run):
    import tensorflow as tf

    plugins, tags = set(), set()
    for event_file in (trained_run / "validation").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.add(value.tag)
                plugins.add(value.metadata.plugin_data.plugin_name)
    assert {"pr_curves", "text"} <= plugins
    assert any(tag.startswith("intent/order_status") for tag in tags)


def test_evaluate_prints_json(trained_run, intent_data_dir, capsys):
    test_file = str(intent_data_dir / "test.jsonl")
    assert main(["evaluate", "intent", "--model", str(trained_run), "--data", test_file, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["accuracy"] <= 1 and len(result["per_class"]) == 22
    assert (trained_run / "test_confusion_matrix.png").is_file()


def test_export_then_predict_from_the_saved_model(trained_run, tmp_path, capsys):
    base = tmp_path / "saved_models"
    for _ in range(2):
        assert (
            main(
                [
                    "export",
                    "--model",
                    str(trained_run / "model.keras"),
                    "--out",
                    str(base),
                    "--keep",
                    "1",
                ]
            )
            == 0
        )
    assert not (base / "intent" / "1").exists() and (base / "intent" / "2" / "saved_model.pb").is_file()
    assert 'base_path: "/models/intent"' in (base / "models.config").read_text()
    capsys.readouterr()
    assert main(["predict", "--model", str(base / "intent"), "--json", "where is my order", ""]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["text"] for row in rows] == ["where is my order", ""]
    assert all(0 < row["confidence"] <= 1 for row in rows)


@pytest.mark.slow
def test_distill_trains_a_one_layer_student_of_a_run(trained_run, intent_data_dir, tmp_path, capsys):
    data = intent_data_dir
    code = main(["train", "distill", "--teacher", str(trained_run), "--train", str(data / "train.jsonl"),
                 "--valid", str(data / "valid.jsonl"), "--layers", "1", "--epochs", "1",
                 "--runs-dir", str(tmp_path), "--run-name", "s"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "student: " in printed and "(1 of the teacher's 2 layers;" in printed and "accuracy" in printed
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert (
        config["layers"] == 1 and config["temperature"] == 2.0 and (tmp_path / "s" / "model.keras").is_file()
    )


@pytest.mark.slow
def test_ensemble_stacks_members_reports_them_and_exports_like_a_member(
    trained_run, intent_data_dir, tmp_path, capsys
):
    data, out = intent_data_dir, tmp_path / "ens"
    members = ["--model", str(trained_run), "--model", str(trained_run / "model.keras")]
    code = main(["ensemble", "intent", *members, "--method", "stacking", "--valid", str(data / "valid.jsonl"),
                 "--test", str(data / "test.jsonl"), "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.split("\nmodel: ")[0])
    rows = report["test"]
    assert len(rows) == 3 and {"accuracy", "macro_f1"} <= set(rows["ensemble (stacking)"])
    assert rows[f"member 1: {trained_run}"] == rows[f"member 2: {trained_run / 'model.keras'}"]
    assert len(report["stacker"]["weights"]) == 2 and (out / "ensemble.json").is_file()
    import subprocess  # a fresh process: the ensemble's classes register on import ecomrec_tf alone

    export = [
        sys.executable,
        "-m",
        "ecomrec_tf.cli",
        "export",
        "--model",
        str(out),
        "--out",
        str(tmp_path / "sm"),
    ]
    done = subprocess.run(export, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert main(["predict", "--model", str(tmp_path / "sm" / "intent"), "where is my order"]) == 0
    assert "where is my order" in capsys.readouterr().out
    assert main(["ensemble", "intent", "--model", str(trained_run), "--test", "t.jsonl", "--out", "x"]) == 2
    assert "give --model at least twice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "train, valid, options, message",
    [
        ("nope.jsonl", "valid.jsonl", [], "nope.jsonl: no such file"),
        (
            "train.jsonl",
            "bad_valid.jsonl",
            [],
            "bad_valid.jsonl: labels not in the training data: 'teleport' (1x)",
        ),
        ("train.jsonl", "valid.jsonl", ["--encoder", "bert-xxl"], "unknown encoder 'bert-xxl'"),
    ],
)
def test_bad_input_is_a_clear_error(intent_data_dir, tmp_path, capsys, train, valid, options, message):
    (intent_data_dir / "bad_valid.jsonl").write_text(
        '{"text": "hello", "label": "order_status"}\n{"text": "x", "label": "teleport"}\n'
    )
    assert train_intent(intent_data_dir / train, intent_data_dir / valid, tmp_path, *options) == 2
    assert message in capsys.readouterr().err


def test_missing_model_file_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", "intent", "--model", str(tmp_path / "none.keras"), "--data", "x.jsonl"]) == 2
    assert "none.keras: no such model file" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [("all", None), ("0", 0), ("2", 2)])
def test_train_top_layers_option(value, expected):
    from ecomrec_tf.cli import build_parser

    args = build_parser().parse_args(["quickstart", "--train-top-layers", value])
    assert args.train_top_layers == expected
    defaults = build_parser().parse_args(["quickstart"])
    assert (defaults.train_top_layers, defaults.epochs, defaults.patience) == (3, 4, None)


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, capsys):
    """The README's main job with the tiny encoder: shop data, train, evaluate, export, predict."""
    code = main(["quickstart", "--encoder", "tiny", "--epochs", "1", "--users", "20",
                 "--train-top-layers", "all",
                 "--learning-rate", "1e-3", "--runs-dir", str(tmp_path / "runs"), "--run-name", "q",
                 "--out", str(tmp_path / "saved_models")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "[5/5] reloading the SavedModel in a fresh process" in out and "test accuracy" in out
    assert (tmp_path / "saved_models" / "intent" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "runs" / "q" / "data" / "events.jsonl").is_file()
    from ecomrec_tf.data.intent_templates import INTENT_TEMPLATES

    predictions = out.split("[5/5]")[1].splitlines()[1:6]
    assert len(predictions) == 5 and all(line.split()[0] in INTENT_TEMPLATES for line in predictions)


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    assert main(["data", "generate", "--out", str(out), "--users", "120", "--seed", "2"]) == 0
    return out


@pytest.mark.slow
def test_train_evaluate_update_and_export_purchase(small_shop, tmp_path, capsys):
    files = ["--items", str(small_shop / "items.jsonl"), "--events", str(small_shop / "events.jsonl")]
    code = main(["train", "purchase", *files, "--encoder", "tiny", "--epochs", "1", "--sequence-length", "32",
                 "--id-l2", "0.5", "--runs-dir", str(tmp_path), "--run-name", "p"])  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "p" / "config.json").read_text())["id_l2"] == 0.5
    printed = capsys.readouterr().out
    assert "logistic_regression" in printed and "oracle" in printed and "share of the AUC gap" in printed

    assert "new_items:" in printed and "new_users:" in printed  # cold start, reported apart

    assert main(["evaluate", "purchase", "--model", str(tmp_path / "p"), *files, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"model", "popularity", "logistic_regression", "user_item_bias", "oracle", "gap_closed"} <= set(
        result
    )
    assert {"auc", "log_loss", "ece", "ndcg@10", "recall@10", "mrr"} <= set(result["model"])

    # As users score: every view of a later log, with histories and counts from the earlier one.
    lines = (small_shop / "events.jsonl").read_text().splitlines()
    times = sorted(json.loads(line)["timestamp"] for line in lines)
    cut = times[int(0.8 * len(times))]
    earlier, later = tmp_path / "earlier.jsonl", tmp_path / "later.jsonl"
    earlier.write_text("".join(f"{x}\n" for x in lines if json.loads(x)["timestamp"] < cut))
    later.write_text("".join(f"{x}\n" for x in lines if json.loads(x)["timestamp"] >= cut))
    code = main(["evaluate", "purchase", "--model", str(tmp_path / "p"), "--items", files[1],
                 "--events", str(later), "--history-events", str(earlier), "--catalog-negatives", "1",
                 "--json"])  # fmt: skip
    assert code == 0
    scored = json.loads(capsys.readouterr().out)
    views = sum(json.loads(x)["event"] == "view" for x in later.read_text().splitlines())
    assert scored["model"]["examples"] == views  # every view, no catalog negatives mixed in
    assert scored["with_catalog_negatives"]["model"]["examples"] > views

    since = sorted(json.loads(line)["timestamp"] for line in (small_shop / "events.jsonl").open())[-3000]
    code = main(["update", "purchase", "--model", str(tmp_path / "p"), *files, "--since", str(since),
                 "--epochs", "1", "--runs-dir", str(tmp_path), "--run-name", "u", "--json"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    update = json.loads(printed[printed.rindex("\n{\n") :])  # after Keras's progress bars
    assert update["replayed_examples"] > 0 and set(update["after"]) == {"old_period", "new_period"}

    base = tmp_path / "saved_models"
    assert update["model_file"] == str(tmp_path / "u" / "model.keras")
    assert main(["export", "--model", str(tmp_path / "u"), "--name", "purchase", "--out", str(base)]) == 0
    assert (base / "purchase" / "1" / "saved_model.pb").is_file()


def test_purchase_on_events_naming_unknown_fields_is_a_clear_error(small_shop, tmp_path, capsys):
    (tmp_path / "events.jsonl").write_text('{"user_id": "u", "item_id": "SKU-000000", "event": "buy"}\n')
    files = ["--items", str(small_shop / "items.jsonl"), "--events", str(tmp_path / "events.jsonl")]
    code = main(["train", "purchase", *files, "--encoder", "tiny", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert "events.jsonl:1: missing field 'timestamp'" in capsys.readouterr().err


@pytest.mark.slow
def test_split_train_and_evaluate_reply(small_shop, tmp_path, capsys):
    assert main(["data", "split", "--in", str(small_shop / "dialogues.jsonl"), "--out", str(tmp_path / "d"),
                 "--valid", "0.25", "--test", "0.25"]) == 0  # fmt: skip
    files = ["--train", str(tmp_path / "d" / "train.jsonl"), "--valid", str(tmp_path / "d" / "valid.jsonl")]
    code = main(["train", "reply", *files, "--test", str(tmp_path / "d" / "test.jsonl"), "--encoder", "tiny",
                 "--epochs", "1", "--batch-size", "8", "--sequence-length", "32", "--decoder-layers", "1",
                 "--decoding", "greedy", "--max-turns", "2",
                 "--runs-dir", str(tmp_path), "--run-name", "r"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "dual_encoder" in printed and "tfidf" in printed and "generated (greedy)" in printed
    assert printed.count("reference:") == 5 and printed.count("generated:") == 5
    test_size = len((tmp_path / "d" / "test.jsonl").read_text().splitlines())
    assert f"{test_size} dialogues" in printed  # --test is what it reports on
    assert json.loads((tmp_path / "r" / "config.json").read_text())["max_turns"] == 2
    data = ["--data", str(tmp_path / "d" / "test.jsonl"), "--train", str(tmp_path / "d" / "train.jsonl")]
    code = main(["evaluate", "reply", "--model", str(tmp_path / "r"), *data, "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"recall@1", "recall@5", "mrr", "bleu", "rouge_l"} <= set(result["dual_encoder"]) & set(
        result["tfidf"]
    )
    assert {"bleu", "rouge_l", "fallback_rate"} <= set(result["generated"])


def commands(parser, path=()):
    """(command words, parser) of every command `ecomrec-tf` has."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))
    yield path, parser


def test_every_option_has_help_showing_its_default():
    from ecomrec_tf.cli import build_parser

    for path, parser in commands(build_parser()):
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (path, action.option_strings)  # every option says what it does
        text = parser.format_help()
        for action in parser._actions:
            shown = action.default not in (None, False, [], "==SUPPRESS==") and not action.required
            if action.option_strings and shown and action.dest != "help":
                assert f"default: {action.default}" in " ".join(text.split()), (path, action.dest)
    # One spelling per input and output: no command takes the old ones.
    flags = {
        flag for _, parser in commands(build_parser()) for a in parser._actions for flag in a.option_strings
    }
    assert not flags & {"--out-dir", "--base-dir"} and {"--out", "--model", "--runs-dir"} <= flags


def test_help_answers_without_importing_tensorflow():
    import subprocess
    import sys

    code = "import sys; from ecomrec_tf.cli import main\ntry:\n    main(['train', 'intent', '--help'])\n"
    code += "except SystemExit:\n    print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--overwrite" in result.stdout and result.stdout.strip().endswith("False False"), result.stderr


@pytest.mark.parametrize("stdin, message", [("", "the input on stdin is empty"), (None, "pipe one per line")])
def test_predict_without_texts_is_one_line_not_a_wait(monkeypatch, capsys, tmp_path, stdin, message):
    import io

    stream = io.StringIO(stdin or "")
    stream.isatty = lambda: stdin is None  # None: a terminal, where reading would wait for the user
    monkeypatch.setattr(sys, "stdin", stream)
    assert main(["predict", "--model", str(tmp_path / "model.keras")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


@pytest.mark.subprocess
def test_keras_load_model_reads_a_run_after_import_ecomrec_tf_alone(trained_run):
    import subprocess

    code = (  # TensorFlow first, as users write it: it looks keras up before keras is imported
        "import sys, ecomrec_tf, tensorflow, keras\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "print(type(model).__name__, model.predict(['where is my parcel'], verbose=0)['probabilities'].shape)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(trained_run / "model.keras")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "IntentModel"


def test_evaluate_takes_the_runs_own_settings_unless_given(tmp_path):
    from ecomrec_tf.cli import build_parser
    from ecomrec_tf.cli.options import out_dir, run_setting

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text('{"max_turns": 5, "history_size": 20, "until": null}')
    assert run_setting(run / "model.keras", "max_turns", 3) == 5 and run_setting(run, "history_size") == 20
    assert (
        run_setting(run, "until", 7) == 7 and run_setting(tmp_path / "elsewhere.keras", "max_turns", 3) == 3
    )
    args = build_parser().parse_args(
        ["evaluate", "reply", "--model", str(run), "--data", "d", "--train", "t"]
    )
    assert args.max_turns is None and out_dir(args) == run  # None: the run's, when it runs
    args = build_parser().parse_args(
        ["evaluate", "intent", "--model", str(run / "model.keras"), "--data", "d"]
    )
    assert out_dir(args) == run


def test_tensorflow_start_up_noise_is_dropped_and_everything_else_kept():
    from ecomrec_tf.cli.quiet import drop_noise

    chunk = (
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        b"I0000 00:00:1796193934.028021   24110 port.cc:153] oneDNN custom operations are on.\n"
        b"E0000 00:00:1796193938.519082   24110 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
        b"E0000 00:00:1796193940.204651   24110 util.cc:131] oneDNN supports DT_INT64 only on AVX-512.\n"
        b"E0000 00:00:1796193940.204651   24110 op_kernel.cc:1] OOM when allocating tensor\n"
        b"ecomrec-tf: error: runs/x: no such file\n"
        b"users:  50%|#####     | 1/2\r"
    )
    assert drop_noise(chunk) == (
        b"E0000 00:00:1796193940.204651   24110 op_kernel.cc:1] OOM when allocating tensor\n"
        b"ecomrec-tf: error: runs/x: no such file\n"
        b"users:  50%|#####     | 1/2\r"
    )


def test_the_cli_reference_in_docs_is_the_parsers():
    from pathlib import Path

    from ecomrec_tf.cli.reference import reference

    written = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == reference(), "docs/cli.md is stale: python -m ecomrec_tf.cli.reference > docs/cli.md"
