"""predict's LiteRT backend: the same answers as Keras, a cache that survives corruption, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import images, zoo
from helpers.paths import REPO


@pytest.fixture(scope="module")
def photos(pack):
    return [images.load_image(images.resolve_image(name)) for name in images.reference_photos()]


@pytest.mark.parametrize("name", ["mobilenet_v1_0.25_224", "mobilenet_v2_1.0_224_tfnn"])
def test_litert_answers_as_keras_does(name, photos):
    keras_side, litert_side = zoo.load(name, backend="keras"), zoo.load(name, backend="litert")
    assert zoo.litert_path(name).is_file()
    expected, found = keras_side.probabilities(photos), litert_side.probabilities(photos)
    # The same float32 network run by two engines: summation order only (measured below 1e-6).
    np.testing.assert_allclose(found, expected, atol=1e-4)
    for a, b in zip(keras_side.predict(photos, 5), litert_side.predict(photos, 5), strict=True):
        assert [p.index for p in a] == [p.index for p in b]


def test_a_corrupt_cache_file_is_rebuilt(photos):
    name = "mobilenet_v1_0.25_224"
    zoo.load(name, backend="litert")
    path = zoo.litert_path(name)
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as after a crash mid-write without the atomic rename
    rebuilt = zoo.load(name, backend="litert")
    assert rebuilt.predict(photos[:1], 1)[0][0].label == "macaw"
    assert path.stat().st_size > 1_000_000


def test_a_cached_model_answers_without_tensorflow(pack):
    zoo.load("mobilenet_v1_0.25_224", backend="litert")  # make sure the conversion is cached
    code = (
        "import sys; from helpers.cli import main; main(['predict', 'parrot.jpg', '--json', '--top-k', '1']); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    answer, loaded = result.stdout.strip().rsplit("\n", 1)
    assert loaded == "[]"  # none of TensorFlow, Keras, matplotlib was imported
    assert json.loads(answer)[0]["predictions"][0]["label"] == "macaw"


def test_unknown_backend():
    from helpers.errors import WorkbookError

    with pytest.raises(WorkbookError, match="unknown backend 'onnx'"):
        zoo.load("mobilenet_v1_0.25_224", backend="onnx")
