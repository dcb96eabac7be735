"""The reference INT8 weight rounding and bias correction (helpers.quantization)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import quantization, tflite
from helpers.errors import WorkbookError


@pytest.fixture(scope="module")
def chain():
    """Conv 3x3 -> ReLU6 -> depthwise 3x3 -> ReLU6 -> conv 1x1 -> pool -> dense, every conv with a
    bias (as after BatchNorm folding), with channel gains as uneven as MobileNet's folded ones."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(16, 1, name="pointwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))
    rng = np.random.default_rng(1)
    for layer in quantization.conv_layers(model):
        kernel, bias = layer.get_weights()
        gains = np.exp(rng.normal(0, 1.5, kernel.shape[-2 if layer.name == "depthwise" else -1]))
        gains = gains[:, None] if layer.name == "depthwise" else gains
        layer.set_weights([(kernel * gains).astype(np.float32), rng.normal(0, 0.5, bias.shape).astype(np.float32)])
    photos = rng.uniform(0.0, 1.0, (24, 12, 12, 3)).astype(np.float32)  # channel means 0.5, not 0
    return model, photos


def test_int8_rounded_is_what_the_converter_stores(chain):
    model, photos = chain
    content = tflite.convert(model, "int8", lambda: ([p[None]] for p in photos))
    stored = [kernel for _, kernel, _ in tflite.conv_weights(content)]
    ours = [
        quantization.int8_rounded(layer.get_weights()[0], depthwise=layer.name == "depthwise")
        for layer in quantization.conv_layers(model)
    ]
    assert len(stored) == len(ours) == 3
    for layer, theirs, mine in zip(quantization.conv_layers(model), stored, ours, strict=True):
        # The same integers times the same float32 scale: equal up to float32 rounding of the product.
        np.testing.assert_allclose(theirs, mine, rtol=1e-6, atol=1e-7, err_msg=layer.name)
        assert not np.array_equal(mine, layer.get_weights()[0])  # rounding did change the kernel


def test_rounding_error_is_at_most_half_a_step_per_channel():
    kernel = np.random.default_rng(2).normal(0, 1, (3, 3, 4, 6)).astype(np.float32)
    kernel[..., 2] = 0.0  # an all-zero channel stays zero (no division by a zero scale)
    step = np.abs(kernel).max(axis=(0, 1, 2)) / 127
    error = np.abs(quantization.int8_rounded(kernel) - kernel).max(axis=(0, 1, 2))
    assert np.all(error <= step / 2 + 1e-7) and error[2] == 0


def test_bias_shift_is_the_mean_output_change():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 6, (4, 10, 10, 8)).astype(np.float32)  # ReLU6-like: every channel mean > 0
    pointwise = rng.normal(0, 1, (1, 1, 8, 5)).astype(np.float32)
    change = tf.nn.conv2d(x, quantization.int8_rounded(pointwise) - pointwise, 1, "VALID").numpy()
    shift = quantization.bias_shift(pointwise, x.mean(axis=(0, 1, 2), dtype=np.float64))
    np.testing.assert_allclose(change.mean(axis=(0, 1, 2)), shift, rtol=1e-4, atol=1e-7)  # linear: exact
    assert np.abs(shift).max() > 1e-4  # not trivially zero
    # Depthwise 3x3 on inputs constant per channel: every output position sees the channel mean.
    depthwise = rng.normal(0, 1, (3, 3, 8, 1)).astype(np.float32)
    constant = np.broadcast_to(x.mean(axis=(0, 1, 2)), (1, 5, 5, 8)).astype(np.float32)
    error = quantization.int8_rounded(depthwise, depthwise=True) - depthwise
    change = tf.nn.depthwise_conv2d(constant, error, [1, 1, 1, 1], "VALID").numpy()
    np.testing.assert_allclose(
        change[0, 0, 0], quantization.bias_shift(depthwise, constant[0, 0, 0], depthwise=True), rtol=1e-4, atol=1e-7
    )


def test_bias_correction_removes_the_mean_error_of_rounded_weights(chain):
    import keras

    model, photos = chain

    def copy():
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone

    def mean_error(candidate):  # per output channel of the first conv, mean over photos and positions
        probe = keras.Model(candidate.input, candidate.get_layer("conv").output)
        reference = keras.Model(model.input, model.get_layer("conv").output)
        return (probe.predict(photos, verbose=0) - reference.predict(photos, verbose=0)).mean(axis=(0, 1, 2))

    rounded = copy()
    quantization.round_weights(rounded)
    corrected = copy()
    shifts = quantization.bias_correct(corrected, photos)
    assert sorted(shifts) == ["conv", "depthwise", "pointwise"]
    quantization.round_weights(corrected)  # the converter's rounding, after the correction
    before, after = np.abs(mean_error(rounded)), np.abs(mean_error(corrected))
    # The first conv ("valid" padding) sees the photos themselves, so its correction is exact up to
    # the photos' own deviations from their mean and float32 sums: measured 2.4e-3 -> 3.7e-5.
    assert before.max() > 1e-3 and after.max() < 0.05 * before.max()
    # The logits' mean error shrinks too (deeper layers: an estimate, not exact): measured 13x.
    logits_error = [
        np.abs((m.predict(photos, verbose=0) - model.predict(photos, verbose=0)).mean(axis=0)).mean()
        for m in (rounded, corrected)
    ]
    assert logits_error[1] < 0.3 * logits_error[0]


def test_float_ops_keep_the_classifier_in_float(chain):
    model, photos = chain
    representative = lambda: ([p[None]] for p in photos)  # noqa: E731
    content = tflite.convert(model, "int8", representative, float_ops=("FULLY_CONNECTED",))
    found = tflite.interpreter(content)
    details = {d["index"]: d for d in found.get_tensor_details()}
    ops = {op["op_name"]: op for op in tflite.operators(found)}
    assert details[int(ops["FULLY_CONNECTED"]["outputs"][0])]["dtype"] == np.float32
    assert details[int(ops["DEPTHWISE_CONV_2D"]["outputs"][0])]["dtype"] == np.int8  # the rest stays INT8
    assert found.get_output_details()[0]["dtype"] == np.float32
    with pytest.raises(WorkbookError, match="int8"):
        tflite.convert(model, "dynamic", float_ops=("FULLY_CONNECTED",))


def test_simulated_int8_rounds_kernels_and_relu6_outputs_only(chain):
    import keras

    model, photos = chain
    before = [w.copy() for w in model.get_weights()]
    simulated, layers = quantization.simulated_int8(model)
    for layer in quantization.conv_layers(model):
        kernel, bias = layer.get_weights()
        twin_kernel, twin_bias = layers[layer.name].get_weights()
        np.testing.assert_array_equal(
            twin_kernel, quantization.int8_rounded(kernel, depthwise=layer.name == "depthwise")
        )
        np.testing.assert_array_equal(twin_bias, bias)
    np.testing.assert_array_equal(layers["logits"].get_weights()[0], model.get_layer("logits").get_weights()[0])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))  # original untouched
    levels = [layer for layer in simulated.layers if layer.name.endswith("_levels")]
    assert len(levels) == 2
    values = keras.Model(simulated.input, levels[0].output).predict(photos, verbose=0)
    steps = values / (6 / 255)
    assert values.min() >= 0 and values.max() <= 6 and np.allclose(steps, np.round(steps), atol=1e-3)
    assert len(np.unique(np.round(steps))) > 10  # not collapsed to a few values
