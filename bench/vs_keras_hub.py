"""Fine-tuning speed against keras-hub, side by side in one process, and the accuracy each reaches.

Three intent classifiers on the same MiniLM checkpoint, the same shop queries and the same AdamW
settings (warm-up then cosine decay, weight decay 0.01 but on biases and LayerNorms, global-norm
clipping at 1), trained epoch by epoch in alternating rounds so that machine noise hits all alike:
- keras-hub `BertTextClassifier.fit`, its preprocessor at `--sequence-length` (64), Keras's AdamW,
  float32 (the texts are normalised as ours are, so both read the same tokens);
- ours unoptimised: our intent model in float32 on keras-hub's own kernels, Keras's AdamW (dense
  updates of the whole word embedding), plain batches of raw strings padded to their longest text;
- ours as `train intent` trains it: texts tokenised once, batches sorted by token length, fused AdamW
  with sparse embedding updates, `encoders.fast_kernels`, `--precision` (auto: bfloat16 where the
  hardware has it).

Prints examples/s over the rounds after the first (which traces the step), the ratio to keras-hub,
useful-token utilisation (real tokens/s x 6 x non-embedding parameters / the float32 matmul peak, the
higher of two measurements in this run, before and after the rounds) and each model's accuracy on the
held-aside test split (templates unseen in training) after the same epochs; then serving at batch 32
from the trained model: our SavedModel (raw strings in) beside keras-hub `predict` and beside the bare
float32 encoder on pre-tokenised ids. Then MLM pretraining (keras-hub `BertMaskedLM` vs ours) and the
reply dual encoder (unoptimised vs ours) rates, unless `--intent-only`.

    python bench/vs_keras_hub.py [--encoder minilm-l6] [--examples 1024] [--epochs 3] [--precision auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import cycle

import keras
import keras_hub
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the SavedModel's tokenizer ops)
from timing import keras_hub_encoder, matmul_peak, timings

from ecomrec_tf.data import generate_intent_data, text_classification_dataset
from ecomrec_tf.data.readers import read_dialogues
from ecomrec_tf.data.shop import ShopConfig, generate_shop
from ecomrec_tf.encoders import load_encoder
from ecomrec_tf.export import export_saved_model
from ecomrec_tf.models import build_intent_model
from ecomrec_tf.models.reply_model import build_reply_model
from ecomrec_tf.preprocessing import TextPreprocessor, normalize_text
from ecomrec_tf.training import make_optimizer
from ecomrec_tf.training.intent import intent_task
from ecomrec_tf.training.mlm import masked_lm, mlm_task
from ecomrec_tf.training.precision import precision_scope, resolve_precision, to_float32
from ecomrec_tf.training.reply import reply_tasks
from ecomrec_tf.training.task import compile_tasks, text_task

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--encoder", default="minilm-l6")
parser.add_argument("--examples", type=int, default=1024, help="training queries")
parser.add_argument("--test", type=int, default=512, help="held-aside test queries")
parser.add_argument("--epochs", type=int, default=4, help="alternating rounds, one epoch each")
parser.add_argument(
    "--seeds", type=int, default=3, help="training runs of ours whose test accuracy is averaged"
)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--sequence-length", type=int, default=64)
parser.add_argument("--learning-rate", type=float, default=1e-4)
parser.add_argument("--precision", default="auto", help="ours: auto, float32 or mixed_bfloat16")
parser.add_argument("--intent-only", action="store_true", help="skip the MLM and reply rates")
args = parser.parse_args()


def keras_adamw(steps: int) -> keras.optimizers.AdamW:
    """Keras's AdamW with `make_optimizer`'s settings: what a keras-hub user would configure."""
    warmup = int(steps * 0.1)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(steps - warmup, 1), warmup_target=args.learning_rate, warmup_steps=warmup
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


class Runner:
    """A model and its training batches: `epoch()` trains one epoch and returns its seconds."""

    def __init__(self, name: str, model: keras.Model, dataset: tf.data.Dataset, examples: int, predict=None):
        self.name, self.model, self.dataset, self.examples, self.predict = (
            name,
            model,
            dataset,
            examples,
            predict,
        )
        self.seconds: list[float] = []

    def epoch(self) -> None:
        start = time.perf_counter()
        self.model.fit(self.dataset, epochs=1, verbose=0)
        self.seconds.append(time.perf_counter() - start)

    def rate(self) -> float:
        """Examples/s over the rounds after the first (tracing, the first batches)."""
        return self.examples / statistics.median(self.seconds[1:] or self.seconds)


def alternate(runners: list[Runner], rounds: int) -> None:
    for round_ in range(rounds):
        for runner in runners:
            runner.epoch()
            print(f"  round {round_ + 1}/{rounds}: {runner.name}: {runner.seconds[-1]:.1f} s", flush=True)


def intent_runners(texts, ids, labels, test_texts):
    steps = args.epochs * -(-len(texts) // args.batch_size)
    normal = [t.decode() for t in normalize_text(tf.constant(texts)).numpy()]
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    encoder = keras_hub_encoder(args.encoder)
    classifier = keras_hub.models.BertTextClassifier(
        encoder.backbone,
        num_classes=len(labels),
        preprocessor=keras_hub.models.BertTextClassifierPreprocessor(encoder.tokenizer, args.sequence_length),
    )
    classifier.compile(
        optimizer=keras_adamw(steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    plain = tf.data.Dataset.from_tensor_slices((normal, np.asarray(ids)))
    plain = plain.shuffle(len(texts), seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)
    test_normal = tf.constant([t.decode() for t in normalize_text(tf.constant(test_texts)).numpy()])
    runners = [
        Runner(
            f"keras-hub BertTextClassifier, seq {args.sequence_length}",
            classifier,
            plain,
            len(texts),
            lambda x=test_normal: classifier.predict(x, batch_size=64, verbose=0),
        )
    ]

    return runners + our_runners(texts, ids, labels, seed=0)


def our_runners(texts, ids, labels, seed: int) -> list[Runner]:
    """Ours unoptimised, then ours as `train intent` trains it, from `seed` (head, dropout, batch order)."""
    steps = args.epochs * -(-len(texts) // args.batch_size)
    keras.utils.set_random_seed(seed)
    model = build_intent_model(keras_hub_encoder(args.encoder), labels, sequence_length=args.sequence_length)
    plain = text_classification_dataset(texts, ids, args.batch_size, shuffle=True, seed=seed, bucket=False)
    task = text_task("intent", model, keras.losses.SparseCategoricalCrossentropy(), train=plain)
    compile_tasks(task, keras_adamw(steps))
    runners = [
        Runner(
            "ours unoptimised (float32, Keras AdamW, plain batches)",
            task.model,
            task.dataset("train"),
            len(texts),
            lambda m=model: predict_probabilities(m),
        )
    ]
    keras.utils.set_random_seed(seed)
    with precision_scope(args.precision):
        model = build_intent_model(load_encoder(args.encoder), labels, sequence_length=args.sequence_length)
        task = intent_task(model, (texts, ids), None, args.batch_size, seed=seed)
        compile_tasks(task, make_optimizer(args.learning_rate, steps, num_layers=model.backbone.num_layers))
    runners.append(
        Runner(
            f"ours ({resolve_precision(args.precision)}, sorted, fused AdamW, fast kernels)",
            task.model,
            task.dataset("train"),
            len(texts),
            lambda m=model: predict_probabilities(to_float32(m)),
        )
    )
    runners[-1].keras_model = model
    return runners


def predict_probabilities(model):
    return model.predict(test_texts, batch_size=64, verbose=0)["probabilities"]


def non_embedding_parameters(backbone) -> int:
    return sum(int(np.prod(w.shape)) for w in backbone.weights if w.path.startswith("transformer_layer_"))


def mlm_runners(texts):
    steps = 2 * -(-len(texts) // args.batch_size)
    keras.config.set_dtype_policy("float32")
    encoder = keras_hub_encoder(args.encoder)
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
        encoder.tokenizer, args.sequence_length, mask_selection_rate=0.15, mask_selection_length=20
    )
    hub = keras_hub.models.BertMaskedLM(encoder.backbone, preprocessor=preprocessor)
    hub.compile(
        optimizer=keras_adamw(steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[],
    )
    normal = [t.decode() for t in normalize_text(tf.constant(texts)).numpy()]
    plain = tf.data.Dataset.from_tensor_slices(normal).shuffle(len(texts), seed=0).batch(args.batch_size)
    runners = [Runner("keras-hub BertMaskedLM", hub, plain.prefetch(tf.data.AUTOTUNE), len(texts))]
    with precision_scope(args.precision):
        encoder = load_encoder(args.encoder)
        task = mlm_task(
            masked_lm(encoder), encoder, texts, args.batch_size, sequence_length=args.sequence_length
        )
        compile_tasks(task, make_optimizer(args.learning_rate, steps, num_layers=encoder.backbone.num_layers))
    runners.append(Runner("ours, pretrain_mlm's task", task.model, task.dataset("train"), len(texts)))
    return runners


def reply_runners(dialogues):
    steps = 2 * -(-len(dialogues) // args.batch_size)
    runners = []
    for name, precision, optimizer, encoder in (
        ("reply, unoptimised (float32, Keras AdamW)", "float32", keras_adamw, keras_hub_encoder),
        (
            f"reply, ours ({resolve_precision(args.precision)}, fused AdamW)",
            args.precision,
            lambda steps: make_optimizer(args.learning_rate, steps),
            load_encoder,
        ),
    ):
        with precision_scope(precision):
            model = build_reply_model(encoder(args.encoder), [{"text": "ok", "intent": "x"}], 96)
            tasks = reply_tasks(model, dialogues, batch_size=args.batch_size)
            compile_tasks(tasks, optimizer(steps))
        runners.append(Runner(name, tasks[0].model, tasks[0].dataset("train"), len(dialogues)))
    return runners


data = generate_intent_data(seed=0, train_per_intent=200, eval_per_intent=60)
rng = np.random.default_rng(0)
train = [data["train"][i] for i in rng.choice(len(data["train"]), args.examples, replace=False)]
test = [
    data["test"][i] for i in rng.choice(len(data["test"]), min(args.test, len(data["test"])), replace=False)
]
labels = sorted({example["label"] for example in data["train"]})
texts = [example["text"] for example in train]
ids = [labels.index(example["label"]) for example in train]
test_texts = tf.constant([example["text"] for example in test])
test_ids = np.array([labels.index(example["label"]) for example in test])

peak, bf16_peak = matmul_peak("float32"), matmul_peak("bfloat16")
reference = load_encoder(args.encoder)
tokens = float(
    np.mean(
        TextPreprocessor(reference.tokenizer, args.sequence_length)(tf.constant(texts))["padding_mask"]
        .numpy()
        .sum(axis=1)
    )
)
flops_per_token = 6 * non_embedding_parameters(reference.backbone)
print(
    f"encoder {args.encoder}, batch {args.batch_size}, {len(texts)} training queries of {tokens:.1f} real "
    f"tokens ([CLS] and [SEP] included), {len(test)} test queries; {args.epochs} alternating rounds"
)
print(
    f"matmul peak: float32 {peak / 1e9:.0f} GFLOP/s, bfloat16 {bf16_peak / 1e9:.0f} GFLOP/s; "
    f"{flops_per_token / 6 / 1e6:.1f}M non-embedding parameters\n"
)

runners = intent_runners(texts, ids, labels, test_texts)
alternate(runners, args.epochs)
baseline = runners[0].rate()
again = matmul_peak("float32")  # the peak varies by a few % on a shared machine: the higher one counts
print(f"float32 matmul peak again after the rounds: {again / 1e9:.0f} GFLOP/s; utilisation uses the higher")
peak = max(peak, again)


def serving_rates(classifier, model, texts, seconds: float = 6.0) -> dict[str, float]:
    """Texts/s at batch 32 (median call), each call a different batch of distinct texts."""
    batches = [texts[i : i + 32] for i in range(0, len(texts) - 31, 32)]
    normal = [tf.constant([t.decode() for t in normalize_text(tf.constant(b)).numpy()]) for b in batches]
    with tempfile.TemporaryDirectory() as folder:
        serve = tf.saved_model.load(str(export_saved_model(model, f"{folder}/intent", version=1)))
        serve = serve.signatures["serving_default"]
        key = next(iter(serve.structured_input_signature[1]))
        features = [model.preprocessor(tf.constant(b)) for b in batches]
        encoder = tf.function(lambda x: model.backbone(x)["sequence_output"])
        batches, normal, features = cycle(batches), cycle(normal), cycle(features)
        calls = {
            "SavedModel, raw strings in": lambda: serve(**{key: tf.constant(next(batches))}),
            "keras-hub predict": lambda: classifier.predict(next(normal), batch_size=32, verbose=0),
            "bare encoder, pre-tokenised ids": lambda: encoder(next(features)).numpy(),
        }
        return {
            name: 32 / statistics.median(timings(call, seconds, minimum=10)) for name, call in calls.items()
        }


def accuracy(runner) -> float:
    return float(np.mean(np.argmax(runner.predict(), axis=-1) == test_ids))


accuracies = [[accuracy(runner)] for runner in runners]
for seed in range(1, args.seeds):  # more runs of ours from other seeds: accuracy varies by seed
    for index, runner in enumerate(our_runners(texts, ids, labels, seed), start=1):
        runner.model.fit(runner.dataset, epochs=args.epochs, verbose=0)
        accuracies[index].append(accuracy(runner))
        print(f"  seed {seed}: {runner.name}: test accuracy {accuracies[index][-1]:.4f}", flush=True)
print(f"\n{'intent fit':<58}{'ex/s':>7}{'vs hub':>8}{'util':>7}  test accuracy")
for runner, scores in zip(runners, accuracies):
    utilisation = runner.rate() * tokens * flops_per_token / peak
    spread = f" +- {np.std(scores):.4f} ({len(scores)} seeds)" if len(scores) > 1 else " (1 seed)"
    print(f"{runner.name:<58}{runner.rate():>7.1f}{runner.rate() / baseline:>7.2f}x{utilisation:>7.1%}"
          f"  {np.mean(scores):.4f}{spread}")  # fmt: skip
rounds = ", ".join(f"{runner.examples / s:.0f}" for runner in runners for s in runner.seconds)
print(f"(every round's ex/s, in order: {rounds}; the first traces the step)")
print(f"accuracy, ours - unoptimised: {np.mean(accuracies[2]) - np.mean(accuracies[1]):+.4f}")

rates = serving_rates(
    runners[0].model, to_float32(runners[2].keras_model), [t.decode() for t in test_texts.numpy()]
)
print(f"\n{'serving, batch 32 (distinct test queries)':<62}{'ex/s':>7}")
for name, rate in rates.items():
    print(f"{name:<62}{rate:>7.1f}")
saved = rates["SavedModel, raw strings in"]
print(
    f"SavedModel: {saved / rates['keras-hub predict']:.2f}x keras-hub predict, "
    f"{saved / rates['bare encoder, pre-tokenised ids']:.2f}x the bare encoder"
)

if not args.intent_only:
    keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as shop:
        generate_shop(shop, ShopConfig(users=600), progress=False)
        dialogues = read_dialogues(f"{shop}/dialogues.jsonl")[: args.examples // 2]
    others = mlm_runners(texts[: args.examples // 2]) + reply_runners(dialogues)
    alternate(others, 2)
    print(f"\n{'MLM pretraining and reply training':<62}{'ex/s':>7}{'ratio':>8}")
    for first, second in (others[:2], others[2:]):
        for runner in (first, second):
            print(f"{runner.name:<62}{runner.rate():>7.1f}{runner.rate() / first.rate():>7.2f}x")
