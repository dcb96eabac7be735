"""Transfer learning with the workbook's MobileNet: extractor, head, full classifier, saving.

Every model here takes photos as ``uint8``-valued floats in [0, 255]; MobileNet's scaling to
[-1, 1] is the first layer (``Rescaling``), so it is done once, inside the model, and a saved
classifier needs nothing but resized pixels.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import WorkbookError
from .labels import labels_path, read_label_file
from .models import build_mobilenet_v1, dequantized_v1

BASE_NAME = "mobilenet_base"


def feature_extractor(alpha: str = "0.25", size: int = 224, *, taps: tuple[str, ...] = ()):
    """Photo ``[0, 255]`` -> pooled MobileNet features, ImageNet weights.

    Without ``taps``: global average pooling of the last block (``1024 * alpha`` features, the
    classic bottleneck). With ``taps`` (layer names of the base, e.g. ``conv_pw_11_relu``): the
    average *and* max pooling of each tapped layer and of the last block, concatenated; earlier
    layers keep more of the texture and colour detail that tells flowers apart.
    """
    import keras

    base = build_mobilenet_v1(alpha, size, include_top=False)
    if taps:
        outputs = [base.get_layer(name).output for name in taps] + [base.output]
        base = keras.Model(base.input, outputs, name=base.name)
    base.name = BASE_NAME
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(inputs)
    x = base(x, training=False)  # BatchNorm stays in inference mode even when fine-tuning
    if taps:
        pooled = []
        for i, tensor in enumerate(x):
            pooled.append(keras.layers.GlobalAveragePooling2D(name=f"avg_{i}")(tensor))
            pooled.append(keras.layers.GlobalMaxPooling2D(name=f"max_{i}")(tensor))
        x = keras.layers.Concatenate(name="pool")(pooled)
        name = f"mobilenet_v1_{alpha}_{size}_features_" + "_".join(t.split("_")[2] for t in taps) + "_13_avgmax"
    else:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        name = f"mobilenet_v1_{alpha}_{size}_features"
    return keras.Model(inputs, x, name=name)


# Backbones for the flower head (notebook 06): name -> the data-pack file whose weights it carries
# (None: the TF-slim float checkpoint; the .tflite files are Google's uint8 models, dequantized).
BACKBONES = {
    "mobilenet_v1_0.25": None,
    "mobilenet_v1_0.5": "mobilenet_v1_0.5_160_quant.tflite",
    "mobilenet_v1_0.75": "mobilenet_v1_0.75_192_quant.tflite",
    "mobilenet_v2_1.0": "mobilenet_v2_1.0_224_quant.tflite",  # into 08's tf.nn network
}
SAVEABLE_BACKBONES = ("mobilenet_v1_0.25", "mobilenet_v1_0.5", "mobilenet_v1_0.75")  # plain Keras layers only


def backbone_extractor(name: str, size: int = 224):
    """Photo ``[0, 255]`` -> the average-pooled last features of backbone ``name`` (:data:`BACKBONES`).

    The wider V1 networks carry Google's quantization-aware-trained weights, dequantized to float
    (:func:`helpers.models.dequantized_v1`); a convolutional network runs at any input size, so
    they run at ``size`` although their files were published for 160 and 192 pixels. The V2
    network is 08's ``tf.nn`` one (224 only); its custom layers cannot be saved in a safe-mode
    ``.keras`` file, so it is for comparison only (:data:`SAVEABLE_BACKBONES`).
    """
    import keras

    from . import data

    if name not in BACKBONES:
        raise WorkbookError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if name == "mobilenet_v1_0.25":
        return feature_extractor("0.25", size)
    if name == "mobilenet_v2_1.0":
        from . import mobilenet_v2

        network, last = mobilenet_v2.load_model(), "conv_head"
    else:
        alpha = name.rsplit("_", 1)[1]
        network = dequantized_v1(data.fetch(BACKBONES[name]), alpha, size)
        last = "conv_pw_13_relu"
    base = keras.Model(network.input, network.get_layer(last).output, name=BASE_NAME)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(base(x, training=False))
    return keras.Model(inputs, x, name=f"{name}_{size}_features")


def head(n_classes: int, features: np.ndarray, *, dropout: float = 0.2, name: str = "head", softmax: bool = True):
    """Standardise (mean/variance of the training ``features``, frozen into the layer), dropout,
    Dense softmax: the new classifier, trained on features or cached bottlenecks
    (``softmax=False``: the Dense layer outputs logits).

    Each feature's variance is floored at 1 % of the mean variance: MobileNet 0.25 has dead
    channels (variance 0 on every photo), and dividing by their ~0 spread would multiply any
    rounding, e.g. INT8 quantization, by a thousand (measured: INT8 flower accuracy 20 % without
    the floor, 80 % with it).
    """
    import keras

    features = np.asarray(features, np.float32)
    variance = features.var(0)
    variance = np.maximum(variance, 0.01 * float(variance.mean()) + 1e-12)
    inputs = keras.Input((features.shape[1],), name="features")
    x = keras.layers.Normalization(mean=features.mean(0), variance=variance, name="standardise")(inputs)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(n_classes, activation="softmax" if softmax else None, name="head_dense")(x)
    return keras.Model(inputs, x, name=name)


def head_ensemble(n_classes: int, features: np.ndarray, *, k: int = 4, dropout: float = 0.5):
    """``k`` heads (:func:`head`, logits out), each from its own random start, as ``(trainer, ensemble)``.

    ``trainer`` has the ``k`` heads' logits as its outputs: compile it with a from-logits loss per
    output and fit it once with ``k`` copies of the labels (the heads train side by side, each on
    its own loss). ``ensemble``, sharing their weights, is the softmax of their mean logits: one
    head model for :func:`classifier`, ending in a softmax like :func:`head`.
    """
    import keras

    if k < 1:
        raise WorkbookError(f"an ensemble needs at least one head, not {k}")
    heads = [head(n_classes, features, dropout=dropout, name=f"head_{i}", softmax=False) for i in range(k)]
    inputs = keras.Input((np.shape(features)[1],), name="features")
    logits = [h(inputs) for h in heads]
    mean = keras.layers.Average(name="mean_logits")(logits) if k > 1 else logits[0]
    ensemble = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(mean), name="head_ensemble")
    return keras.Model(inputs, logits, name="head_ensemble_trainer"), ensemble


def classifier(extractor, head_model, *, augment=None, name: str = "flowers"):
    """``extractor`` then ``head_model`` as one model on photos; ``augment`` (a layer) runs first
    and only while training (Keras's preprocessing layers are identities at inference)."""
    import keras

    inputs = keras.Input(extractor.input_shape[1:], name="pixels")
    x = augment(inputs) if augment is not None else inputs
    return keras.Model(inputs, head_model(extractor(x)), name=name)


_BLOCK_LAYER = re.compile(r"^conv_(?:dw|pw|pad)_(\d+)(?:_bn|_relu)?$")


def block_of(layer_name: str) -> int | None:
    """The depthwise-separable block (1-13) a layer of Keras's MobileNet V1 belongs to, or ``None``
    (``conv_pad_12`` -> 12, ``conv_dw_10_bn`` -> 10, ``conv1`` -> ``None``)."""
    match = _BLOCK_LAYER.match(layer_name)
    return int(match.group(1)) if match else None


def set_trainable_blocks(extractor, first_block: int) -> list[str]:
    """Freeze the MobileNet base except blocks ``first_block``..13, chosen by layer name, not by
    count (a block is 6 layers, 7 with the ``conv_pad`` layer of a strided one). BatchNorm layers
    stay frozen. Returns the paths of the trainable weights."""
    import keras

    if not 1 <= first_block <= 13:
        raise WorkbookError(f"MobileNet V1 has blocks 1-13; cannot fine-tune from block {first_block}")
    base = extractor.get_layer(BASE_NAME)
    base.trainable = True
    for layer in base.layers:
        block = block_of(layer.name)
        top = block is not None and block >= first_block
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)
    return [w.path for w in extractor.trainable_weights]


def save_classifier(model, class_names: list[str], path: str | Path) -> tuple[Path, Path]:
    """Save ``model`` (``.keras``) and its class names, one per line in output order, beside it."""
    path = Path(path)
    if path.suffix != ".keras":
        raise WorkbookError(f"save the classifier as a .keras file, not {path.name}")
    if model.output_shape[-1] != len(class_names):
        raise WorkbookError(f"model has {model.output_shape[-1]} outputs but {len(class_names)} class names")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    names = path.with_name(f"{path.stem}_labels.txt")
    names.write_text("".join(f"{n}\n" for n in class_names))
    return path, names


def load_classifier(path: str | Path):
    """Load a saved ``.keras`` classifier and its class names (``safe_mode``: no arbitrary code)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise WorkbookError(f"model file not found: {path}")
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad file
        raise WorkbookError(f"{path} could not be loaded as a Keras model: {error}") from None
    names = read_label_file(labels_path(path))
    if model.output_shape[-1] != len(names):
        raise WorkbookError(f"{path} has {model.output_shape[-1]} outputs but {labels_path(path)} lists {len(names)}")
    return model, names


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 64) -> float:
    """Top-1 accuracy of a softmax model."""
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))
