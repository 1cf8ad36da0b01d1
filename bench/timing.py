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
