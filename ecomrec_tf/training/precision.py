"""Training precision: bfloat16 autocast where the hardware computes it fast, float32 elsewhere.

Under `mixed_bfloat16` the weights stay float32 and the matmuls run in bfloat16; losses and model
outputs stay float32 (`Task.per_example_loss`, the heads' float32 outputs). Saved models are float32
whatever the training precision (`to_float32`), so serving computes in float32 on any machine.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import tensorflow as tf

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bfloat16 matmuls


def bfloat16_is_fast() -> bool:
    """Whether this machine computes bfloat16 matmuls natively: an NVIDIA GPU of compute capability
    8.0 or newer (A100, H100) when there is a GPU, else a CPU with AVX512-BF16 or AMX-BF16."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return tuple(details.get("compute_capability") or (0, 0)) >= (8, 0)
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy a precision names: `auto` is `mixed_bfloat16` where
    `bfloat16_is_fast()`, `float32` elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "mixed_bfloat16" if bfloat16_is_fast() else "float32"
    return precision


@contextlib.contextmanager
def precision_scope(precision: str):
    """Builds and trains under `precision` (resolved, see `resolve_precision`), then restores the
    global dtype policy. Yields the policy name."""
    policy = resolve_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def to_float32(model: keras.Model) -> keras.Model:
    """Switches every layer of `model` that computes in mixed precision to float32, in place (the
    weights are float32 already), and returns it: what mixed-precision training saves and exports,
    so serving computes in float32 on any machine."""
    for layer in model._flatten_layers(include_self=True):
        if layer.dtype_policy.name.startswith("mixed_"):
            layer.dtype_policy = "float32"
        if isinstance(layer, keras.Model):  # its traced predict/evaluate/train steps computed in bfloat16
            layer.predict_function = layer.test_function = layer.train_function = None
    return model
