"""The benchmarks' one timer: a warm-up call, then repeated calls for a bounded time."""

from __future__ import annotations

import time


def timings(fn, seconds: float, minimum: int = 5) -> list[float]:
    """Seconds per call of `fn`, after one warm-up (tracing) call: calls for `seconds`, at least `minimum`."""
    fn()
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < minimum:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def matmul_peak(dtype="float32", n: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of a large `dtype` matmul on the default device: the peak utilisation is measured against."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([n, n]), dtype)
    matmul = tf.function(tf.matmul)
    matmul(a, a).numpy()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul(a, a).numpy()
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start)


def keras_hub_encoder(name: str):
    """`load_encoder(name)` with keras-hub's own kernels (`encoders.fast_kernels` undone): the model a
    keras-hub user trains, and the unoptimised runs'."""
    import keras_hub

    from ecomrec_tf.encoders import load_encoder

    encoder = load_encoder(name)
    plain = keras_hub.models.BertBackbone.from_config(encoder.backbone.get_config())
    plain.set_weights(encoder.backbone.get_weights())
    encoder.backbone = plain
    return encoder
