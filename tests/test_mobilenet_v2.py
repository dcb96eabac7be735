"""MobileNet V2 from tf.nn ops: padding, weight import from the uint8 file, the registered names."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import data, mobilenet_v2
from helpers.errors import WorkbookError
from helpers.paths import REPO


@pytest.mark.parametrize("size", [7, 8, 224, 225])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_padding_matches_tensorflow(size, stride):
    import tensorflow as tf

    rng = np.random.default_rng(size)
    x = tf.constant(rng.normal(size=(1, size, size, 2)), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, 2, 3)), tf.float32)
    before, after = mobilenet_v2.same_padding(size, 3, stride)
    padded = tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]])
    explicit = tf.nn.conv2d(padded, kernel, stride, "VALID")
    # The same 18 products summed in another order: float32 rounding of values of order 1-10.
    np.testing.assert_allclose(explicit, tf.nn.conv2d(x, kernel, stride, "SAME"), atol=1e-5)


def test_architecture_and_weights_from_the_uint8_file(pack):
    model = mobilenet_v2.load_model()
    assert len(mobilenet_v2.conv_layers(model)) == 53  # stem + 17 blocks (52 - 1 without expand) + head + logits
    assert model.output_shape == (None, 1001)
    residual = [b.name for b in mobilenet_v2.blocks(model) if b.residual]
    assert len(residual) == 10  # the paper's repeats minus the first of each stage
    with pytest.raises(WorkbookError, match="convolutions"):
        mobilenet_v2.load_tflite_weights(model, data.fetch("mobilenet_v1_0.25_128_quant.tflite"))


@pytest.mark.parametrize("name", ["mobilenet_v2_1.0_224_tfnn", "mobilenet_v2_1.0_224_quant"])
def test_predict_registered_v2_models(pack, name):
    command = [
        sys.executable,
        "-m",
        "helpers",
        "predict",
        "--model",
        name,
        "grace_hopper.bmp",
        "--json",
        "--top-k",
        "2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)[0]["predictions"][0]
    assert (top["label"], top["wnid"]) == ("military uniform", "n03763968")
    assert top["probability"] == pytest.approx(0.926, abs=0.01)  # uint8 reference 0.926 (1/256 steps)
