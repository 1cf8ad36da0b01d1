"""TensorBoard beyond scalars: HParams across runs, PR curves, sample predictions, the embedding projector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.pr_curve import summary as pr_summary

PROJECTOR_DIR = "projector"


def log_hparams(run_dir: str | Path, hparams: dict) -> None:
    """Records a run's settings for the HParams dashboard (`tensorboard --logdir` over the runs folder).

    The dashboard pairs them with the run's `validation` scalars, e.g. `epoch/intent_accuracy`.
    Values that are not numbers, strings or booleans are shown as strings.
    """
    clean = {
        key: value if isinstance(value, (bool, int, float, str)) else str(value)
        for key, value in hparams.items()
    }
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hparams_api.hparams(clean)


def log_pr_curves(writer, name: str, labels: list[str], y_true, probabilities, step: int) -> None:
    """One precision-recall curve per class (one vs rest) from predicted probabilities."""
    y_true = np.asarray(y_true)
    with writer.as_default(step=step):
        for index, label in enumerate(labels):
            summary = pr_summary.pb(
                f"{name}/{label}",
                labels=(y_true == index),
                predictions=np.asarray(probabilities)[:, index].astype(np.float32),
                num_thresholds=101,
            )
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)


def log_predictions(writer, name: str, texts, true: list[str], predicted: list[str], scores, step: int, n=30):
    """A table of sample predictions as text; the mistakes come first."""
    order = sorted(range(len(texts)), key=lambda i: true[i] == predicted[i])[:n]
    rows = ["| text | true | predicted | score |", "|---|---|---|---|"]
    for i in order:
        mark = "" if true[i] == predicted[i] else " ✗"
        text = str(texts[i]).replace("|", "\\|")
        rows.append(f"| {text} | {true[i]} | {predicted[i]}{mark} | {float(scores[i]):.3f} |")
    with writer.as_default(step=step):
        tf.summary.text(name, "\n".join(rows))


def log_projector(run_dir: str | Path, vectors, metadata: list[list[str]], header: list[str]) -> Path:
    """Writes vectors and their labels for TensorBoard's embedding projector into `run_dir/projector`."""
    log_dir = Path(run_dir) / PROJECTOR_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "metadata.tsv").open("w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in metadata:
            f.write("\t".join(str(value).replace("\t", " ").replace("\n", " ") for value in row) + "\n")
    checkpoint = tf.train.Checkpoint(embedding=tf.Variable(np.asarray(vectors, np.float32)))
    checkpoint.save(str(log_dir / "embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(str(log_dir), config)
    writer = tf.summary.create_file_writer(str(log_dir))  # an events file: `--logdir runs` finds this run
    with writer.as_default():
        tf.summary.text("projector", f"{len(metadata)} vectors; open the Projector tab", step=0)
    writer.close()
    return log_dir


def intent_report(run_dir: str | Path, model, texts, label_ids, step: int, max_points: int = 2000) -> None:
    """PR curves, sample predictions and the intent-vector projector for an intent model on labelled texts."""
    texts = list(texts)[:max_points]
    label_ids = np.asarray(label_ids)[: len(texts)]
    outputs = model.predict(texts, batch_size=64, verbose=0)
    probabilities = outputs["probabilities"]
    predicted = probabilities.argmax(axis=-1)
    writer = tf.summary.create_file_writer(str(Path(run_dir) / "validation"))
    labels = model.labels
    log_pr_curves(writer, "intent", labels, label_ids, probabilities, step)
    log_predictions(
        writer,
        "intent/sample_predictions",
        texts,
        [labels[i] for i in label_ids],
        [labels[i] for i in predicted],
        probabilities.max(axis=-1),
        step,
    )
    writer.flush()
    log_projector(
        run_dir,
        outputs["intent_vector"],
        [[labels[t], labels[p], text] for t, p, text in zip(label_ids, predicted, texts)],
        ["intent", "predicted", "text"],
    )
