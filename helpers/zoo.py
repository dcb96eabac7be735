"""The registry of classifiers: a model name or a file in, a :class:`~helpers.classifier.Classifier` out.

Every way the workbook classifies a photo (``predict``, the notebooks, the tests) starts here:

* ``mobilenet_v1_<alpha>_<size>``: Google's TF-slim float weights imported into
  ``keras.applications.MobileNet`` (:mod:`helpers.models`; alpha 0.25 is in the data pack);
* ``mobilenet_v2_1.0_224_tfnn``: MobileNet V2 written with ``tf.nn`` ops, weights dequantized from
  Google's uint8 file (:mod:`helpers.mobilenet_v2`, notebook 08);
* the names of :data:`QUANT_FILES`: Google's uint8 ``.tflite`` models;
* a ``.keras`` file saved by :func:`helpers.transfer.save_classifier` (class names beside it);
* any ``.tflite`` image classifier (:class:`helpers.tflite.TFLiteClassifier`).
"""

from __future__ import annotations

from pathlib import Path

from . import data, mobilenet_v2, models, transfer
from .classifier import Classifier, KerasClassifier
from .errors import WorkbookError
from .labels import imagenet_classes
from .tflite import TFLiteClassifier

QUANT_FILES = {
    "mobilenet_v2_1.0_224_quant": "mobilenet_v2_1.0_224_quant.tflite",
    "mobilenet_v1_0.25_128_quant": "mobilenet_v1_0.25_128_quant.tflite",
    "mobilenet_v1_0.5_160_quant": "mobilenet_v1_0.5_160_quant.tflite",
    "mobilenet_v1_0.75_192_quant": "mobilenet_v1_0.75_192_quant.tflite",
}
TFNN_V2 = mobilenet_v2.NAME
MODEL_SUFFIXES = (".keras", ".tflite")


def known_models() -> list[str]:
    """Every registered model name."""
    return models.v1_names() + [TFNN_V2] + list(QUANT_FILES)


def check(model: str) -> None:
    """Fail fast (before any slow work) on a name that is neither registered nor a model file."""
    if model in known_models() or Path(model).suffix in MODEL_SUFFIXES:
        return
    raise WorkbookError(f"unknown model {model!r}; known models: {', '.join(known_models())}, or a .keras/.tflite file")


def tflite_file(model: str | Path) -> Path:
    """A ``.tflite`` path, or the file of a registered uint8 model such as ``mobilenet_v2_1.0_224_quant``."""
    if str(model) in QUANT_FILES:
        return data.fetch(QUANT_FILES[str(model)])
    path = Path(model)
    if not path.is_file():
        raise WorkbookError(f"TFLite model not found: {path} (give a .tflite file or one of {', '.join(QUANT_FILES)})")
    return path


def _imagenet(model, name: str, **options) -> KerasClassifier:
    classes = imagenet_classes()
    return KerasClassifier(
        model, name=name, class_names=[c.label for c in classes], wnids=[c.wnid for c in classes], **options
    )


def load(model: str | Path) -> Classifier:
    """The classifier a model name or file stands for (see the module docstring)."""
    name = str(model)
    check(name)
    if name in models.v1_names():
        return _imagenet(models.logits_model(models.load_model(name)), name, output="logits")
    if name == TFNN_V2:
        return _imagenet(mobilenet_v2.load_model(), name, output="probabilities", background=True)
    if name in QUANT_FILES or name.endswith(".tflite"):
        return TFLiteClassifier(tflite_file(name), name=name)
    keras_model, class_names = transfer.load_classifier(name)
    return KerasClassifier(
        keras_model, name=name, class_names=class_names, input_range="pixels", output="probabilities"
    )
