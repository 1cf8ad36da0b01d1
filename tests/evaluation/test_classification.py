import numpy as np
import pytest
from sklearn import metrics

from ecomrec_tf.evaluation import classification_metrics, format_report, plot_confusion_matrix


def test_metrics_by_hand_and_against_sklearn(tmp_path):
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    result = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(4 / 6)
    # by hand: a: P=1/2 R=1/2; b: P=2/3 R=1; c: P=1 R=1/2
    f1 = [0.5, 0.8, 2 / 3]
    assert result["macro_f1"] == pytest.approx(np.mean(f1))
    assert result["macro_f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert result["per_class"]["b"]["recall"] == 1.0
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert "macro-F1 0.6556" in format_report(result)
    plot_confusion_matrix(result, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classes_absent_from_the_data_count_as_zero():
    result = classification_metrics([0, 0], [0, 0], ["a", "b"])
    assert result["per_class"]["b"]["support"] == 0
    assert result["confusion_matrix"] == [[2, 0], [0, 0]]
