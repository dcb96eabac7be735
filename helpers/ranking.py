"""Ranking one photo's class probabilities: softmax, top-k, label subsets, JSON rows.

Every classifier of the workbook (see :mod:`helpers.classifier`) ends here, so ``predict`` prints
the same fields for an ImageNet MobileNet, a saved flower classifier or any TFLite file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import WorkbookError
from .labels import imagenet_classes


@dataclass(frozen=True)
class Prediction:
    """One ranked class for one photo."""

    rank: int
    label: str
    wnid: str | None
    index: int
    probability: float
    subset_probability: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready form; ``subset_probability`` only when a label subset was ranked."""
        out = {
            "rank": self.rank,
            "label": self.label,
            "wnid": self.wnid,
            "index": self.index,
            "probability": self.probability,
        }
        if self.subset_probability is not None:
            out["subset_probability"] = self.subset_probability
        return out


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def top_k(
    probabilities: np.ndarray,
    k: int = 5,
    *,
    class_names: list[str] | None = None,
    wnids: list[str | None] | None = None,
    subset: list[int] | None = None,
) -> list[Prediction]:
    """The ``k`` most probable classes of one photo.

    ``class_names`` default to the 1000 ImageNet classes (with their WordNet ids). With ``subset``
    (class indices) only those classes are ranked, each with its ``probability`` over all classes
    and its ``subset_probability``, renormalised over the subset: ``p_i / sum(p_subset)``, which
    is the softmax of the subset's logits (computed from log-probabilities, so classes whose
    probability underflowed still get a share).
    """
    if class_names is None:
        classes = imagenet_classes()
        class_names, wnids = [c.label for c in classes], [c.wnid for c in classes]
    probabilities = np.asarray(probabilities, np.float64).reshape(-1)
    if probabilities.shape[0] != len(class_names):
        raise WorkbookError(f"expected {len(class_names)} class probabilities, got {probabilities.shape[0]}")
    candidates = list(range(len(class_names))) if subset is None else list(subset)
    if k < 1 or k > len(candidates):
        what = "labels to rank" if subset is not None else "classes of the model"
        raise WorkbookError(f"top-k {k} must be between 1 and the {len(candidates)} {what}")
    scores = probabilities[candidates]
    within = softmax(np.log(np.maximum(scores, 1e-300))) if subset is not None else None
    order = np.argsort(-scores, kind="stable")[:k]
    return [
        Prediction(
            rank=rank + 1,
            label=class_names[candidates[j]],
            wnid=None if wnids is None else wnids[candidates[j]],
            index=candidates[j],
            probability=float(scores[j]),
            subset_probability=None if within is None else float(within[j]),
        )
        for rank, j in enumerate(order)
    ]
