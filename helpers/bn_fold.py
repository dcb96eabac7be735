"""Folding BatchNorm into the convolution before it.

At inference BatchNorm is an affine map per output channel::

    bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta

so ``bn(conv(x, w) + b) == conv(x, w') + b'`` with ``m = gamma / sqrt(var + eps)``,
``w' = w * m`` (per output channel) and ``b' = beta + (b - mean) * m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Folded:
    """Folded kernel and bias of one conv, plus the per-channel multiplier that made them."""

    kernel: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray


def fold(
    kernel: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    epsilon: float,
    *,
    bias: np.ndarray | None = None,
    depthwise: bool = False,
) -> Folded:
    """Fold one BatchNorm into the conv ``kernel`` (HWIO, or HWIM for depthwise) before it.

    Computed in float64 and returned as float32. ``bias`` is the conv's own bias (0 when absent).
    """
    kernel64 = np.asarray(kernel, np.float64)
    multiplier = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    conv_bias = np.zeros_like(multiplier) if bias is None else np.asarray(bias, np.float64)
    if depthwise:  # [kh, kw, in, depth_multiplier]; output channel c = in * depth_multiplier + m
        scaled = kernel64 * multiplier.reshape(kernel64.shape[2], kernel64.shape[3])
    else:  # [kh, kw, in, out]
        scaled = kernel64 * multiplier
    folded_bias = np.asarray(beta, np.float64) + (conv_bias - np.asarray(mean, np.float64)) * multiplier
    return Folded(scaled.astype(np.float32), folded_bias.astype(np.float32), multiplier.astype(np.float32))


def fold_gamma_one(
    kernel: np.ndarray, beta: np.ndarray, mean: np.ndarray, variance: np.ndarray, epsilon: float
) -> Folded:
    """The original homework's variant: gamma assumed to be 1 and no conv bias.

    Correct only when the BatchNorm was trained with ``scale=False``; with a real gamma every
    output channel comes out scaled by ``1/gamma`` relative to the true one.
    """
    return fold(kernel, np.ones_like(beta), beta, mean, variance, epsilon)


def fold_layer_pair(conv, bn) -> Folded:
    """Fold a Keras ``BatchNormalization`` layer into the (Depthwise)Conv2D layer before it."""
    import keras

    weights = conv.get_weights()
    gamma, beta, mean, variance = bn.get_weights()
    return fold(
        weights[0],
        gamma,
        beta,
        mean,
        variance,
        bn.epsilon,
        bias=weights[1] if len(weights) > 1 else None,
        depthwise=isinstance(conv, keras.layers.DepthwiseConv2D),
    )


def fold_batchnorm(model):
    """A copy of a chain model (each layer feeds the next, as MobileNet V1) with every
    Conv2D/DepthwiseConv2D + BatchNormalization pair replaced by one conv with a bias."""
    import keras

    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    inputs = keras.Input(model.input_shape[1:], name="input")
    x = inputs
    i = 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, convs) and isinstance(following, keras.layers.BatchNormalization):
            config = layer.get_config() | {"use_bias": True, "name": layer.name + "_folded"}
            folded_layer = type(layer).from_config(config)
            x = folded_layer(x)
            folded = fold_layer_pair(layer, following)
            folded_layer.set_weights([folded.kernel, folded.bias])
            i += 2
        else:
            copy = type(layer).from_config(layer.get_config())  # a fresh layer, so the new model owns it
            x = copy(x)
            if layer.weights:
                copy.set_weights(layer.get_weights())
            i += 1
    return keras.Model(inputs, x, name=model.name + "_folded")
