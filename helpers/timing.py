"""Timing things side by side, so that ratios survive a noisy shared machine, and wording the
comparison from the measurement."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def measure(functions: dict, repeats: int = 20, warmup: int = 2) -> dict[object, list[float]]:
    """Seconds of every call of each function, measured interleaved (A, B, A, B, ...): round ``i``
    of every function ran at nearly the same moment, so a burst of load hits them alike."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    samples: dict = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def compare(functions: dict[str, Callable[[], object]], repeats: int = 20, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved (:func:`measure`).

    Interleaving makes a burst of load from elsewhere hit every function alike, so the *ratio* of
    two medians is meaningful even when the absolute times are not.
    """
    return {name: statistics.median(values) for name, values in measure(functions, repeats, warmup).items()}


def speed_ratio(baseline: list[float], other: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """``(r, standard error)``: ``r = median(baseline) / median(other)`` is the speed of ``other``
    in units of the baseline's (above 1: ``other`` is faster). The standard error comes from a
    bootstrap over the interleaved rounds (the same rounds drawn for both, keeping them paired)."""
    a, b = np.asarray(baseline), np.asarray(other)
    if a.shape != b.shape or a.size < 2:
        raise ValueError("speed_ratio needs two interleaved series of the same length (at least 2 runs)")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, a.size, size=(draws, a.size))
    boot = np.median(a[picks], axis=1) / np.median(b[picks], axis=1)
    return float(np.median(a) / np.median(b)), float(boot.std(ddof=1))


def verdict(ratio: float, error: float) -> str:
    """``faster`` / ``slower`` when the ratio is more than two standard errors away from 1, else
    ``not measurably faster or slower``."""
    if ratio - 2 * error > 1:
        return "faster"
    if ratio + 2 * error < 1:
        return "slower"
    return "not measurably faster or slower"


def speed_sentence(samples: dict, other, baseline, where: str, names: dict | None = None) -> str:
    """``"INT8 runs at 0.703x the speed of float32 (± 0.012, 400 interleaved runs): slower, on
    <where>"`` from the interleaved ``samples`` (:func:`measure`) of both; ``names`` maps a key of
    ``samples`` to the words for it (default: the key itself)."""
    names = names or {}
    ratio, error = speed_ratio(samples[baseline], samples[other])
    return (
        f"{names.get(other, other)} runs at {ratio:.3f}x the speed of {names.get(baseline, baseline)} "
        f"(± {error:.3f}, {len(samples[other])} interleaved runs): {verdict(ratio, error)}, on {where}"
    )
