"""How sure a measured accuracy is: its standard error, and McNemar's test for two models that
classified the same photos."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` photos: ``sqrt(p (1 - p) / n)``."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / n)


@dataclass(frozen=True)
class McNemar:
    """Paired comparison of two classifiers on the same photos.

    ``only_a``: photos A got right and B wrong; ``only_b``: the reverse. Photos both got right or
    both wrong say nothing about which is better. ``p_value``: exact two-sided binomial test of
    ``only_a`` vs ``only_b`` (each discordant photo a fair coin if the models are equally good).
    """

    only_a: int
    only_b: int
    p_value: float

    def __str__(self) -> str:
        photos = "photo" if self.only_a == 1 else "photos"
        return f"{self.only_a} {photos} only A got right, {self.only_b} only B; McNemar exact p = {self.p_value:.3f}"


def mcnemar(a_correct, b_correct) -> McNemar:
    """McNemar's exact test on two boolean arrays (photo i right for model A / model B)."""
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape:
        raise ValueError(f"the two models were scored on different photos: {a.shape} vs {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    if n == 0:
        return McNemar(0, 0, 1.0)
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2.0**n
    return McNemar(only_a, only_b, min(1.0, 2.0 * tail))
