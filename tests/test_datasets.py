"""MNIST through the data registry."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import data
from helpers.datasets import load_mnist
from helpers.errors import WorkbookError


def test_mnist_shapes_and_statistics(pack):
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28) and x_train.dtype == np.uint8
    assert np.bincount(y_test).tolist()[:3] == [980, 1135, 1032]  # the official test-set class counts
    assert x_train.mean() / 255 == pytest.approx(0.1307, abs=5e-4)  # MNIST's well-known pixel mean


def test_not_an_mnist_file(tmp_path, monkeypatch):
    np.savez(tmp_path / "mnist.npz", images=np.zeros(3))
    monkeypatch.setattr(data, "fetch", lambda name: tmp_path / "mnist.npz")
    with pytest.raises(WorkbookError, match="not an MNIST npz"):
        load_mnist()


def test_imagenet_sample_is_one_photo_per_even_class(pack):
    from helpers.datasets import imagenet_sample

    items = imagenet_sample()
    assert [label for _, label in items] == list(range(0, 1000, 2))  # the pack README's description
    assert items[0][0].name == "n01440764_tench.JPEG"
