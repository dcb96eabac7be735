"""The likely wrong answers to 06's and 07's exercises fail their checks (the grader's verdicts,
judged in process on the probe's inputs, as tests/test_grader.py does for the solutions)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import answers, judge


def probe_of(notebook: str, name: str) -> judge.Probe:
    (probe,) = [p for p in judge.PROBES[notebook] if p.name == name]
    return probe


def verdicts_for(notebook: str, name: str, function, seed: int = 7) -> dict[str, bool]:
    """``check -> passed`` for a submission whose exercise function is ``function``."""
    import keras
    import tensorflow as tf

    probe = probe_of(notebook, name)
    inputs = probe.inputs(np.random.default_rng(seed))
    namespace = {"np": np, "tf": tf, "keras": keras, function.__name__: function}
    values = answers.evaluate(judge.task(probe, ""), inputs, namespace)
    return {row["name"]: row["passed"] for row in judge.verdicts(probe, inputs, values, "")}


# 06: the new head ---------------------------------------------------------------------------------
def head_factory(floor="mean", spread="variance", softmax=True, hidden=False):
    def new_head(n_classes, features, dropout=0.2):
        import keras

        features = np.asarray(features, np.float32)
        variance = features.var(axis=0)
        if floor == "mean":
            variance = np.maximum(variance, 0.01 * float(variance.mean()) + 1e-12)
        elif floor == "max":
            variance = np.maximum(variance, 0.01 * float(variance.max()) + 1e-12)
        spread_value = np.sqrt(variance) if spread == "std" else variance
        inputs = keras.Input((features.shape[1],))
        x = keras.layers.Normalization(mean=features.mean(axis=0), variance=spread_value)(inputs)
        x = keras.layers.Dropout(dropout)(x)
        if hidden:
            x = keras.layers.Dense(16, activation="relu")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax" if softmax else None)(x)
        return keras.Model(inputs, outputs)

    return new_head


@pytest.mark.parametrize(
    "wrong,failing",
    [
        # No variance floor: a feature that is constant in training (a dead channel) is divided by ~0.
        ({"floor": None}, {"head_standardises"}),
        ({"floor": "max"}, {"head_standardises"}),  # the floor from the largest variance, not the mean
        ({"spread": "std"}, {"head_standardises"}),  # the standard deviation passed as the variance
        ({"softmax": False}, {"head_shape", "head_standardises"}),  # logits, not probabilities
        ({"hidden": True}, {"head_shape", "head_standardises"}),  # an extra hidden layer
    ],
    ids=["no-floor", "max-floor", "std-as-variance", "no-softmax", "hidden-layer"],
)
def test_06_head_wrong_answers_fail(wrong, failing):
    assert all(verdicts_for("06_flowers_transfer.ipynb", "head", head_factory()).values())
    passed = verdicts_for("06_flowers_transfer.ipynb", "head", head_factory(**wrong))
    assert {name for name, ok in passed.items() if not ok} == failing


# 06: which kernels train --------------------------------------------------------------------------
def unfreeze_factory(mistake=""):
    def unfreeze_top_blocks(base, first_block):
        import keras

        from helpers.transfer import block_of

        if mistake != "base frozen":
            base.trainable = True
        if mistake == "count from the end":  # 6 layers per block, but strided blocks have a conv_pad layer too
            top = {layer.name for layer in base.layers[-6 * (14 - first_block) :]}
        for layer in base.layers:
            block = block_of(layer.name)
            if mistake == "count from the end":
                chosen = layer.name in top
            elif mistake == "off by one":
                chosen = block is not None and block > first_block
            else:
                chosen = block is not None and block >= first_block
            batchnorm = isinstance(layer, keras.layers.BatchNormalization)
            layer.trainable = chosen and (mistake == "batchnorm trains" or not batchnorm)

    return unfreeze_top_blocks


@pytest.mark.parametrize("mistake", ["base frozen", "batchnorm trains", "count from the end", "off by one"])
def test_06_finetune_wrong_answers_fail(mistake):
    assert all(verdicts_for("06_flowers_transfer.ipynb", "finetune", unfreeze_factory()).values())
    passed = verdicts_for("06_flowers_transfer.ipynb", "finetune", unfreeze_factory(mistake))
    assert not all(passed.values()), mistake


# 07: an activation's scale and zero point ---------------------------------------------------------
def qparams_factory(mistake=""):
    def activation_qparams(low, high):
        if mistake != "no zero in range":
            low, high = min(low, 0.0), max(high, 0.0)
        scale = (high - low) / (256 if mistake == "256 levels" else 255)
        if mistake == "symmetric":
            scale = max(abs(low), abs(high)) / 127
            return scale, 0
        if mistake == "uint8 zero point":
            return scale, int(round(-low / scale))
        return scale, int(np.clip(round(-128 - low / scale), -128, 127))

    return activation_qparams


@pytest.mark.parametrize(
    "mistake,failing",
    [
        ("256 levels", {"activation_qparams", "activation_qparams_zero"}),
        ("symmetric", {"activation_qparams", "activation_qparams_zero"}),  # the weights' scheme
        ("uint8 zero point", {"activation_qparams", "activation_qparams_zero"}),
        ("no zero in range", {"activation_qparams_zero"}),  # right whenever the range holds 0 already
    ],
)
def test_07_activation_qparams_wrong_answers_fail(mistake, failing):
    assert all(verdicts_for("07_tflite_int8.ipynb", "activation_qparams", qparams_factory()).values())
    passed = verdicts_for("07_tflite_int8.ipynb", "activation_qparams", qparams_factory(mistake))
    assert {name for name, ok in passed.items() if not ok} == failing


# 07: the converter call ---------------------------------------------------------------------------
def converter_factory(mistake=""):
    def convert_int8(saved_model_dir, photos):
        import tensorflow as tf

        def representative():
            for photo in photos:
                pixels = photo[None].astype(np.float32)
                yield [pixels / 127.5 - 1 if mistake == "scaled photos" else pixels]

        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mistake != "float io":
            io = tf.uint8 if mistake == "uint8 io" else tf.int8
            converter.inference_input_type = io
            converter.inference_output_type = io
        return converter.convert()

    return convert_int8


@pytest.mark.parametrize(
    "mistake,failing",
    [
        ("float io", {"converter_int8_io", "converter_identical"}),  # inference types left at float32
        ("uint8 io", {"converter_int8_io", "converter_identical"}),
        ("scaled photos", {"converter_int8_io", "converter_identical"}),  # calibrated on [-1, 1], not on pixels
    ],
)
def test_07_converter_wrong_answers_fail(mistake, failing):
    assert all(verdicts_for("07_tflite_int8.ipynb", "converter", converter_factory()).values())
    passed = verdicts_for("07_tflite_int8.ipynb", "converter", converter_factory(mistake))
    assert {name for name, ok in passed.items() if not ok} == failing
