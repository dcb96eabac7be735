"""The slim -> Keras weight import, checked against TensorFlow running the frozen graph itself."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from helpers import data, images, models, ranking, slim
from helpers.errors import WorkbookError

# Measured when the data pack was assembled (its PROVENANCE.md), independently of this code:
# frozen 0.25/224 graph, whole image bilinear-resized to 224 (PIL), scaled x/127.5 - 1.
PACK_CHECKS = {
    "parrot.jpg": ("macaw", 0.940),
    "cat.bmp": ("Egyptian cat", 0.411),
    "grace_hopper.bmp": ("bow tie", 0.277),
}


@pytest.fixture(scope="module")
def photos(pack):
    names = images.reference_photos()
    return names, images.preprocess([images.load_image(images.resolve_image(n)) for n in names], 224)


def test_every_slim_variable_has_a_keras_home(pack, imagenet_model):
    weights = slim.slim_weights()
    assert set(weights) == set(models.SLIM_TO_KERAS)
    assert len(weights) == 27 * 5 + 2  # 27 conv+BN pairs (5 variables each) + logits weights and biases
    keras_weights = sum(len(layer.weights) for layer in imagenet_model.layers)
    assert keras_weights == len(weights)


def test_keras_logits_equal_frozen_graph_logits(pack, imagenet_model, photos):
    names, x = photos
    keras_logits = models.logits_model(imagenet_model).predict(x, verbose=0)
    graph_logits = slim.FrozenGraph().logits(x)
    assert graph_logits.shape == (len(names), 1001)
    # Same weights and ops; only float32 summation order differs (observed ~3e-5 on logits of ~10).
    assert np.abs(keras_logits - graph_logits[:, 1:]).max() < 1e-4


def test_dense_logits_model_computes_the_same_logits(pack, imagenet_model, photos):
    _, x = photos
    dense = models.logits_model(imagenet_model, dense=True)
    assert [type(layer).__name__ for layer in dense.layers[-2:]] == ["GlobalAveragePooling2D", "Dense"]
    # The 1x1 conv's weights as a matrix: the same sums (observed ~1e-6 on logits of ~10).
    conv_logits = models.logits_model(imagenet_model).predict(x, verbose=0)
    np.testing.assert_allclose(dense.predict(x, verbose=0), conv_logits, atol=1e-4)


def test_probabilities_differ_only_by_the_background_share(pack, imagenet_model, photos):
    _, x = photos
    graph = slim.FrozenGraph().probabilities(x)
    keras_p = imagenet_model.predict(x, verbose=0)
    renormalised = graph[:, 1:] / (1.0 - graph[:, :1])
    assert np.abs(keras_p - renormalised).max() < 1e-5


@pytest.mark.parametrize("photo", sorted(PACK_CHECKS))
def test_pack_reference_predictions(pack, imagenet_model, photo):
    label, probability = PACK_CHECKS[photo]
    x = images.preprocess(images.load_image(data.fetch(f"images/{photo}")), 224)
    top = ranking.top_k(ranking.softmax(models.logits_model(imagenet_model).predict(x, verbose=0)[0]), 1)[0]
    assert top.label == label
    assert top.probability == pytest.approx(probability, abs=0.0015)  # the reference has 3 decimals


def test_keras_h5_weights_are_the_slim_weights(pack, imagenet_model):
    """Keras's own no-top file (a second, independent copy of the weights) agrees bit for bit."""
    with h5py.File(data.fetch("mobilenet_2_5_224_tf_no_top.h5"), "r") as h5:
        stored = {}
        h5.visititems(lambda name, obj: stored.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    checked = 0
    for layer in imagenet_model.layers:
        for weight in layer.weights:
            h5_name = (
                "depthwise_kernel" if layer.name.startswith("conv_dw_") and weight.name == "kernel" else weight.name
            )
            key = f"{layer.name}/{layer.name}/{h5_name}:0"  # Keras 2's h5 layout
            if key in stored:
                np.testing.assert_array_equal(weight.numpy(), stored[key])
                checked += 1
    assert checked == 27 * 5  # every conv and BatchNorm variable below the classifier


def test_smaller_input_sizes_load(pack):
    model = models.load_model("mobilenet_v1_0.25_128")
    x = images.preprocess(images.load_image(data.fetch("images/parrot.jpg")), 128)
    keras_logits = models.logits_model(model).predict(x, verbose=0)
    assert np.abs(keras_logits - slim.FrozenGraph("0.25", 128).logits(x)[:, 1:]).max() < 1e-4


def test_unknown_model_lists_known_ones():
    with pytest.raises(WorkbookError, match="unknown model 'mobilenet_v3'.*mobilenet_v1_0.25_224"):
        models.parse_model_name("mobilenet_v3")


def test_subset_model_softmax_is_renormalised_subset(pack, imagenet_model, photos):
    _, x = photos
    indices = [717, 720, 726]
    reduced = models.subset_model(imagenet_model, indices).predict(x, verbose=0)
    logits = models.logits_model(imagenet_model).predict(x, verbose=0)
    assert np.abs(reduced - ranking.softmax(logits[:, indices])).max() < 1e-5  # float32 rounding only
