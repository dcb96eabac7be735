"""Standard errors and McNemar's exact test, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from helpers import stats


def test_standard_error():
    assert stats.standard_error(0.8, 200) == pytest.approx(math.sqrt(0.8 * 0.2 / 200))  # 0.0283
    assert stats.standard_error(1.0, 50) == 0.0


def test_mcnemar_counts_only_discordant_photos():
    a = [True, True, True, False, False, True]
    b = [True, False, False, True, False, True]
    result = stats.mcnemar(a, b)
    assert (result.only_a, result.only_b) == (2, 1)
    # 3 discordant photos, 2 vs 1: P(X <= 1) for Binomial(3, 1/2) = 4/8, two-sided -> 1.0
    assert result.p_value == pytest.approx(1.0)


def test_mcnemar_detects_a_real_difference():
    # 10 discordant photos, all won by A: two-sided p = 2 / 2**10
    result = stats.mcnemar([True] * 10 + [False] * 5, [False] * 10 + [False] * 5)
    assert result.p_value == pytest.approx(2 / 1024)
    assert stats.mcnemar([True, False], [True, False]).p_value == 1.0  # no discordant photo: no evidence


def test_mcnemar_refuses_different_photo_sets():
    with pytest.raises(ValueError, match="different photos"):
        stats.mcnemar([True], [True, False])
