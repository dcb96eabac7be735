"""BatchNorm folding against TensorFlow's own conv + batch_normalization, and the cost counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import bn_fold, costs, slim

EPS = 1e-3


def _bn_params(rng, channels):
    return (
        rng.uniform(-3, 3, channels).astype(np.float32),  # gamma, negative values included
        rng.normal(size=channels).astype(np.float32),
        rng.normal(size=channels).astype(np.float32),
        rng.uniform(0.01, 4, channels).astype(np.float32),
    )


def test_fold_conv_with_bias_matches_conv_then_batchnorm():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    gamma, beta, mean, var = _bn_params(rng, 5)
    z = tf.nn.conv2d(x, w, 1, "SAME") + b
    reference = tf.nn.batch_normalization(z, mean, var, beta, gamma, EPS)
    f = bn_fold.fold(w, gamma, beta, mean, var, EPS, bias=b)
    folded = tf.nn.conv2d(x, f.kernel, 1, "SAME") + f.bias
    # float32, activations of order 10: 1e-4 leaves ~10x margin over observed rounding differences.
    np.testing.assert_allclose(folded, reference, atol=1e-4)


def test_fold_depthwise_with_multiplier_two():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)  # 3 inputs x 2 = 6 output channels
    gamma, beta, mean, var = _bn_params(rng, 6)
    z = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME")
    reference = tf.nn.batch_normalization(z, mean, var, beta, gamma, EPS)
    f = bn_fold.fold(w, gamma, beta, mean, var, EPS, depthwise=True)
    folded = tf.nn.depthwise_conv2d(x, f.kernel, [1, 1, 1, 1], "SAME") + f.bias
    np.testing.assert_allclose(folded, reference, atol=1e-4)  # as above: float32 rounding of order-10 values


def test_gamma_one_variant_is_exact_only_when_gamma_is_one():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    _, beta, mean, var = _bn_params(rng, 4)
    exact = bn_fold.fold(w, np.ones(4, np.float32), beta, mean, var, EPS)
    variant = bn_fold.fold_gamma_one(w, beta, mean, var, EPS)
    np.testing.assert_array_equal(exact.kernel, variant.kernel)
    real_gamma = bn_fold.fold(w, np.full(4, 2.0, np.float32), beta, mean, var, EPS)
    # gamma 2 exactly doubles the multiplier; float32 rounding only.
    np.testing.assert_allclose(real_gamma.multiplier, 2 * variant.multiplier, rtol=1e-6)


def test_fold_batchnorm_model_equals_original():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(list(_bn_params(rng, layer.weights[0].shape[0])))
    folded = bn_fold.fold_batchnorm(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    data = rng.uniform(-1, 1, (3, 12, 12, 3)).astype(np.float32)
    # Two folds in a row on values of order 1-10: float32 rounding, far below 1e-4.
    np.testing.assert_allclose(folded.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-4)


def test_slim_epsilon_is_read_from_the_graph(pack):
    assert slim.batchnorm_epsilon() == pytest.approx(0.001)  # stored as float32: 0.001 is not exact


def test_mult_adds_match_the_paper(imagenet_model):
    """MobileNet paper, Table 6: 0.25 MobileNet-224 has 41 million mult-adds (2 significant digits)."""
    total = sum(row.mult_adds for row in costs.layer_costs(imagenet_model))
    assert total == pytest.approx(41e6, rel=0.0125)


def test_separable_ratio_formula():
    assert costs.separable_ratio(3, 32, 64, 56, 56) == pytest.approx(costs.paper_ratio(3, 64), rel=1e-12)
    assert costs.paper_ratio(3, 1024) == pytest.approx(1 / 1024 + 1 / 9)  # float64 arithmetic only
