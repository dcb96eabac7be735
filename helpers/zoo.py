"""The registry of classifiers: a model name or a file in, a :class:`~helpers.classifier.Classifier` out.

Every way the workbook classifies a photo (``predict``, the notebooks, the tests) starts here:

* ``mobilenet_v1_<alpha>_<size>``: Google's TF-slim float weights imported into
  ``keras.applications.MobileNet`` (:mod:`helpers.models`; alpha 0.25 is in the data pack);
* ``mobilenet_v2_1.0_224_tfnn``: MobileNet V2 written with ``tf.nn`` ops, weights dequantized from
  Google's uint8 file (:mod:`helpers.mobilenet_v2`, notebook 08);
* the names of :data:`QUANT_FILES`: Google's uint8 ``.tflite`` models;
* the names of :data:`DEQUANTIZED` (``mobilenet_v1_0.5_160_dequant``, ...): those V1 files rebuilt as
  float ``keras.applications.MobileNet`` networks (:func:`helpers.models.dequantized_v1`; Keras
  backend only);
* a ``.keras`` file saved by :func:`helpers.transfer.save_classifier` (class names beside it);
* any ``.tflite`` image classifier (:class:`helpers.tflite.TFLiteClassifier`).

Backends: ``keras`` builds the Keras model of a registered name in TensorFlow (seconds, hundreds of
MB); ``litert`` runs the same network as a float32 ``.tflite`` converted on first use and kept in
the cache (``<cache>/litert/``), so later calls import no TensorFlow at all. The cached file is
keyed by the sha256 of the weights it was made from and the TensorFlow version that converted it,
written atomically, and rebuilt when it cannot be loaded.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from . import data, mobilenet_v2, models, slim, transfer
from .classifier import Classifier, KerasClassifier
from .errors import WorkbookError
from .labels import imagenet_classes
from .tflite import TFLiteClassifier, convert

QUANT_FILES = {
    "mobilenet_v2_1.0_224_quant": "mobilenet_v2_1.0_224_quant.tflite",
    "mobilenet_v1_0.25_128_quant": "mobilenet_v1_0.25_128_quant.tflite",
    "mobilenet_v1_0.5_160_quant": "mobilenet_v1_0.5_160_quant.tflite",
    "mobilenet_v1_0.75_192_quant": "mobilenet_v1_0.75_192_quant.tflite",
}
TFNN_V2 = mobilenet_v2.NAME
# Google's uint8 V1 files rebuilt as float Keras networks (weights dequantized, BatchNorm folded)
DEQUANTIZED = {
    f"{name.removesuffix('_quant')}_dequant": name for name in QUANT_FILES if name.startswith("mobilenet_v1")
}
MODEL_SUFFIXES = (".keras", ".tflite")
BACKENDS = ("litert", "keras")


def known_models() -> list[str]:
    """Every registered model name."""
    return models.v1_names() + [TFNN_V2] + list(QUANT_FILES) + list(DEQUANTIZED)


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


def load(model: str | Path, backend: str = "keras") -> Classifier:
    """The classifier a model name or file stands for (see the module docstring).

    ``backend="litert"`` runs registered Keras-built models (the V1 imports, the ``tf.nn`` V2) from
    their cached float32 ``.tflite`` conversion; ``.keras`` files always run in Keras.
    """
    name = str(model)
    check(name)
    if backend not in BACKENDS:
        raise WorkbookError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "litert" and (name in models.v1_names() or name == TFNN_V2):
        return _cached_litert(name)
    if name in models.v1_names():
        return _imagenet(_keras_network(name), name, output="logits")
    if name == TFNN_V2:
        return _imagenet(_keras_network(name), name, output="probabilities", background=True)
    if name in DEQUANTIZED:
        alpha, size = models.parse_model_name(name.removesuffix("_dequant"))
        network = models.dequantized_v1(tflite_file(DEQUANTIZED[name]), alpha, size)
        return _imagenet(models.logits_model(network), name, output="logits", background=True)
    if name in QUANT_FILES or name.endswith(".tflite"):
        return TFLiteClassifier(tflite_file(name), name=name)
    keras_model, class_names = transfer.load_classifier(name)
    return KerasClassifier(
        keras_model, name=name, class_names=class_names, input_range="pixels", output="probabilities"
    )


def _source_sha256(name: str) -> str:
    """sha256 of the file a registered Keras-built model takes its weights from (from the registry
    when known, so no file is read; else from the downloaded file)."""
    if name == TFNN_V2:
        entry = data.REGISTRY[QUANT_FILES[mobilenet_v2.QUANT_NAME]]
    else:
        entry = data.REGISTRY[slim.archive_name(*models.parse_model_name(name))]
    return entry.sha256 or data.sha256_of(data.fetch(entry.name))


def litert_path(name: str) -> Path:
    """Where the float32 LiteRT conversion of registered model ``name`` is cached."""
    key = f"{_source_sha256(name)[:16]}-tf{metadata.version('tensorflow')}"
    return data.cache_dir() / "litert" / f"{name}-{key}.tflite"


def _keras_network(name: str):
    """The Keras network of a registered Keras-built model: the V1 import up to its logits, or the
    ``tf.nn`` V2 (1001 softmax outputs)."""
    if name == TFNN_V2:
        return mobilenet_v2.load_model()
    return models.logits_model(models.load_model(name))


def _cached_litert(name: str) -> TFLiteClassifier:
    path = litert_path(name)
    if path.is_file():
        try:
            return TFLiteClassifier(path, name=name)
        except WorkbookError:
            path.unlink()  # a corrupt or truncated cache file: rebuild it below
    # cached here, by the source file's hash (not in tflite's conversion cache); imports TensorFlow: first use only
    data.write_atomic(path, convert(_keras_network(name), "float32", cache=False))
    return TFLiteClassifier(path, name=name)
