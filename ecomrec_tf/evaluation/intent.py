"""Evaluating an intent model on a labelled file: metrics, report and confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ecomrec_tf.data.readers import label_ids, read_intent_file
from ecomrec_tf.evaluation.classification import classification_metrics, format_report, plot_confusion_matrix

if TYPE_CHECKING:
    from ecomrec_tf.models.intent_model import IntentModel


def evaluate_intent(
    model: IntentModel, data_file: str | Path, out_dir: str | Path, name: str = "test", batch_size: int = 64
) -> dict:
    """Accuracy, macro-F1, per-class report and confusion matrix of `model` on a labelled file.

    Writes `<name>_metrics.json`, `<name>_report.txt` and `<name>_confusion_matrix.png` to `out_dir`.
    """
    texts, labels = read_intent_file(data_file)
    y_true = label_ids(labels, model.labels, data_file)
    probabilities = model.predict(texts, batch_size=batch_size, verbose=0)["probabilities"]
    result = classification_metrics(y_true, probabilities.argmax(axis=-1), model.labels)
    result["examples"] = len(texts)
    result["data_file"] = str(data_file)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}_metrics.json").write_text(json.dumps(result, indent=2))
    (out_dir / f"{name}_report.txt").write_text(format_report(result) + "\n")
    plot_confusion_matrix(result, out_dir / f"{name}_confusion_matrix.png", title=f"Intent, {name} split")
    return result
