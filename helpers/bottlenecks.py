"""Cached bottleneck features: the idea of tensorflow-for-poets' ``retrain.py``, in TF2.

A *bottleneck* is the feature extractor's output for one photo (here the pooled 256-vector of
MobileNet 0.25; ``retrain.py`` cached MobileNet's 1001 logits instead). It never changes while only
the head trains, so it is computed once and saved.
Each file is keyed by the **model key** (model name + fingerprint of its weights) and the
**SHA-256 of the photo's pixels** (:func:`helpers.images.pixel_key`): change either and the old
file is simply not found again.
Files are ``.npy`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import pixel_key
from .paths import build_dir


def model_key(model) -> str:
    """``<model name>-<first 12 hex digits of SHA-256 over all weights>``."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(weight.path.encode())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return f"{model.name}-{digest.hexdigest()[:12]}"


def cache_root() -> Path:
    """``build/cache/bottlenecks`` (``make clean`` removes it)."""
    return build_dir() / "cache" / "bottlenecks"


@dataclass
class CacheStats:
    """How many bottlenecks came from disk and how many were computed in one call."""

    hits: int = 0
    misses: int = 0


def bottlenecks(
    extractor, images: np.ndarray, *, batch_size: int = 64, root: Path | None = None
) -> tuple[np.ndarray, CacheStats]:
    """Features of ``images`` (uint8 or float, the extractor's input) through ``extractor``,
    read from the cache where present and computed (then saved) where not."""
    folder = (root or cache_root()) / model_key(extractor)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [pixel_key(image) for image in images]
    paths = [folder / key[:2] / f"{key}.npy" for key in keys]
    out: list[np.ndarray | None] = [None] * len(images)
    todo = []
    for i, path in enumerate(paths):
        if path.is_file():
            try:
                out[i] = np.load(path, allow_pickle=False)
                continue
            except (ValueError, OSError):
                path.unlink()  # a half-written or corrupt file: recompute it
        todo.append(i)
    stats = CacheStats(hits=len(images) - len(todo), misses=len(todo))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        features = np.asarray(extractor.predict(np.stack([images[i] for i in chunk]), verbose=0))
        for i, feature in zip(chunk, features, strict=True):
            paths[i].parent.mkdir(exist_ok=True)
            tmp = paths[i].with_suffix(".tmp.npy")
            np.save(tmp, feature, allow_pickle=False)
            tmp.replace(paths[i])
            out[i] = feature
    return np.stack(out), stats
