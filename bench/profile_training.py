"""Where an intent training step's time goes: a TensorFlow profiler trace (for TensorBoard's Profile tab)
and the per-op table from it, grouped into forward, backward and optimizer.

Trains the intent model as `train intent` does (batches sorted by token length, fused AdamW,
`--precision`) on the generated shop's queries for a warm-up epoch, then traces `--steps` steps of the
next with `tf.profiler` into `--logdir` (open it with `tensorboard --logdir DIR` and the
`tensorboard-plugin-profile` package) and prints each op's share of the op time. `--baseline` profiles the
unoptimised run instead: float32, Keras's AdamW, plain batches.

    python bench/profile_training.py [--encoder minilm-l6] [--precision auto] [--baseline] [--logdir DIR]
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2
from timing import keras_hub_encoder

from ecomrec_tf.data import generate_intent_data, text_classification_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training import make_optimizer
from ecomrec_tf.training.intent import intent_task
from ecomrec_tf.training.precision import precision_scope
from ecomrec_tf.training.task import compile_tasks, text_task

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--encoder", default="minilm-l6")
parser.add_argument("--examples", type=int, default=1024)
parser.add_argument("--steps", type=int, default=12, help="steps traced")
parser.add_argument("--precision", default="auto")
parser.add_argument("--baseline", action="store_true", help="float32, Keras's AdamW, plain batches")
parser.add_argument("--logdir", default=None, help="where the trace goes (default: a temporary folder)")
parser.add_argument("--top", type=int, default=25, help="ops listed")
args = parser.parse_args()


def op_table(xplane: Path) -> tuple[collections.Counter, collections.Counter]:
    """(seconds by forward/backward/optimizer, seconds by op) of the TF ops in an `.xplane.pb` trace."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(xplane.read_bytes())
    parts, ops = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or name.startswith("ExecutorState"):
                    continue
                scope, op = name.rsplit(":", 1)
                part = (
                    "optimizer" if "adam" in scope else "backward" if "gradient_tape" in scope else "forward"
                )
                layer = re.sub(r"_\d+", "", scope.split("/")[-1])
                parts[part] += event.duration_ps / 1e12
                ops[f"{op} ({layer}, {part})"] += event.duration_ps / 1e12
    return parts, ops


data = generate_intent_data(seed=0, train_per_intent=200, eval_per_intent=1)["train"]
chosen = np.random.default_rng(0).choice(len(data), args.examples, replace=False)
texts = [data[i]["text"] for i in chosen]
labels = sorted({example["label"] for example in data})
ids = [labels.index(data[i]["label"]) for i in chosen]
steps = 2 * -(-len(texts) // 32)
with precision_scope("float32" if args.baseline else args.precision) as policy:
    encoder = (keras_hub_encoder if args.baseline else load_encoder)(args.encoder)
    model = build_intent_model(encoder, labels, sequence_length=64)
    if args.baseline:
        plain = text_classification_dataset(texts, ids, 32, shuffle=True, bucket=False)
        task = text_task("intent", model, keras.losses.SparseCategoricalCrossentropy(), train=plain)
        optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0)
    else:
        task = intent_task(model, (texts, ids), None, 32)
        optimizer = make_optimizer(1e-4, steps, num_layers=model.backbone.num_layers)
    compile_tasks(task, optimizer)
dataset = task.dataset("train")
task.model.fit(dataset, epochs=1, verbose=0)  # traces the step for every batch shape
logdir = Path(args.logdir or tempfile.mkdtemp(prefix="profile-"))
tf.profiler.experimental.start(str(logdir))
task.model.fit(dataset.take(args.steps), epochs=1, verbose=0)
tf.profiler.experimental.stop()
parts, ops = op_table(max(logdir.glob("plugins/profile/*/*.xplane.pb"), key=lambda p: p.stat().st_mtime))
total = sum(parts.values())
which = "baseline" if args.baseline else "ours"
print(f"{which}, {policy}: {total / args.steps * 1e3:.0f} ms of op time per step (summed over threads); "
      f"trace: tensorboard --logdir {logdir}")  # fmt: skip
for part, seconds in parts.most_common():
    print(f"  {seconds / total:6.1%}  {part}")
print(f"\n{'share':>7}  op (layer, part)")
for op, seconds in ops.most_common(args.top):
    print(f"{seconds / total:>7.1%}  {op}")
