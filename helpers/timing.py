"""Timing two things side by side, so that ratios survive a noisy shared machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def compare(functions: dict[str, Callable[[], object]], repeats: int = 20, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved (A, B, A, B, ...).

    Interleaving makes a burst of load from elsewhere hit every function alike, so the *ratio* of
    two medians is meaningful even when the absolute times are not.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}
