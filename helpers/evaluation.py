"""ImageNet top-1 / top-5 of any classifier over a folder of labelled photos.

A photo is labelled by its file name: ``<wnid>_<anything>.JPEG`` (the pack's ``imagenet_sample``).
A tie at the top never counts in the model's favour: the true class is within the top ``k`` when
fewer than ``k`` other classes score at least as high (8-bit models have ties; float ones do not).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import images, stats
from .classifier import Classifier
from .errors import WorkbookError


@dataclass
class Evaluation:
    """What :func:`evaluate` measured."""

    model: str
    n: int
    top1: float
    top5: float
    preprocessing: str
    correct_top1: np.ndarray  # per photo, for paired comparisons (McNemar)
    waiting_seconds: float  # the loop waiting for decoded photos (decoding overlaps classifying)
    classify_seconds: float

    def as_dict(self) -> dict:
        """The JSON of ``python -m helpers evaluate``."""
        return {
            "model": self.model,
            "n": self.n,
            "top1": self.top1,
            "top5": self.top5,
            "preprocessing": self.preprocessing,
        }


def rivals(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per photo, how many other classes score at least as high as the true one (0 = top-1)."""
    truth = probabilities[np.arange(len(labels)), labels][:, None]
    return (probabilities >= truth).sum(axis=1) - 1


@dataclass
class Scores:
    """Top-1 and top-5 of one model's scores on labelled photos (:func:`score`)."""

    n: int
    top1: float  # a tie at the top counts against the model
    top5: float
    top1_ties_won: float  # upper bound: every tie at the top decided for the true class
    ties: int  # photos whose highest score two or more classes share (8-bit outputs have 256 levels)
    correct_top1: np.ndarray  # per photo, for paired comparisons (McNemar)

    @property
    def standard_error(self) -> float:
        """The binomial standard error of :attr:`top1`."""
        return stats.standard_error(self.top1, self.n)


def score(probabilities: np.ndarray, labels: np.ndarray) -> Scores:
    """Top-1 (ties against the model, and ties won), top-5 and ties of ``[photos, classes]`` scores."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    ranks = rivals(probabilities, labels)
    truth = probabilities[np.arange(len(labels)), labels][:, None]
    shared_top = (probabilities == probabilities.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return Scores(
        len(labels),
        float(np.mean(ranks == 0)),
        float(np.mean(ranks < 5)),
        float(np.mean((probabilities > truth).sum(axis=1) == 0)),
        int(shared_top.sum()),
        ranks == 0,
    )


def evaluate(
    classifier: Classifier,
    items: Sequence[tuple[Path, int]],
    *,
    central_crop: float | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> Evaluation:
    """Top-1 and top-5 of ``classifier`` on ``(path, class index)`` photos, whole image or a central crop."""
    if not classifier.is_imagenet:
        raise WorkbookError(
            f"{classifier.name} has {len(classifier.class_names)} classes; evaluate needs ImageNet's 1000 (or 1001)"
        )
    if central_crop is not None:
        images.crop_center(np.zeros((8, 8, 3), np.uint8), central_crop)  # a bad fraction fails before any work
    bar = _progress(len(items), classifier.name) if progress else None
    labels = np.array([label for _, label in items])
    chunks = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]

    def decode(chunk):
        photos = [images.load_image(path) for path, _ in chunk]
        return [images.crop_center(p, central_crop) for p in photos] if central_crop is not None else photos

    scores, waiting, classify = [], 0.0, 0.0
    # The next batch is decoded in a thread while this one is classified (PIL releases the GIL while
    # decoding), so only the time the loop actually waits for photos is counted against decoding.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            began = time.perf_counter()
            photos = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(decode, chunks[i + 1])
            decoded = time.perf_counter()
            scores.append(classifier.probabilities(photos))
            classify += time.perf_counter() - decoded
            waiting += decoded - began
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    ranks = rivals(np.concatenate(scores), labels)
    crop = f"central {central_crop:g} crop" if central_crop is not None else "whole image"
    preprocessing = f"{crop}, PIL bilinear resize to {classifier.input_size}x{classifier.input_size}"
    return Evaluation(
        classifier.name,
        len(items),
        float(np.mean(ranks == 0)),
        float(np.mean(ranks < 5)),
        preprocessing,
        ranks == 0,
        waiting,
        classify,
    )


def _progress(total: int, name: str):
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, unit="photo", desc=name, file=sys.stderr, leave=False)
