"""Keras 3 MobileNet V1 with Google's TF-slim ImageNet weights, and classifying photos with it.

``keras.applications.MobileNet(alpha=0.25)`` has exactly the slim architecture; only the names
differ. :data:`SLIM_TO_KERAS` maps them, and :func:`drop_background` is the one place where the
slim classifier's 1001 outputs become Keras's 1000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import slim
from .errors import WorkbookError

DEFAULT_MODEL = "mobilenet_v1_0.25_224"
_NAME = re.compile(r"^mobilenet_v1_(0\.25|0\.5|0\.75|1\.0)_(128|160|192|224)$")
BN_PARAMS = ("gamma", "beta", "moving_mean", "moving_variance")  # Keras's BatchNormalization weight order


V2_MODELS = ("mobilenet_v2_1.0_224_tfnn", "mobilenet_v2_1.0_224_quant")  # notebook 08 / Google's uint8 file


def known_models() -> list[str]:
    """Every ImageNet model name ``predict`` accepts (V1 names also work with :func:`load_model`)."""
    return [f"mobilenet_v1_{a}_{s}" for a in slim.ALPHAS for s in slim.SIZES] + list(V2_MODELS)


def v2_logits(name: str, photos: list[np.ndarray]) -> np.ndarray:
    """``[n, 1000]`` scores for RGB ``uint8`` photos from a MobileNet V2 model of :data:`V2_MODELS`.

    Both V2 models output 1001 softmax probabilities with slim's background first; the background
    is dropped and the log taken: rank them with ``top_k(..., log_probabilities=True)`` to report
    the model's own probabilities (the uint8 model's are multiples of 1/256 and do not sum to 1,
    so renormalising them would inflate every value).
    """
    from . import images

    if name == "mobilenet_v2_1.0_224_tfnn":
        from .mobilenet_v2 import load_model as load_v2

        probabilities = load_v2().predict(images.preprocess(photos, 224), verbose=0)
    elif name == "mobilenet_v2_1.0_224_quant":
        from .tflite import TFLiteClassifier

        runner = TFLiteClassifier(name)
        probabilities = np.stack([runner.invoke(photo) for photo in photos])
    else:
        raise WorkbookError(f"unknown MobileNet V2 model {name!r}; known: {', '.join(V2_MODELS)}")
    return np.log(np.maximum(probabilities[:, 1:], 1e-12))


def parse_model_name(name: str) -> tuple[str, int]:
    """``"mobilenet_v1_0.25_224"`` -> ``("0.25", 224)``; unknown names list the known ones."""
    match = _NAME.match(name)
    if not match:
        raise WorkbookError(f"unknown model {name!r}; known models: {', '.join(known_models())}")
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


def logits_model(model):
    """A model sharing ``model``'s layers that outputs the pre-softmax logits."""
    import keras

    return keras.Model(model.input, model.get_layer("predictions").input, name=model.name + "_logits")


def load_model(name: str = DEFAULT_MODEL):
    """Build an ImageNet model by registered name (see :func:`known_models`)."""
    alpha, size = parse_model_name(name)
    return build_mobilenet_v1(alpha, size)


@dataclass(frozen=True)
class Prediction:
    """One ranked class for one image."""

    rank: int
    label: str
    wnid: str
    index: int
    probability: float
    subset_probability: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready form; ``subset_probability`` only when a label subset was used."""
        out = {
            "rank": self.rank,
            "label": self.label,
            "wnid": self.wnid,
            "index": self.index,
            "probability": self.probability,
        }
        if self.subset_probability is not None:
            out["subset_probability"] = self.subset_probability
        return out


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def top_k(
    logits: np.ndarray, k: int = 5, subset: list[int] | None = None, *, log_probabilities: bool = False
) -> list[Prediction]:
    """Rank the classes of one image's 1000 logits.

    Without ``subset``: the top ``k`` of all classes. With ``subset`` (class indices): only those
    classes are ranked, each with its 1000-way ``probability`` and its ``subset_probability``
    (softmax over the subset's logits only, i.e. renormalised over the subset).
    ``log_probabilities=True``: the values are a model's log-probabilities, reported as they are
    (not renormalised over the 1000 classes).
    """
    from .labels import imagenet_classes

    classes = imagenet_classes()
    logits = np.asarray(logits, np.float64).reshape(-1)
    if logits.shape[0] != len(classes):
        raise WorkbookError(f"expected {len(classes)} logits, got {logits.shape[0]}")
    probabilities = np.exp(logits) if log_probabilities else softmax(logits)
    candidates = list(range(len(classes))) if subset is None else list(subset)
    if k < 1:
        raise WorkbookError(f"k must be at least 1, got {k}")
    if k > len(candidates):
        raise WorkbookError(f"k={k} is larger than the {len(candidates)} labels to rank; use k <= {len(candidates)}")
    sub = softmax(logits[candidates]) if subset is not None else None
    order = np.argsort(-logits[candidates], kind="stable")[:k]
    return [
        Prediction(
            rank=rank + 1,
            label=classes[candidates[j]].label,
            wnid=classes[candidates[j]].wnid,
            index=candidates[j],
            probability=float(probabilities[candidates[j]]),
            subset_probability=None if sub is None else float(sub[j]),
        )
        for rank, j in enumerate(order)
    ]


def ranked_rows(
    probabilities: np.ndarray, class_names: list[str], k: int, wnids: list[str | None] | None = None
) -> list[dict]:
    """The top ``k`` of one image's class probabilities as ``predict``'s JSON rows, for models with
    their own class names (a saved flower classifier, any TFLite classifier)."""
    if k < 1 or k > len(class_names):
        raise WorkbookError(f"top-k {k} must be between 1 and the model's {len(class_names)} classes")
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [
        {
            "rank": r + 1,
            "label": class_names[i],
            "wnid": None if wnids is None else wnids[i],
            "index": int(i),
            "probability": float(probabilities[i]),
        }
        for r, i in enumerate(order)
    ]


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
