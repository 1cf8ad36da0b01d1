import json
import shutil

import pytest
from tensorflow.core.protobuf import saved_model_pb2

from ecomrec_tf.cli import main
from ecomrec_tf.serving.check_export import OPS_FILE, ExportCheckError, check_export, graph_ops


@pytest.fixture(scope="module")
def exported(tiny_intent_export):
    return tiny_intent_export


def test_an_export_passes_every_check(exported):
    model, path = exported
    report = check_export(path.parent, model)  # a model folder: its newest version
    assert len(report) == 3 and "TensorFlow Serving 2.20.0" in report[0] and "equals the Keras" in report[2]
    ops = graph_ops(path)
    assert {"NormalizeUTF8", "RegexSplitWithOffsets", "FastWordpieceTokenizeWithOffsets"} <= ops
    shipped = json.loads(OPS_FILE.read_text())
    assert "TFText>RoundRobinTrim" in shipped["tf_text_ops"] and shipped["source"]


def test_an_op_outside_the_serving_op_set_fails_naming_it(exported, tmp_path):
    _, path = exported
    broken = tmp_path / "intent" / "1"
    shutil.copytree(path, broken)
    saved_model = saved_model_pb2.SavedModel.FromString((broken / "saved_model.pb").read_bytes())
    for function in saved_model.meta_graphs[0].graph_def.library.function:
        for node in function.node_def:
            if node.op == "NormalizeUTF8":
                node.op = "TFText>NormalizeUTF8V9"  # an op a newer TF Text might add
    (broken / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    with pytest.raises(
        ExportCheckError, match=r"ops not in TensorFlow Serving 2\.20\.0.*: TFText>NormalizeUTF8V9"
    ):
        check_export(broken)


def test_check_export_command(exported, tmp_path, capsys):
    _, path = exported
    assert main(["check-export", "--model", str(path)]) == 0
    assert "session-based load" in capsys.readouterr().out
    assert main(["check-export", "--model", str(tmp_path)]) == 2
    assert "neither a SavedModel version folder" in capsys.readouterr().err


def test_missing_warmup_requests_fail_the_check(exported, tmp_path):
    from ecomrec_tf.export.saved_model import WARMUP_FILE

    _, path = exported
    copy = tmp_path / "intent" / "1"
    shutil.copytree(path, copy)
    (copy / WARMUP_FILE).write_bytes(b"")  # no request for serving_default
    with pytest.raises(ExportCheckError, match="warm-up requests do not cover every signature"):
        check_export(copy)
