"""The registry: every model name or file becomes one Classifier, and bad names fail fast."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import images, zoo
from helpers.classifier import KerasClassifier
from helpers.errors import WorkbookError
from helpers.tflite import TFLiteClassifier


def test_unknown_model_is_refused_before_loading_anything():
    with pytest.raises(WorkbookError, match="unknown model 'resnet50'.*mobilenet_v2_1.0_224_tfnn"):
        zoo.check("resnet50")
    zoo.check("anything.keras")  # files are checked when loaded


def test_registered_kinds(pack):
    quant = zoo.load("mobilenet_v1_0.25_128_quant")
    assert isinstance(quant, TFLiteClassifier) and quant.input_size == 128 and quant.is_imagenet
    v1 = zoo.load("mobilenet_v1_0.25_160")
    assert isinstance(v1, KerasClassifier) and v1.input_size == 160 and v1.output == "logits"
    parrot = images.load_image(images.resolve_image("parrot.jpg"))
    (ranked,) = v1.predict([parrot], 3)
    assert ranked[0].label == "macaw" and ranked[0].wnid == "n01818515"
    probabilities = v1.probabilities([parrot, parrot])
    assert probabilities.shape == (2, 1000)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])  # softmax taken in float64


def test_label_subsets_only_for_imagenet_classifiers():
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    classifier = KerasClassifier(model, name="toy", class_names=["a", "b"], output="probabilities")
    with pytest.raises(WorkbookError, match="label subsets name ImageNet classes"):
        classifier.predict([np.zeros((8, 8, 3), np.uint8)], 1, subset=[0])
    with pytest.raises(WorkbookError, match="toy has 2 outputs but 3 class names"):
        KerasClassifier(model, name="toy", class_names=["a", "b", "c"])


def test_dequantized_v1_is_its_uint8_file_in_float(pack):
    """The rebuilt float network carries the uint8 file's weights: on the reference photos it ranks
    like the file (same top-1) and its probabilities differ only by the 8-bit activations' rounding."""
    rebuilt, original = zoo.load("mobilenet_v1_0.5_160_dequant"), zoo.load("mobilenet_v1_0.5_160_quant")
    assert isinstance(rebuilt, KerasClassifier) and rebuilt.input_size == 160 and rebuilt.background
    photos = [images.load_image(images.resolve_image(name)) for name in images.reference_photos()]
    a, b = rebuilt.probabilities(photos), original.probabilities(photos)
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() >= 8 / 9  # measured 9/9; one near-tie may flip
    # measured 0.055 at most (0.002-0.055 per photo): the uint8 file rounds every activation to 8 bits
    # and its output to steps of 1/256; 0.15 is about 3x that, while a wrong weight layout gives ~1.
    assert np.abs(a - b).max() < 0.15
    with pytest.raises(WorkbookError, match="MobileNet V1 has 28"):
        from helpers import data, models

        models.dequantized_v1(data.fetch("mobilenet_v2_1.0_224_quant.tflite"), "1.0", 224)
