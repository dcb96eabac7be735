"""Datasets through the data registry (never keras.datasets / tensorflow_datasets downloads)."""

from __future__ import annotations

import numpy as np

from . import data
from .errors import WorkbookError


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
