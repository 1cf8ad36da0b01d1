import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from ecomrec_tf.data import text_classification_dataset
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.training import Trainer, make_optimizer, task_probabilities, text_task
from tests.conftest import LABELS, TEXTS

IDS = [0, 1, 2, 0, 1, 2]
CE = keras.losses.SparseCategoricalCrossentropy()


def fresh_model(dropout: float = 0.0):
    keras.utils.set_random_seed(3)
    return build_intent_model(
        load_encoder("tiny", dropout=dropout), LABELS, sequence_length=16, dropout=dropout
    )


def data(batch_size=4, repeat=3):
    return text_classification_dataset(TEXTS * repeat, IDS * repeat, batch_size=batch_size, bucket=False)


def accuracy():
    return [keras.metrics.SparseCategoricalAccuracy("accuracy")]


def max_difference(a, b):
    return max(float(np.abs(x.numpy() - y.numpy()).max()) for x, y in zip(a.weights, b.weights))


def test_the_loop_matches_fit_step_for_step(tmp_path):
    """Same model, data and seed (no dropout): the same weights after an epoch of fit or of the loop."""
    by_fit = fresh_model()
    by_fit.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    by_fit.fit(data(), epochs=1, verbose=0)  # 18 texts in batches of 4: a partial last batch
    by_loop = fresh_model()
    trainer = Trainer(
        text_task("intent", by_loop, CE, train=data(), valid=data(8), metrics=accuracy),
        keras.optimizers.Adam(1e-3),
    )
    history = trainer.fit(epochs=1, run_dir=tmp_path, verbose=0)
    assert int(trainer.step.numpy()) == 5 and np.isfinite(history["intent_loss"][0])
    assert 0 <= history["val_intent_accuracy"][0] <= 1
    assert max_difference(by_fit, by_loop) < 1e-5


def test_accumulating_k_micro_batches_matches_a_k_times_larger_batch(tmp_path):
    """4 micro-batches of 2 in the loop == one batch of 8 == fit accumulating 4 batches of 2.

    SGD, as Adam magnifies float rounding in near-zero gradients.
    """
    big = fresh_model()
    Trainer(text_task("intent", big, CE, train=data(8, 4)), keras.optimizers.SGD(0.1)).fit(
        1, tmp_path / "big", verbose=0
    )
    accumulated = fresh_model()
    Trainer(
        text_task("intent", accumulated, CE, train=data(8, 4)),
        keras.optimizers.SGD(0.1),
        accumulation_steps=4,
    ).fit(1, tmp_path / "acc", verbose=0)
    assert max_difference(big, accumulated) < 1e-5
    by_fit = fresh_model()
    by_fit.compile(
        keras.optimizers.SGD(0.1, gradient_accumulation_steps=4), loss="sparse_categorical_crossentropy"
    )
    by_fit.fit(data(2, 4), epochs=1, verbose=0)  # 24 texts: 12 batches of 2, 3 updates
    assert max_difference(big, by_fit) < 1e-5


def test_gradients_are_clipped_by_their_global_norm(tmp_path):
    """With plain SGD at learning rate 1 the step is minus the gradient: its global norm must be the
    clip norm, while the reported norm is the gradient's before clipping."""
    model = fresh_model()
    trainer = Trainer(
        text_task("intent", model, CE, train=data()), keras.optimizers.SGD(1.0, global_clipnorm=1e-3)
    )
    assert trainer.clipnorm == 1e-3 and trainer.optimizer.global_clipnorm is None
    batch = next(iter(trainer.distribute(trainer.tasks[0], "train")))
    before = [w.numpy() for w in model.trainable_weights]
    _, norm = trainer.train_step({"intent": batch})
    step = np.sqrt(sum(float(np.sum((w.numpy() - b) ** 2)) for b, w in zip(before, model.trainable_weights)))
    assert float(norm) > 0.1  # unclipped, the step would be 100x longer
    np.testing.assert_allclose(step, 1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="global_clipnorm"):
        Trainer(text_task("intent", model, CE, train=data()), keras.optimizers.Adam(1e-3, clipnorm=1.0))


