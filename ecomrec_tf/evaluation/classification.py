"""Classification metrics and the confusion-matrix picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: works headless and leaves notebooks' backend alone
from matplotlib.ticker import MaxNLocator
from sklearn import metrics


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and a per-class report (precision, recall, F1, support).

    Macro-F1 averages over the classes that occur as a label or a prediction (scikit-learn's
    default): a class absent from the evaluation data and never predicted has no F1 to count.

    Returns:
        `{"accuracy", "macro_f1", "per_class": {label: {...}}, "confusion_matrix": [[...]]}`; row `i`
        of the confusion matrix counts true class `i`.
    """
    ids = list(range(len(labels)))
    report = metrics.classification_report(
        y_true, y_pred, labels=ids, target_names=list(labels), output_dict=True, zero_division=0
    )
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_class": {label: report[label] for label in labels},
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def format_report(result: dict) -> str:
    """A per-class table for terminals, followed by accuracy and macro-F1."""
    width = max(len(label) for label in result["per_class"]) + 2
    lines = [f"{'intent':<{width}}precision  recall  f1     support"]
    for label, row in result["per_class"].items():
        lines.append(
            f"{label:<{width}}{row['precision']:.3f}      {row['recall']:.3f}   {row['f1-score']:.3f}  "
            f"{int(row['support'])}"
        )
    lines.append(f"accuracy {result['accuracy']:.4f}   macro-F1 {result['macro_f1']:.4f}")
    return "\n".join(lines)


def plot_confusion_matrix(
    result: dict, path: str | Path | None = None, title: str = "Confusion matrix"
) -> Figure:
    """The row-normalised confusion matrix of `classification_metrics` (each true class's row sums to
    1: the share of its examples predicted as each class), written as a PNG if `path`. Cells that
    round to 0.00 are left blank, so the mistakes stand out."""
    labels = list(result["per_class"])
    counts = np.asarray(result["confusion_matrix"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    display = metrics.ConfusionMatrixDisplay(shares, display_labels=labels)
    size = 4 + 0.35 * len(labels)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    display.plot(ax=ax, cmap="Blues", values_format=".2f", xticks_rotation="vertical", colorbar=False)
    for text, share in zip(display.text_.ravel(), shares.ravel()):
        text.set_fontsize(6)
        if round(share, 2) == 0:
            text.set_text("")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (each row sums to 1)")
    ax.set_title(f"{title}, row-normalised (accuracy {result['accuracy']:.3f})")
    return finish_figure(fig, path)


def finish_figure(fig: Figure, path: str | Path | None) -> Figure:
    """Tight layout, then a PNG at `path` when given, also shown on TensorBoard's Images dashboard
    (run `<the PNG's folder>/images`, tag the file's name)."""
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        fig.savefig(path, dpi=110)
        _to_tensorboard(path)
    return fig


def _to_tensorboard(png: Path) -> None:
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(png.parent / "images"))
    with writer.as_default():
        tf.summary.image(png.stem, tf.io.decode_png(png.read_bytes(), channels=4)[None], step=0)
    writer.close()


def plot_history(history: dict[str, list[float]], path: str | Path | None = None) -> Figure:
    """Training curves, one panel per metric with its validation twin, written as a PNG if `path`."""
    keys = sorted({key.removeprefix("val_") for key in history})
    fig = Figure(figsize=(4.5 * len(keys), 3.5))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for prefix, style in (("", "-o"), ("val_", "--o")):
            if prefix + key in history:
                ax.plot(
                    range(1, len(history[prefix + key]) + 1),
                    history[prefix + key],
                    style,
                    label=(prefix or "train_").rstrip("_"),
                )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        ax.set_title(key)
        ax.legend()
    return finish_figure(fig, path)
