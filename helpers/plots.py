"""Figures more than one notebook draws."""

from __future__ import annotations

import numpy as np


def confusion(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[i, j]``: photos of class ``i`` predicted as ``j``."""
    counts = np.zeros((n_classes, n_classes), int)
    np.add.at(counts, (np.asarray(true), np.asarray(predicted)), 1)
    return counts


def confusion_matrix(
    ax, true: np.ndarray, predicted: np.ndarray, class_names: list[str], *, title: str = ""
) -> np.ndarray:
    """Draw the confusion matrix (log-scaled colours, counts written in) on ``ax``; return the counts."""
    counts = confusion(true, predicted, len(class_names))
    ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if max(len(n) for n in class_names) > 2 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return counts
