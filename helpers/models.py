"""Keras 3 MobileNet V1 with Google's TF-slim ImageNet weights (classify with :func:`helpers.zoo.load`).

``keras.applications.MobileNet(alpha=0.25)`` has exactly the slim architecture; only the names
differ. :data:`SLIM_TO_KERAS` maps them, and :func:`drop_background` is the one place where the
slim classifier's 1001 outputs become Keras's 1000.
"""

from __future__ import annotations

import re

import numpy as np

from . import slim
from .errors import WorkbookError

DEFAULT_MODEL = "mobilenet_v1_0.25_224"
_NAME = re.compile(r"^mobilenet_v1_(0\.25|0\.5|0\.75|1\.0)_(128|160|192|224)$")
BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")  # Keras's BatchNormalization weight order


def v1_names() -> list[str]:
    """Every ``mobilenet_v1_<alpha>_<size>`` this module can build (alpha 0.25 offline, others online)."""
    return [f"mobilenet_v1_{a}_{s}" for a in slim.ALPHAS for s in slim.SIZES]


def parse_model_name(name: str) -> tuple[str, int]:
    """``"mobilenet_v1_0.25_224"`` -> ``("0.25", 224)``; unknown names list the known ones."""
    match = _NAME.match(name)
    if not match:
        raise WorkbookError(f"unknown model {name!r}; MobileNet V1 names look like {DEFAULT_MODEL}")
    return match.group(1), int(match.group(2))


