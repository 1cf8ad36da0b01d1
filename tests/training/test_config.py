import json

import pytest
import tensorflow as tf
import yaml

from ecomrec_tf.cli import main
from ecomrec_tf.training.config import ConfigError, load_config, parse_config


def write(path, text):
    path.write_text(text)
    return path


def test_bad_configs_name_the_file_and_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"c.toml: unknown field\(s\) learning_rat;"):
        load_config(write(tmp_path / "c.toml", 'learning_rat = 1e-4\n[tasks.intent]\ntrain="a"\nvalid="b"\n'))
    with pytest.raises(ConfigError, match="field 'mixed_precision' is 'fp8'"):
        parse_config({"tasks": {"mlm": {"shop_dir": "x"}}, "mixed_precision": "fp8"})
    with pytest.raises(ConfigError, match="tasks.intent needs 'train' and 'valid'"):
        parse_config({"tasks": {"intent": {"train": "a"}}})
    with pytest.raises(ConfigError, match="tasks.ranking: unknown task"):
        parse_config({"tasks": {"ranking": {}}})
    with pytest.raises(ConfigError, match="'epochs' must be an integer >= 1"):
        parse_config({"tasks": {"mlm": {"shop_dir": "x"}}, "epochs": 0})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "c.yaml", "tasks: [unclosed\n"))
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2


MLM = {"mlm": {"shop_dir": "x"}}
INTENT = {"intent": {"train": "a", "valid": "b"}}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"steps_per_epoch": 0}, "field 'steps_per_epoch' must be an integer >= 1"),
        ({"patience": "2", "monitor": "val_mlm_loss"}, "field 'patience' must be an integer >= 1"),
        ({"lora_rank": 2.5}, "field 'lora_rank' must be an integer >= 1"),
        ({"global_clipnorm": -1.0}, "field 'global_clipnorm' must be a number > 0"),
        ({"jit_compile": "yes"}, "field 'jit_compile' must be true or false"),
        ({"learning_rate": 0}, "field 'learning_rate' must be a number > 0"),
        ({"dropout": 1.5}, r"field 'dropout' must be a number in \[0, 1\)"),
        ({"monitor": "val_accuracy"}, "field 'monitor' must name a validation metric, val_<task>_<metric>"),
        ({"patience": 2}, "field 'patience' stops early on 'monitor'"),
        ({"hparams": {}}, r"unknown field\(s\) hparams"),
        (
            {"tasks": {"mlm": {"shop_dir": "x", "weight": "high"}}},
            "field 'tasks.mlm.weight' must be a number >= 0",
        ),
        ({"tasks": {"mlm": {"texts": [1]}}}, "field 'tasks.mlm.texts' must be a file or a list of files"),
        (
            {"tasks": {"mlm": {"shop_dir": "x", "mask_rate": 1.0}}},
            r"'tasks.mlm.mask_rate' must be a number in \[0, 1\)",
        ),
        (
            {"tasks": {**INTENT, **MLM}, "lora_rank": 4},
            "field 'lora_rank' trains LoRA factors of an intent-only run",
        ),
    ],
)
def test_every_field_is_checked(fields, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"tasks": MLM, **fields})


def test_a_good_config_passes_the_checks():
    config = parse_config(
        {"tasks": INTENT, "lora_rank": 4, "patience": 2, "monitor": "val_intent_macro_f1", "mode": "max"}
    )
    assert config.lora_rank == 4 and config.monitor == "val_intent_macro_f1"


@pytest.mark.slow
def test_a_multi_task_config_runs_from_the_cli_and_its_saved_config_repeats_it(
    tmp_path, intent_data_dir, capsys
):
    config = tmp_path / "run.toml"
    write(
        config,
        f"""
encoder = "tiny"
epochs = 1
batch_size = 16
sequence_length = 24
learning_rate = 1e-3
checkpoint_every = 5
layer_decay = 0.8
monitor = "val_intent_accuracy"
mode = "max"

[tasks.intent]
train = "{intent_data_dir / "train.jsonl"}"
valid = "{intent_data_dir / "valid.jsonl"}"
weight = 0.7

[tasks.mlm]
texts = ["{intent_data_dir / "train.jsonl"}"]
weight = 0.3
head_warmup_steps = 3
""",
    )
    assert (
        main(["train", "--config", str(config), "--runs-dir", str(tmp_path / "runs"), "--run-name", "a"]) == 0
    )
    run_dir = tmp_path / "runs" / "a"
    printed = capsys.readouterr().out
    out = json.loads(printed[printed.rindex("\n{") :])
    assert {"intent_loss", "mlm_loss", "val_intent_accuracy"} <= set(out["last_epoch"])
    for name in (
        "model.keras",
        "encoder/config.json",
        "config.yaml",
        "history.json",
        "checkpoints/checkpoint",
    ):
        assert (run_dir / name).exists(), name
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["tasks"]["mlm"]["weight"] == 0.3 and saved["layer_decay"] == 0.8
    assert load_config(run_dir / "config.yaml") == load_config(config)

    def summaries(folder):  # {tag: plugin} of every summary in a folder's event files
        return {
            value.tag: value.metadata.plugin_data.plugin_name
            for path in folder.iterdir()
            if path.name.startswith("events")
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value
        }

    validation = summaries(run_dir / "validation")
    assert validation.get("intent/sample_predictions") == "text"  # the table of sample predictions
    labels = {
        line.split("\t")[0] for line in (run_dir / "projector" / "metadata.tsv").read_text().splitlines()[1:]
    }
    assert len(labels) > 2 and {f"intent/{label}/pr_curves" for label in labels} <= set(
        validation
    )  # one per class
    assert {validation[f"intent/{label}/pr_curves"] for label in labels} == {"pr_curves"}
    assert (run_dir / "projector" / "projector_config.pbtxt").exists()
    assert (run_dir / "head_warmup" / "checkpoints").is_dir()  # the fresh MLM head trained alone first
    assert summaries(run_dir / "projector")  # an events file: TensorBoard's --logdir finds the projector run
    assert "hparams" in set(summaries(run_dir).values())  # the HParams dashboard's session


def test_the_shipped_configs_parse():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[2] / "configs").iterdir())
    assert {path.suffix for path in configs} == {".toml", ".yaml"}
    for path in configs:
        assert load_config(path).tasks


def test_a_saved_config_repeats_the_run_exactly(tmp_path, intent_data_dir):
    from ecomrec_tf.training.run import run

    config = parse_config(
        {
            "encoder": "tiny",
            "epochs": 1,
            "steps_per_epoch": 3,
            "batch_size": 8,
            "sequence_length": 16,
            "dropout": 0.1,
            "tasks": {"mlm": {"texts": [str(intent_data_dir / "valid.jsonl")], "head_warmup_steps": 0}},
        }  # fmt: skip
    )
    first = run(config, tmp_path / "first", verbose=0)
    second = run(load_config(tmp_path / "first" / "config.yaml"), tmp_path / "second", verbose=0)
    assert first["mlm_loss"] == second["mlm_loss"]
