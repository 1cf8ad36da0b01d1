"""Domain-adaptive masked-language-model pretraining of an encoder on unlabeled shop text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import keras_hub
import tensorflow as tf

from ecomrec_tf.data.pipeline import map_with_seeds, text_classification_dataset
from ecomrec_tf.encoders import Encoder, load_encoder, save_encoder, train_top_layers
from ecomrec_tf.preprocessing import TextPreprocessor
from ecomrec_tf.preprocessing.whole_word_masker import WholeWordMasker
from ecomrec_tf.training.loop import Trainer
from ecomrec_tf.training.optimizer import make_optimizer
from ecomrec_tf.training.task import Task

ENCODER_DIR = "encoder"
MLM_FILE = "mlm.keras"
MLM_HEAD_WARMUP_STEPS = 300  # steps the fresh MLM head trains alone first (`warm_up_head`)


def masked_lm(encoder: Encoder) -> keras_hub.models.BertMaskedLM:
    """keras-hub's `BertMaskedLM` on the encoder's backbone (shared weights), without a preprocessor.

    Its inputs are `token_ids`, `padding_mask`, `segment_ids` and `mask_positions`; its output the
    vocabulary logits at the masked positions. The output projection is tied to the token embedding.
    """
    return keras_hub.models.BertMaskedLM(encoder.backbone, preprocessor=None)


class MLMLoss(keras.losses.SparseCategoricalCrossentropy):
    """Cross-entropy over the vocabulary from logits, per masked position."""

    def __init__(self, **kwargs):
        super().__init__(from_logits=True, **kwargs)


def mlm_task(
    model: keras.Model,
    encoder: Encoder,
    texts: Sequence[str],
    batch_size: int,
    valid_texts: Sequence[str] | None = None,
    sequence_length: int = 128,
    mask_rate: float = 0.15,
    max_predictions: int = 20,
    seed: int = 0,
    weight: float = 1.0,
) -> Task:
    """The MLM task on `texts`: tokenised once, whole-word masked afresh each epoch in the input pipeline.

    Its loss is the mean cross-entropy over all masked pieces of the global batch; its metric the
    accuracy of the top prediction at masked positions.
    """
    preprocessor = TextPreprocessor(encoder.tokenizer, sequence_length)
    masker = WholeWordMasker(encoder.tokenizer.get_vocabulary(), mask_rate, max_predictions)

    def batches(data, shuffle, data_seed):
        def dataset_fn(input_context=None):
            dataset = text_classification_dataset(
                data, None, batch_size, shuffle=shuffle, seed=data_seed, input_context=input_context,
                preprocessor=preprocessor,
            )  # fmt: skip
            return map_with_seeds(dataset, data_seed, masker)

        return dataset_fn

    return Task(
        name="mlm",
        model=model,
        loss=MLMLoss(),
        train=batches(texts, True, seed),
        valid=batches(valid_texts, False, seed + 1) if valid_texts else None,
        weight=weight,
        metrics=lambda: [keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )


def warm_up_head(
    task: Task,
    encoder: Encoder,
    steps: int,
    run_dir: str | Path,
    strategy: tf.distribute.Strategy,
    train_top: int | None = None,
    verbose: int = 1,
) -> None:
    """Trains the MLM head alone (encoder frozen, learning rate 1e-3) for `steps` steps in `run_dir`,
    then lets the encoder's top `train_top` layers (None: all) train again. A checkpoint without an
    MLM head (MiniLM's) gets a random one, whose first gradients would be noise for the encoder."""
    if not steps:
        return
    with strategy.scope():
        train_top_layers(encoder.backbone, 0)
        head_only = Trainer(task, make_optimizer(1e-3, steps, warmup_fraction=0.1), strategy)
    head_only.fit(1, run_dir, steps_per_epoch=steps, verbose=verbose)
    train_top_layers(encoder.backbone, train_top)


def pretrain_mlm(
    texts: Sequence[str],
    run_dir: str | Path,
    encoder: str | Encoder = "minilm-l6",
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    sequence_length: int = 128,
    mask_rate: float = 0.15,
    valid_texts: Sequence[str] | None = None,
    seed: int = 0,
    strategy: tf.distribute.Strategy | None = None,
    checkpoint_every: int = 200,
    head_warmup_steps: int = MLM_HEAD_WARMUP_STEPS,
    verbose: int = 1,
) -> tuple[Encoder, dict]:
    """Continues masked-language-model training of `encoder` on shop text, with whole-word masking.

    Writes `run_dir/encoder/` (load it with `load_encoder(run_dir / "encoder")`: the intent, purchase
    and reply models start from it) and `run_dir/mlm.keras` (encoder + MLM head, for
    `preprocessing.MLMSubstituter`), plus checkpoints and TensorBoard logs; rerunning resumes.

    A checkpoint without an MLM head (MiniLM's) gets a randomly initialised one, whose first
    gradients are noise for the encoder: `head_warmup_steps` first trains the head alone (encoder
    frozen, learning rate 1e-3) for that many steps, in `run_dir/head_warmup`.

    Returns:
        `(encoder, history)`.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        encoder = load_encoder(encoder) if isinstance(encoder, str) else encoder
        model = masked_lm(encoder)
        task = mlm_task(model, encoder, texts, batch_size, valid_texts, sequence_length, mask_rate, seed=seed)
        steps = int(task.dataset("train").cardinality())
    warm_up_head(task, encoder, head_warmup_steps, run_dir / "head_warmup", strategy, verbose=verbose)
    with strategy.scope():
        trainer = Trainer(task, make_optimizer(learning_rate, steps * epochs, warmup_fraction=0.06), strategy)
    history = trainer.fit(epochs, run_dir, checkpoint_every=checkpoint_every, verbose=verbose)
    if trainer.is_chief:
        save_encoder(encoder, run_dir / ENCODER_DIR)
        partial = run_dir / (MLM_FILE + ".partial.keras")
        model.save(partial)
        partial.replace(run_dir / MLM_FILE)
        (run_dir / "pretrain.json").write_text(
            json.dumps(
                {"texts": len(texts), "epochs": epochs, "mask_rate": mask_rate, "history": history}, indent=2
            )
        )
    return encoder, history
