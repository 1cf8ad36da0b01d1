"""Training throughput: the Trainer loop and `model.fit`, with and without length bucketing and XLA, and MFU.

One run, on this machine, same model and data for every row:
- examples/s and real (non-padding) tokens/s over timed steps after warm-up steps (tracing, XLA
  compilation and the first batches are not timed);
- one change per row against the one above: length bucketing; padding token lengths to a multiple
  of 16 (alone, so its cost shows apart); XLA on those padded batches (fewer shapes to compile);
  compiling each new shape is part of the timed steps, as it is in a short run;
- model FLOP utilisation: training FLOPs per real token from the encoder config
  (6 x non-embedding parameters + 6 x layers x hidden x padded length for attention scores and values,
  x padded/real tokens for the padding the batch computes anyway) over a float32 matmul peak
  measured in the same run.

    python bench/training.py [--encoder minilm-l6] [--batch-size 32] [--steps 24] [--precision float32]
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf
from timing import matmul_peak

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.data.intent_data import generate_intent_data
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training import Trainer, make_optimizer, text_task
from ecomrec_tf.training.task import compile_tasks

parser = argparse.ArgumentParser()
parser.add_argument("--encoder", default="minilm-l6")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--warmup-steps", type=int, default=12)
parser.add_argument("--steps", type=int, default=24, help="timed steps per row")
parser.add_argument("--precision", default="float32", help="float32, mixed_bfloat16 or mixed_float16")
args = parser.parse_args()


def flops_per_real_token(backbone, padded_length: float, padding_ratio: float) -> float:
    hidden, layers = backbone.hidden_dim, backbone.num_layers
    non_embedding = sum(
        int(np.prod(w.shape)) for w in backbone.weights if w.path.startswith("transformer_layer_")
    )
    per_padded_token = 6 * non_embedding + 6 * layers * hidden * padded_length * 2
    return per_padded_token * padding_ratio


keras.mixed_precision.set_global_policy(args.precision)
steps = args.warmup_steps + args.steps
examples = generate_intent_data(seed=0, train_per_intent=200, eval_per_intent=1)["train"]
rng = np.random.default_rng(0)
chosen = rng.choice(len(examples), size=steps * args.batch_size, replace=False)
texts = [examples[i]["text"] for i in chosen]
labels = sorted({example["label"] for example in examples})
ids = [labels.index(examples[i]["label"]) for i in chosen]


def new_model():
    keras.utils.set_random_seed(0)
    return build_intent_model(load_encoder(args.encoder), labels, sequence_length=64)


def data(bucket: bool):
    return text_classification_dataset(texts, ids, args.batch_size, shuffle=True, seed=0, bucket=bucket)


def token_stats(model, dataset, pad_to: int | None):
    real = padded = 0
    lengths = []
    for x, _ in dataset:
        features = model.preprocessor(x)
        length = int(features["token_ids"].shape[1])
        if pad_to:
            length = -(-length // pad_to) * pad_to
        real += int(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32)))
        padded += length * int(features["token_ids"].shape[0])
        lengths.append(length)
    return real, padded, float(np.mean(lengths))


class Timer(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == args.warmup_steps - 1:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def run_fit(bucket: bool, xla: bool, pad: bool) -> float:
    model = new_model()
    task = text_task(
        "intent", model, keras.losses.SparseCategoricalCrossentropy(), train=data(bucket),
        pad_to_multiple=16 if pad else None,
    )  # fmt: skip
    compile_tasks(task, make_optimizer(1e-4, 1000), jit_compile=xla)  # what train_intent trains
    timer = Timer()
    task.model.fit(task.dataset("train"), epochs=1, verbose=0, callbacks=[timer])
    return timer.end - timer.start


def run_loop(bucket: bool, xla: bool, pad: bool) -> float:
    model = new_model()
    task = text_task(
        "intent",
        model,
        keras.losses.SparseCategoricalCrossentropy(),
        train=data(bucket),
        pad_to_multiple=16 if pad else None,
    )
    trainer = Trainer(
        task, make_optimizer(1e-4, 1000, loss_scale=args.precision == "mixed_float16"), jit_compile=xla
    )
    for step, batch in enumerate(trainer.distribute(task, "train")):
        if step == args.warmup_steps:
            start = time.perf_counter()
        losses, _ = trainer.train_step({"intent": batch})
        float(losses["intent"])
    return time.perf_counter() - start


peak = matmul_peak("bfloat16" if args.precision == "mixed_bfloat16" else "float32")
print(
    f"device: {tf.config.list_logical_devices()[-1].device_type}, precision {args.precision}, "
    f"encoder {args.encoder}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup_steps}"
)
print(f"measured matmul peak: {peak / 1e9:.1f} GFLOP/s\n")
reference = new_model()
rows = []
header = f"{'path':<6} {'bucketing':<9} {'pad16':<5} {'XLA':<4} {'ex/s':>7} {'tokens/s':>9} {'pad %':>6}"
header += f" {'MFU %':>6}"
header += f" {'vs loop':>8}"
print(header)
# One change per row: bucketing, then padding to a multiple of 16 alone, then XLA on top of it.
for path, bucket, pad, xla in [
    ("loop", False, False, False),
    ("loop", True, False, False),
    ("loop", True, True, False),
    ("loop", True, True, True),
    ("fit", False, False, False),
    ("fit", True, False, False),
    ("fit", True, True, False),
    ("fit", True, True, True),
]:
    seconds = (run_loop if path == "loop" else run_fit)(bucket, xla, pad)
    timed = data(bucket).skip(args.warmup_steps)
    real, padded, mean_length = token_stats(reference, timed, 16 if pad else None)
    examples_per_second = args.steps * args.batch_size / seconds
    tokens_per_second = real / seconds
    mfu = tokens_per_second * flops_per_real_token(reference.backbone, mean_length, padded / real) / peak
    rows.append((path, bucket, xla, examples_per_second))
    baseline = rows[0][3]
    print(
        f"{path:<6} {str(bucket):<9} {str(pad):<5} {str(xla):<4} {examples_per_second:>7.1f} "
        f"{tokens_per_second:>9.0f} "
        f"{100 * (1 - real / padded):>6.1f} {100 * mfu:>6.1f} {examples_per_second / baseline:>7.2f}x"
    )
