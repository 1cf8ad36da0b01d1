import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.export import (
    ExportError,
    export_saved_model,
    next_version,
    read_warmup_requests,
    saved_model,
    versions,
    write_models_config,
)
from ecomrec_tf.export.saved_model import METADATA_FILE
from tests.conftest import LABELS, TEXTS
from tests.test_docs import shell_commands

TF_ONLY = [sys.executable, "ecomrec_tf/serving/tf_only.py"]


def test_versions_count_up_and_are_never_overwritten(tiny_intent_model, tmp_path):
    base = tmp_path / "intent"
    (base / "notes").mkdir(parents=True)  # TF Serving ignores non-integer folders; so do we
    assert export_saved_model(tiny_intent_model, base).name == "1"
    assert export_saved_model(tiny_intent_model, base, version=7).name == "7"
    assert next_version(base) == 8 and versions(base) == [1, 7]
    with pytest.raises(ExportError, match="7 exists; versions are never overwritten"):
        export_saved_model(tiny_intent_model, base, version=7)
    metadata = json.loads((base / "1" / METADATA_FILE).read_text())
    assert metadata["model_class"] == "IntentModel" and metadata["signatures"] == ["serving_default"]
    assert sorted(p.name for p in base.iterdir()) == ["1", "7", "notes"]  # no staging left behind


def test_a_failed_export_publishes_nothing(tiny_intent_model, tmp_path, monkeypatch):
    def crash(archive, path):
        with open(f"{path}/saved_model.pb", "w") as half_written:
            half_written.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(saved_model, "_write_out", crash)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(tiny_intent_model, tmp_path / "intent")
    assert list((tmp_path / "intent").iterdir()) == []


def test_an_export_racing_another_takes_the_next_version(tiny_intent_model, tmp_path, monkeypatch):
    """Another exporter publishes version 2 while this one writes it: this one publishes 3, not an
    error; staging folders of dead exporters are cleaned, a live one's kept."""
    import socket
    import subprocess

    from ecomrec_tf.export import saved_model

    base = tmp_path / "intent"
    export_saved_model(tiny_intent_model, base)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    (base / f"{saved_model.STAGING}{host}-{dead.pid}-abc123").mkdir()  # killed mid-export
    live = base / f"{saved_model.STAGING}{host}-{os.getpid()}-def456"
    live.mkdir()  # exporting right now, in this process
    real = saved_model.write_warmup_requests

    def and_meanwhile(*args, **kwargs):
        real(*args, **kwargs)
        if not (base / "2").exists():
            (base / "2").mkdir()
            (base / "2" / "saved_model.pb").write_text("the other exporter's")

    monkeypatch.setattr(saved_model, "write_warmup_requests", and_meanwhile)
    assert export_saved_model(tiny_intent_model, base).name == "3"
    assert (base / "2" / "saved_model.pb").read_text() == "the other exporter's"  # untouched
    with pytest.raises(ExportError, match="4 was published by another export meanwhile"):
        monkeypatch.setattr(
            saved_model, "write_warmup_requests", lambda *a, **k: (base / "4" / "x").mkdir(parents=True)
        )
        export_saved_model(tiny_intent_model, base, version=4)
    assert {p.name for p in base.iterdir()} == {"1", "2", "3", "4", live.name}


@pytest.fixture(scope="module")
def exported(tiny_intent_export):
    return tiny_intent_export


@pytest.mark.subprocess
def test_loads_with_tensorflow_and_tf_text_ops_only(exported):
    """A fresh process that blocks keras, keras_hub and ecomrec_tf imports serves the export."""
    model, path = exported
    texts = TEXTS + ["", "café üß 笔记本", "word " * 3000]
    result = subprocess.run(
        [*TF_ONLY, "predict", str(path), *texts], capture_output=True, text=True, check=True
    )
    rows = json.loads(result.stdout.strip().splitlines()[-1])["outputs"]
    expected = model.predict(texts, verbose=0)["probabilities"]
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected, atol=1e-5)
    assert [row["label"] for row in rows] == [LABELS[i] for i in expected.argmax(1)]


@pytest.mark.subprocess
def test_runs_in_the_session_based_loader(exported):
    """`saved_model_cli run` loads with the C++ SavedModelBundle style that TF Serving uses: the serving
    guide's command, as written, on this export."""
    _, path = exported
    (argv,) = [argv for _, argv in shell_commands(".venv/bin/python")]
    argv = [sys.executable, *argv[1:]]
    argv[argv.index("--dir") + 1] = str(path)
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key label:" in result.stdout
    assert "Result for output key probabilities:" in result.stdout


def test_keep_deletes_all_but_the_newest_versions(tiny_intent_model, tmp_path):
    base = tmp_path / "intent"
    for _ in range(3):
        export_saved_model(tiny_intent_model, base, keep=2)
    assert versions(base) == [2, 3]
    with pytest.raises(ExportError, match="keep must be at least 1"):
        export_saved_model(tiny_intent_model, base, keep=0)
    assert versions(base) == [2, 3]


def test_warmup_requests_run_on_every_signature(exported):
    model, path = exported
    requests = read_warmup_requests(path)
    assert [name for name, _ in requests] == ["serving_default"]
    loaded = tf.saved_model.load(str(path))
    for name, inputs in requests:
        assert list(inputs) == ["text"] and inputs["text"].shape == (1,)
        outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert outputs["probabilities"].shape == (1, len(LABELS))


def test_models_config_lists_every_published_model(exported, tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    _, path = exported
    (path.parent.parent / "empty").mkdir(exist_ok=True)  # no version: not served
    config_file = write_models_config(path.parent.parent, mount="/models", num_versions=2)
    config = text_format.Parse(config_file.read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("intent", "/models/intent", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 2


def test_every_weight_is_stored_once(exported):
    model, path = exported
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    stored = sum(int(np.prod(shape)) for shape in reader.get_variable_to_shape_map().values())
    # Every variable (weights and dropout seed states) once, not twice (keras-team/keras#23553).
    assert stored == sum(int(np.prod(v.shape)) for v in model.variables) + 1  # + the save counter
    loaded = tf.saved_model.load(str(path))
    assert len(loaded.variables) == len(model.variables)
