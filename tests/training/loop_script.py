"""Trains the tiny intent model with the Trainer in a fresh process, for the multi-worker and crash tests.

Usage: python -m tests.training.loop_script RUN_DIR OUT.npz [--kill-at STEP] [--kill-writing-history N]
       [--replicas N] [--plain]
(`--kill-writing-history N`: SIGKILL with the history file of the N-th epoch end half written;
`--plain`: no dropout, no shuffling, no bucketing, so runs on different strategies see the same global
batches; and SGD.)
With TF_CONFIG set, runs under MultiWorkerMirroredStrategy.
"""

import argparse
import os
import signal

import numpy as np
import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("run_dir")
parser.add_argument("out")
parser.add_argument("--kill-at", type=int)
parser.add_argument("--kill-writing-history", type=int)
parser.add_argument("--replicas", type=int, default=1)
parser.add_argument("--plain", action="store_true")
args = parser.parse_args()

if args.replicas > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.replicas)
if "TF_CONFIG" in os.environ:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
elif args.replicas > 1:
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(args.replicas)])
else:
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

import keras  # noqa: E402

from ecomrec_tf.data import text_classification_dataset  # noqa: E402
from ecomrec_tf.encoders import load_encoder  # noqa: E402
from ecomrec_tf.models import build_intent_model  # noqa: E402
from ecomrec_tf.training import Trainer, make_optimizer, text_task  # noqa: E402
from tests.conftest import LABELS, TEXTS  # noqa: E402

IDS = [0, 1, 2, 0, 1, 2]
with strategy.scope():
    keras.utils.set_random_seed(3)
    dropout = 0.0 if args.plain else 0.1
    model = build_intent_model(
        load_encoder("tiny", dropout=dropout), LABELS, sequence_length=16, dropout=dropout
    )
    task = text_task(
        "intent",
        model,
        keras.losses.SparseCategoricalCrossentropy(),
        train=lambda ctx: text_classification_dataset(
            TEXTS * 4, IDS * 4, 8, shuffle=not args.plain, bucket=not args.plain, seed=1, input_context=ctx
        ),
    )
    # SGD when plain: Adam's updates do not depend on the gradient's scale, so they would hide a loss
    # averaged per replica instead of over the global batch.
    optimizer = keras.optimizers.SGD(0.5) if args.plain else make_optimizer(1e-3, total_steps=12)
    trainer = Trainer(task, optimizer, strategy)


def kill(step, logs):
    if step == args.kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


if args.kill_writing_history:
    import importlib

    loop = importlib.import_module("ecomrec_tf.training.loop")
    real_write, written = loop.write_atomically, []

    def half_then_die(path, text):
        written.append(path)
        if len(written) == 2 * args.kill_writing_history - 1:  # two files each epoch end, history first
            partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
            partial.write_text(text[: len(text) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(path, text)

    loop.write_atomically = half_then_die

history = trainer.fit(epochs=4, run_dir=args.run_dir, checkpoint_every=2, on_step=kill, verbose=0)
print("epochs in history", len(history["intent_loss"]))
np.savez(args.out, *[w.numpy() for w in model.weights])
print("trained", int(trainer.step.numpy()), "steps on", strategy.num_replicas_in_sync, "replicas")