def test_xla_compiled_steps_match_the_plain_ones(tmp_path):
    plain, compiled = fresh_model(), fresh_model()
    Trainer(text_task("intent", plain, CE, train=data()), keras.optimizers.Adam(1e-3)).fit(
        1, tmp_path / "a", verbose=0
    )
    Trainer(
        text_task("intent", compiled, CE, train=data()), keras.optimizers.Adam(1e-3), jit_compile=True
    ).fit(1, tmp_path / "b", verbose=0)
    assert max_difference(plain, compiled) < 1e-4


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_as_float32_does(tmp_path, policy):
    """Same model, data and seed: the low-precision run ends near the float32 run, far from the start."""
    initial, reference = fresh_model(), fresh_model()
    optimizer = make_optimizer(1e-3, 10)
    Trainer(text_task("intent", reference, CE, train=data()), optimizer).fit(2, tmp_path / "fp32", verbose=0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = fresh_model()
        assert model.backbone.compute_dtype == policy.split("_")[1]
        optimizer = make_optimizer(1e-3, 10, loss_scale=policy == "mixed_float16")
        trainer = Trainer(text_task("intent", model, CE, train=data()), optimizer)
        history = trainer.fit(2, tmp_path / "mixed", verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(history["intent_loss"]))
    assert {w.dtype for w in model.weights} == {"float32"}  # float32 master weights
    # The same updates: each run's change of the weights points the same way (cosine 0.9999 for
    # bfloat16; 0.78 for float16, whose dynamic loss scale skips the first steps, which overflow; two
    # random directions in this many weights: about 0) and is about as long.
    change = [np.concatenate([(w.numpy() - v.numpy()).ravel() for w, v in zip(m.weights, initial.weights)])
              for m in (reference, model)]  # fmt: skip
    cosine = change[0] @ change[1] / np.linalg.norm(change[0]) / np.linalg.norm(change[1])
    ratio = np.linalg.norm(change[1]) / np.linalg.norm(change[0])
    assert cosine > 0.7 and 0.5 < ratio < 1.5
    assert (
        model.get_layer("core").output["probabilities"].dtype == "float32"
    )  # the head's softmax stays float32


def test_two_tasks_share_the_encoder_and_report_per_task(tmp_path):
    """Sum mode: one batch of each task per step; sample mode draws tasks in proportion to their size."""
    encoder = load_encoder("tiny")
    keras.utils.set_random_seed(0)
    first = build_intent_model(encoder, LABELS, sequence_length=16)
    second = build_intent_model(encoder, ["a", "b"], sequence_length=16)
    tasks = [
        text_task("intent", first, CE, train=data(), valid=data(8), metrics=accuracy),
        text_task("binary", second, CE, train=text_classification_dataset(TEXTS, [0, 1] * 3, 3), weight=0.5),
    ]
    trainer = Trainer(tasks, keras.optimizers.Adam(1e-3))
    history = trainer.fit(1, tmp_path / "sum", verbose=0)
    assert {"intent_loss", "binary_loss", "val_intent_loss", "val_intent_accuracy"} <= set(history)
    assert int(trainer.consumed["binary"].numpy()) == 5  # one batch per step, repeating its 2 batches

    sampled = Trainer(tasks, keras.optimizers.Adam(1e-3), mixing="sample", temperature=1.0, seed=0)
    sizes = [int(task.dataset("train").cardinality()) for task in tasks]
    draws = [sampled._draw(step)[0] for step in range(400)]
    assert abs(draws.count("intent") / 400 - sizes[0] / sum(sizes)) < 0.07
    np.testing.assert_allclose(task_probabilities([5, 2], temperature=1e6), [0.5, 0.5], atol=1e-5)
    np.testing.assert_allclose(task_probabilities([9, 1], temperature=2), [0.75, 0.25])


def test_early_stopping_restores_the_best_epoch(tmp_path):
    model = fresh_model()
    snapshots = []
    trainer = Trainer(
        text_task("intent", model, CE, train=data(), valid=data(8), metrics=accuracy),
        keras.optimizers.Adam(3e-2),
    )  # large enough to overshoot
    history = trainer.fit(
        6,
        tmp_path,
        monitor="val_intent_loss",
        patience=2,
        on_epoch_end=[lambda t, epoch, logs: snapshots.append([w.numpy() for w in model.weights])],
        verbose=0,
    )
    losses = history["val_intent_loss"]
    best = int(np.argmin(losses))
    for saved, weight in zip(snapshots[best], model.weights):
        np.testing.assert_allclose(saved, weight.numpy(), atol=1e-6)
    assert len(losses) == 6 or len(losses) == best + 3  # stopped two epochs after the best


def test_tensorboard_gets_scalars_for_every_task(tmp_path):
    model = fresh_model()
    Trainer(
        text_task("intent", model, CE, train=data(), valid=data(8), metrics=accuracy),
        keras.optimizers.Adam(1e-3),
    ).fit(1, tmp_path, log_every=1, verbose=0)
    tags = set()
    for split in ("train", "validation"):
        for event_file in (tmp_path / split).iterdir():
            for event in tf.compat.v1.train.summary_iterator(str(event_file)):
                tags |= {value.tag for value in event.summary.value}
    assert {
        "loss/intent_loss",
        "gradient_norm",
        "learning_rate",
        "examples_per_second",
        "tokens_per_second",
        "epoch/intent_accuracy",
        "epoch/intent_loss",
    } <= tags


def _script(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tests.training.loop_script", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.mark.subprocess
def test_a_run_killed_mid_epoch_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL while the 2nd epoch's history is half written, then at step 8 (checkpoints every 2
    steps, 3 an epoch); the rerun ends like an unbroken run, its history holding each epoch once."""
    killed = _script(tmp_path / "run", tmp_path / "resumed.npz", "--kill-writing-history", 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    killed = _script(tmp_path / "run", tmp_path / "resumed.npz", "--kill-at", 8)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-8.index").exists()
    resumed = _script(tmp_path / "run", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trained 12 steps" in resumed.stdout and "epochs in history 4" in resumed.stdout
    unbroken = _script(tmp_path / "other", tmp_path / "unbroken.npz")
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]
    a, b = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "unbroken.npz")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-6


@pytest.mark.subprocess
def test_two_replicas_match_one_at_the_same_global_batch(tmp_path):
    """MirroredStrategy over 2 logical CPUs gives the weights of 1 replica (no dropout; tolerance 1e-5)."""
    script = textwrap.dedent(
        """
        import sys, numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from ecomrec_tf.data import text_classification_dataset
        from ecomrec_tf.training import Trainer, make_optimizer, text_task
        from tests.training.test_loop import fresh_model, TEXTS, IDS, CE
        results = []
        one = tf.distribute.OneDeviceStrategy("/cpu:0")
        for i, strategy in enumerate((one, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
            with strategy.scope():
                model = fresh_model()
                task = text_task("intent", model, CE, train=lambda c: text_classification_dataset(
                    TEXTS * 4, IDS * 4, 8, bucket=False, input_context=c))
                trainer = Trainer(task, make_optimizer(1e-3, 3, global_clipnorm=0.5), strategy)
            trainer.fit(1, sys.argv[1] + str(i), verbose=0)
            results.append([w.numpy() for w in model.weights])
            print(strategy.num_replicas_in_sync, "replicas")
        print("max difference", max(float(np.abs(a - b).max()) for a, b in zip(*results)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 replicas" in result.stdout
    assert float(result.stdout.strip().splitlines()[-1].split()[-1]) < 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.subprocess
def test_two_workers_on_localhost_train_as_one_worker_does(tmp_path):
    """MultiWorkerMirroredStrategy, 2 worker processes talking over localhost (TF_CONFIG), each reading
    half of every global batch: both end with the weights of one process training on whole batches."""
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    processes = []
    for index in (0, 1, None):  # two workers, and one process alone (the reference)
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        name = "alone" if index is None else f"w{index}"
        run = tmp_path / ("run-alone" if index is None else "run")  # the workers share one run folder
        command = [
            sys.executable,
            "-m",
            "tests.training.loop_script",
            run,
            tmp_path / f"{name}.npz",
            "--plain",
        ]
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        processes.append(
            subprocess.Popen(
                command,
                env=env if index is None else {**env, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "on 2 replicas" in outputs[0][0] and "on 1 replicas" in outputs[2][0]
    a, b, alone = (np.load(tmp_path / f"{name}.npz") for name in ("w0", "w1", "alone"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert max(float(np.abs(a[k] - alone[k]).max()) for k in a) < 1e-4
    assert (tmp_path / "run" / "checkpoints" / "checkpoint").exists()  # the chief's checkpoints