def slim_to_keras() -> dict[str, tuple[str, int]]:
    """``slim variable name -> (keras layer name, weight index)`` for all 14 conv blocks + logits."""
    table: dict[str, tuple[str, int]] = {}

    def block(slim_scope: str, weight: str, keras_layer: str) -> None:
        table[f"MobilenetV1/{slim_scope}/{weight}"] = (keras_layer, 0)
        for i, param in enumerate(BN_PARAMS):
            table[f"MobilenetV1/{slim_scope}/BatchNorm/{param}"] = (f"{keras_layer}_bn", i)

    block("Conv2d_0", "weights", "conv1")
    for i in range(1, 14):
        block(f"Conv2d_{i}_depthwise", "depthwise_weights", f"conv_dw_{i}")
        block(f"Conv2d_{i}_pointwise", "weights", f"conv_pw_{i}")
    table["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] = ("conv_preds", 0)
    table["MobilenetV1/Logits/Conv2d_1c_1x1/biases"] = ("conv_preds", 1)
    return table


SLIM_TO_KERAS = slim_to_keras()


def drop_background(slim_name: str, value: np.ndarray) -> np.ndarray:
    """Remove the slim classifier's background class (output 0); other weights pass unchanged.

    This is the only place the 1001 -> 1000 conversion happens.
    """
    if slim_name.startswith("MobilenetV1/Logits/"):
        return value[..., 1:]
    return value


def build_mobilenet_v1(alpha: str = "0.25", size: int = 224, *, include_top: bool = True):
    """``keras.applications.MobileNet`` with the slim frozen graph's weights imported.

    Returns a model whose output is the softmax over the 1000 ImageNet classes (no background).
    ``include_top=False`` gives the feature extractor (last conv block, no pooling).
    """
    import keras

    model = keras.applications.MobileNet(
        input_shape=(size, size, 3),
        alpha=float(alpha),
        include_top=include_top,
        weights=None,
        classes=1000,
        name=f"mobilenet_v1_{alpha}_{size}" + ("" if include_top else "_no_top"),
    )
    pending: dict[str, list[np.ndarray | None]] = {
        layer.name: [None] * len(layer.weights) for layer in model.layers if layer.weights
    }
    for slim_name, value in slim.slim_weights(alpha, size).items():
        layer_name, index = SLIM_TO_KERAS[slim_name]
        if layer_name in pending:
            pending[layer_name][index] = drop_background(slim_name, value)
    for layer_name, values in pending.items():
        missing = [w.path for w, v in zip(model.get_layer(layer_name).weights, values, strict=True) if v is None]
        if missing:
            raise WorkbookError(f"the frozen graph has no weights for {missing}")
        model.get_layer(layer_name).set_weights(values)
    return model


def dequantized_v1(tflite_path, alpha: str, size: int):
    """``keras.applications.MobileNet`` (1001 outputs, slim's background first) carrying the weights
    of one of Google's uint8 V1 ``.tflite`` files, dequantized to float32.

    The uint8 file has BatchNorm folded into its convolutions (kernel and bias); the Keras network
    keeps its BatchNorm layers, each set to the identity plus the folded bias
    (``gamma = 1``, ``beta = bias``, ``mean = 0``, ``variance = 1 - epsilon``).
    """
    import keras

    from .tflite import conv_weights

    weights = conv_weights(tflite_path)
    model = keras.applications.MobileNet(
        input_shape=(size, size, 3),
        alpha=float(alpha),
        weights=None,
        classes=1001,
        name=f"mobilenet_v1_{alpha}_{size}_dequant",
    )
    names = ["conv1"] + [f"conv_{kind}_{i}" for i in range(1, 14) for kind in ("dw", "pw")] + ["conv_preds"]
    if len(weights) != len(names):
        raise WorkbookError(f"{tflite_path} has {len(weights)} convolutions; MobileNet V1 has {len(names)}")
    for name, (_, kernel, bias) in zip(names, weights, strict=True):
        layer = model.get_layer(name)
        expected = tuple(int(v) for v in layer.weights[0].shape)
        if kernel.shape != expected:
            raise WorkbookError(
                f"{name}: the file's kernel is {kernel.shape}, MobileNet {alpha}/{size} wants {expected}"
            )
        if name == "conv_preds":
            layer.set_weights([kernel, bias])
            continue
        layer.set_weights([kernel])
        batchnorm = model.get_layer(f"{name}_bn")
        ones = np.ones_like(bias)
        batchnorm.set_weights([ones, bias, np.zeros_like(bias), ones * (1.0 - batchnorm.epsilon)])
    return model


def logits_model(model, *, dense: bool = False):
    """A model sharing ``model``'s layers that outputs the pre-softmax logits.

    ``dense=True`` ends it instead in global average pooling and a ``Dense`` layer holding the
    classifier's 1x1-conv weights as a matrix (same numbers): no Reshape with a dynamic batch size,
    so its TFLite conversion has no SHAPE/STRIDED_SLICE/PACK ops and ends in one FULLY_CONNECTED.
    """
    import keras

    if not dense:
        return keras.Model(model.input, model.get_layer("predictions").input, name=model.name + "_logits")
    features = model.get_layer("conv_pw_13_relu").output
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    kernel, bias = model.get_layer("conv_preds").get_weights()
    classifier = keras.layers.Dense(kernel.shape[-1], name="logits")
    logits = classifier(pooled)
    classifier.set_weights([kernel[0, 0], bias])
    return keras.Model(model.input, logits, name=model.name + "_logits")


def load_model(name: str = DEFAULT_MODEL):
    """Build a slim-imported MobileNet V1 by name, e.g. ``mobilenet_v1_0.25_224``."""
    alpha, size = parse_model_name(name)
    return build_mobilenet_v1(alpha, size)


def subset_model(model, indices: list[int]):
    """A model with only ``len(indices)`` outputs: ``model``'s features and the classifier's
    columns ``indices`` (a sliced 1x1 conv), followed by softmax over just those classes."""
    import keras

    classifier = model.get_layer("conv_preds")
    kernel, bias = classifier.get_weights()
    features = model.get_layer("dropout").output
    sliced = keras.layers.Conv2D(len(indices), 1, name="conv_preds_subset")
    x = sliced(features)
    sliced.set_weights([kernel[..., indices], bias[indices]])
    x = keras.layers.Reshape((len(indices),), name="logits_subset")(x)
    x = keras.layers.Activation("softmax", name="predictions_subset")(x)
    return keras.Model(model.input, x, name=model.name + f"_subset{len(indices)}")
