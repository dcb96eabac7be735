"""ImageNet labels and matching names to classes."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import labels, ranking
from helpers.errors import WorkbookError

HOMEWORK = list(labels.HOMEWORK_LABELS)


def test_classes_have_wnids_and_synonyms(pack):
    classes = labels.imagenet_classes()
    assert len(classes) == 1000
    assert classes[0].wnid == "n01440764" and classes[0].names[0] == "tench"
    assert classes[652].keras_name == "military_uniform" and classes[652].wnid == "n03763968"


def test_homework_labels_match_consecutive_classes(pack):
    matched = labels.match_labels(HOMEWORK)
    # In ImageNet's alphabetical-by-wnid order these ten happen to be classes 717..726.
    assert [c.index for c in matched] == list(range(717, 727))
    assert "carpenter's plane" in matched[-1].names  # "plane" is the tool, not the aircraft


def test_unknown_label_suggests_close_names(pack):
    with pytest.raises(WorkbookError, match="unknown label 'piggybank'.*piggy bank"):
        labels.match_labels(["piggybank"])


def test_ambiguous_label_is_refused(pack):
    with pytest.raises(WorkbookError, match="'crane' names 2 ImageNet classes"):
        labels.match_labels(["crane"])


def test_k_larger_than_subset(pack):
    with pytest.raises(WorkbookError, match="top-k 11 must be between 1 and the 10 labels"):
        ranking.top_k(np.full(1000, 1e-3), 11, subset=list(range(10)))


def test_subset_probability_is_softmax_over_subset(pack):
    logits = np.random.default_rng(0).normal(size=1000)
    ranked = ranking.top_k(ranking.softmax(logits), 3, subset=[5, 7, 9])
    expected = np.exp(logits[[5, 7, 9]]) / np.exp(logits[[5, 7, 9]]).sum()
    # float64 throughout; pytest.approx's default relative 1e-6 is far above its rounding.
    assert sorted(p.subset_probability for p in ranked) == pytest.approx(sorted(expected))
    assert ranked[0].subset_probability == pytest.approx(max(expected))


def test_subset_probability_survives_underflow(pack):
    """Probabilities that underflow to 0 still share the subset evenly instead of dividing 0 by 0."""
    p = np.zeros(1000)
    p[0] = 1.0
    ranked = ranking.top_k(p, 2, subset=[5, 6])
    assert [r.subset_probability for r in ranked] == pytest.approx([0.5, 0.5])
