"""Weight imprinting (Qi, Brown, Lowe, CVPR 2018): plumbing and reference code for notebook 09 and
``python -m helpers imprint``.

A new class's weight is the L2-normalised mean of its photos' L2-normalised embeddings
(:func:`imprint_weights`, the reference the notebook's exercise is checked against). Two models
are built from imprinted weights:

* :func:`cosine_model`: photo -> MobileNet features -> ``tf.math.l2_normalize(axis=-1)`` ->
  a dense layer whose kernel is L2-normalised per class inside the graph (zero bias) -> times a
  scale ``s`` -> softmax. At TFLite conversion the normalisation of the constant kernel folds into
  constants (what Coral's ``freeze_graph`` + ``transform_graph fold_constants`` did) and the
  embedding's becomes one ``L2_NORMALIZATION`` op.
* :func:`keep_imagenet_model`: the stock ImageNet classifier's 1000 logits unchanged, plus one
  logit per new class ``a * w_new . (f - mu)``: embeddings centred on an ImageNet mean embedding
  ``mu`` before imprinting, rows scaled to the mean norm ``a`` of ImageNet's rows. Notebook 09
  shows why the naive 1005-way cosine classifier calls every photo a flower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import WorkbookError

BACKBONES = [f"mobilenet_v1_0.25_{size}" for size in (128, 160, 192, 224)]
DEFAULT_BACKBONE = "mobilenet_v1_0.25_224"
DEFAULT_SCALE = 10.0  # the original's initial scale; notebook 09 chooses s on validation photos


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (float64)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def imprint_weights(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``[n_classes, d]``: each class's L2-normalised mean of its L2-normalised embeddings."""
    labels = np.asarray(labels)
    missing = [c for c in range(n_classes) if not np.any(labels == c)]
    if missing:
        raise WorkbookError(f"no embedding for class(es) {missing}: every class needs at least one photo")
    e = l2_normalize(embeddings)
    return l2_normalize(np.stack([e[labels == c].mean(axis=0) for c in range(n_classes)]))


def check_backbone(name: str) -> tuple[str, int]:
    """``(alpha, size)`` of a backbone imprinting supports, or one line listing them."""
    from .models import parse_model_name

    if name not in BACKBONES:
        raise WorkbookError(f"imprinting supports the backbones {', '.join(BACKBONES)}; not {name!r}")
    return parse_model_name(name)


def imagenet_classifier(name: str = DEFAULT_BACKBONE) -> tuple[np.ndarray, np.ndarray]:
    """``(W [1000, d], b [1000])``: the stock ImageNet classifier on the pooled features."""
    from .models import build_mobilenet_v1

    alpha, size = check_backbone(name)
    kernel, bias = build_mobilenet_v1(alpha, size).get_layer("conv_preds").get_weights()
    return kernel.reshape(kernel.shape[-2], kernel.shape[-1]).T.astype(np.float64), bias.astype(np.float64)


def l2_normalize_layer():
    """The Keras layer class ``L2Normalize`` (built on first use: importing this module needs no TensorFlow)."""
    import keras
    import tensorflow as tf

    class L2Normalize(keras.layers.Layer):
        """``tf.math.l2_normalize`` with an explicit axis: one TFLite ``L2_NORMALIZATION`` op
        (without the axis TFLite gives wrong results: tensorflow/tensorflow#118181)."""

        def call(self, x):
            return tf.math.l2_normalize(x, axis=-1)

    return L2Normalize


def cosine_classifier_layer():
    """The Keras layer class ``CosineClassifier(weights, scale)``: imprinted ``weights`` ``[classes, d]``
    as a trainable kernel, normalised per class in the graph, and a trainable scale."""
    import keras
    import tensorflow as tf

    class CosineClassifier(keras.layers.Layer):
        """``s * e . normalize(w_c)`` for an L2-normalised embedding ``e``; kernel normalised per
        class in the graph, zero bias, trainable scale ``s``."""

        def __init__(self, weights: np.ndarray, scale: float, **kwargs):
            super().__init__(**kwargs)
            self.kernel = self.add_weight(
                shape=(weights.shape[1], weights.shape[0]), initializer="zeros", name="kernel"
            )
            self.kernel.assign(np.asarray(weights, np.float32).T)
            self.scale = self.add_weight(shape=(), initializer="zeros", name="scale")
            self.scale.assign(scale)

        def call(self, e):
            return self.scale * tf.matmul(e, tf.math.l2_normalize(self.kernel, axis=0))

    return CosineClassifier


def cosine_model(extractor, weights: np.ndarray, scale: float = DEFAULT_SCALE, *, name: str = "imprinted"):
    """Photo ``[0, 255]`` -> ``extractor`` -> L2-normalised embedding -> cosine classifier with
    the imprinted ``weights`` (``[classes, d]``) and scale ``s`` -> softmax."""
    import keras

    inputs = keras.Input(extractor.input_shape[1:], name="pixels")
    e = l2_normalize_layer()(name="l2_normalize")(extractor(inputs))
    logits = cosine_classifier_layer()(weights, scale, name="cosine_classifier")(e)
    return keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits), name=name)


def keep_imagenet_rows(
    imagenet_w: np.ndarray, imagenet_b: np.ndarray, new_weights: np.ndarray, mean_embedding: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of the 1000 + new-class classifier: ImageNet's rows unchanged, each new row
    ``a * w_new`` with ``a`` the mean norm of ImageNet's rows and bias ``-a * w_new . mu``, so its
    logit is ``a * w_new . (f - mu)``."""
    a = float(np.linalg.norm(imagenet_w, axis=1).mean())
    rows = a * np.asarray(new_weights, np.float64)
    return np.concatenate([imagenet_w, rows]), np.concatenate([imagenet_b, -rows @ mean_embedding])


def keep_imagenet_model(extractor, w: np.ndarray, b: np.ndarray, *, name: str = "imprinted_imagenet"):
    """Photo -> ``extractor`` -> ``f @ w.T + b`` -> softmax (``w``, ``b`` from :func:`keep_imagenet_rows`)."""
    import keras

    inputs = keras.Input(extractor.input_shape[1:], name="pixels")
    dense = keras.layers.Dense(w.shape[0], name="classifier")
    logits = dense(extractor(inputs))
    dense.set_weights([np.asarray(w, np.float32).T, np.asarray(b, np.float32)])
    return keras.Model(inputs, keras.layers.Softmax(name="probabilities")(logits), name=name)


def write_labels(path: str | Path, class_names: list[str]) -> Path:
    """One class name per line, in output order (what ``python -m helpers tflite --labels-file`` reads)."""
    path = Path(path)
    path.write_text("".join(f"{n}\n" for n in class_names))
    return path
