"""Post-training INT8, reference implementations: the converter's weight rounding and bias correction.

The TFLite converter gives every conv and depthwise-conv kernel one scale per output channel,
``scale = max|w| / 127``, and stores ``round(w / scale)`` in [-127, 127] (symmetric, zero point 0).
That rounding error is not zero on average for one output channel: over the layer's input, whose
channels have non-zero means (ReLU6 outputs are never negative), it shifts the channel's output by
``(w_int8 - w) . E[x]``. **Bias correction** (Nagel et al. 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction", section 4.2, here with ``E[x]`` measured on calibration
photos) subtracts that expected shift from the bias before converting. Notebook 07c writes it out;
these are the references its checks and the tests compare with.

Everything here works on a BatchNorm-folded model (:func:`helpers.bn_fold.fold_batchnorm`): the
kernel the converter rounds is the folded one. :func:`simulated_int8` imitates the INT8 model in
Keras, for the *empirical* correction 07c adds on top (the mean error that remains per channel,
activations' rounding included, measured layer by layer).
"""

from __future__ import annotations

import numpy as np


def int8_rounded(kernel: np.ndarray, *, depthwise: bool = False) -> np.ndarray:
    """``kernel`` (HWIO, or HWC1 for depthwise) after the converter's per-output-channel int8 rounding."""
    axes = (0, 1, 3) if depthwise else (0, 1, 2)
    scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale)  # an all-zero channel stays zero
    return (np.clip(np.round(kernel / scale), -127, 127) * scale).astype(kernel.dtype)


def bias_shift(kernel: np.ndarray, input_mean: np.ndarray, *, depthwise: bool = False) -> np.ndarray:
    """Expected change of each output channel caused by rounding ``kernel``, for inputs whose channel
    means are ``input_mean``: ``sum over taps and inputs of (w_int8 - w) * E[x]``."""
    error = int8_rounded(kernel, depthwise=depthwise).astype(np.float64) - kernel
    if depthwise:  # one input channel per output channel
        return (error[..., 0] * input_mean).sum(axis=(0, 1))
    return np.einsum("hwio,i->o", error, input_mean)


def conv_layers(model) -> list:
    """The Conv2D and DepthwiseConv2D layers of ``model`` that have a bias (all of them once folded)."""
    import keras

    convs = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return [layer for layer in model.layers if isinstance(layer, convs) and layer.use_bias]


def input_means(model, x: np.ndarray, layers: list) -> list[np.ndarray]:
    """Per layer, the mean of its input over ``x`` (model inputs), per input channel."""
    import keras

    probe = keras.Model(model.input, [layer.input for layer in layers])
    found = probe.predict(x, verbose=0, batch_size=25)
    found = found if isinstance(found, list) else [found]
    return [value.mean(axis=(0, 1, 2), dtype=np.float64) for value in found]


def bias_correct(model, x: np.ndarray, layers: list | None = None) -> dict[str, np.ndarray]:
    """Subtract each conv's expected rounding shift from its bias, in place; returns the shifts.

    ``model`` must be BatchNorm-folded; ``x`` are its inputs for the means (calibration photos);
    ``layers`` defaults to every conv with a bias. All means are measured before any bias changes.
    """
    import keras

    layers = conv_layers(model) if layers is None else layers
    shifts = {}
    for layer, mean in zip(layers, input_means(model, x, layers), strict=True):
        kernel, bias = layer.get_weights()
        shift = bias_shift(kernel, mean, depthwise=isinstance(layer, keras.layers.DepthwiseConv2D))
        layer.set_weights([kernel, (bias - shift).astype(bias.dtype)])
        shifts[layer.name] = shift
    return shifts


def round_weights(model, *, keep: tuple[str, ...] = ()) -> None:
    """Replace every conv kernel of ``model`` (except the layers named in ``keep``) by its
    int8-rounded value, in place (activations stay float): the weights' share of the INT8 error."""
    import keras

    for layer in conv_layers(model):
        if layer.name not in keep:
            kernel, bias = layer.get_weights()
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            layer.set_weights([int8_rounded(kernel, depthwise=depthwise), bias])


def simulated_int8(model) -> tuple:
    """``(copy, layers by name)``: a copy of the BatchNorm-folded chain ``model`` (Keras's MobileNet
    V1 layout), up to its logits, computing roughly what its INT8 file computes: every conv kernel
    int8-rounded as the converter rounds it, and every ReLU6 output rounded to the 256 levels of
    [0, 6], the range calibration gives it (07c counts them). The input, biases and classifier stay
    float. The copy's layers are returned by name so that biases can be changed in place."""
    import keras
    import tensorflow as tf

    def relu6_levels(t):
        return tf.round(tf.clip_by_value(t, 0.0, 6.0) * (255.0 / 6.0)) * (6.0 / 255.0)

    inputs = keras.Input(model.input_shape[1:])
    x, layers = inputs, {}
    for layer in model.layers[1:]:
        if layer.name == "predictions":
            break
        twin = type(layer).from_config(layer.get_config())
        x = twin(x)
        if layer.weights:
            twin.set_weights(layer.get_weights())
        layers[layer.name] = twin
        if isinstance(layer, keras.layers.ReLU):
            x = keras.layers.Lambda(relu6_levels, name=f"{layer.name}_levels")(x)
    simulated = keras.Model(inputs, x, name=f"{model.name}_int8_simulated")
    round_weights(simulated, keep=("conv_preds",))  # the classifier stays float
    return simulated, layers
