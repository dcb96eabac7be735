"""Datasets through the data registry (never keras.datasets / tensorflow_datasets downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import data
from .errors import WorkbookError
from .labels import imagenet_classes


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)`` as uint8 arrays, from ``mnist.npz`` (Keras layout).

    Read with ``allow_pickle=False``: only plain arrays are accepted.
    """
    path = data.fetch("mnist.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (KeyError, ValueError, OSError) as error:
        raise WorkbookError(f"{path} is not an MNIST npz in Keras layout: {error}") from None
    if arrays["x_train"].shape[1:] != (28, 28) or len(arrays["x_train"]) != len(arrays["y_train"]):
        raise WorkbookError(f"{path} has unexpected shapes {[a.shape for a in arrays.values()]}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp")


def labelled_photos(folder: str | Path) -> list[tuple[Path, int]]:
    """``(path, ImageNet class index)`` for every photo of ``folder`` whose file name starts with its
    class's WordNet id (``n01440764_tench.JPEG``), sorted by class index then name.

    A photo whose name has no known WordNet id is an error naming it; a folder without photos too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbookError(f"photo folder not found: {folder}")
    index = {c.wnid: c.index for c in imagenet_classes()}
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        wnid = path.name.split("_", 1)[0].split(".", 1)[0]
        if wnid not in index:
            raise WorkbookError(
                f"{path}: the file name must start with an ImageNet WordNet id such as n01440764_ (found {wnid!r})"
            )
        found.append((path, index[wnid]))
    if not found:
        raise WorkbookError(f"{folder} has no photos ({', '.join(IMAGE_SUFFIXES)}) named <wnid>_*.")
    return sorted(found, key=lambda item: (item[1], item[0].name))


def imagenet_sample() -> list[tuple[Path, int]]:
    """The data pack's 500 labelled ImageNet photos (one per even class index) as ``(path, class index)``."""
    return labelled_photos(data.fetch("imagenet_sample"))
