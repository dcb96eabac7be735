"""TFLite: converting Keras models, and running any image classifier ``.tflite`` the same way.

One class, :class:`TFLiteClassifier`, runs the workbook's own conversions and Google's uint8
models alike (it is a :class:`helpers.classifier.Classifier`); everything that differs between
them is read from the file:

* **input range**: a quantized input's scale and zero point say which real values it covers
  (Google's uint8 models: ``0.0078125 * (q - 128)`` = [-1, 1]; ours: pixels 0-255). A float input
  named ``pixels`` (every workbook export) takes raw pixels; any other float input is assumed to
  want [-1, 1], i.e. ``(x - 127.5) / 127.5``, MobileNet's own scaling (tensorflow-for-poets'
  ``label_image.py`` used 128/128 instead). ``input_mean`` / ``input_std`` override both;
* **layout**: ``channel_last`` (NHWC, TFLite's own) or ``channel_first`` (NCHW) inputs;
* **outputs**: probabilities when the graph ends in a ``SOFTMAX`` op, otherwise logits (the
  softmax is then taken here, in float64, from the dequantized logits);
* **classes**: 1001 outputs = ImageNet with slim's background class first (dropped here, the
  only place for TFLite models); 1000 = ImageNet; anything else needs a labels file.

The interpreter is ``ai_edge_litert``'s (``tf.lite.Interpreter`` is deprecated). Its op list is
only reachable through a private method; :func:`operators` is the one place that calls it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from . import data, images, native_log, ranking
from .classifier import Classifier
from .errors import WorkbookError
from .labels import imagenet_classes, labels_path, read_label_file
from .paths import build_dir

MODES = ("float32", "float16", "dynamic", "int8")
DATA_FORMATS = ("channel_last", "channel_first")
SCALE_BYTES, ZERO_POINT_BYTES = 4, 8  # the flatbuffer stores scales as float32 and zero points as int64


def pixels_model(model, name: str | None = None):
    """Wrap a model that wants [-1, 1] input so that it takes raw pixels (input named ``pixels``)."""
    import keras

    size = model.input_shape[1:]
    inputs = keras.Input(size, name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_pm1")(inputs)
    return keras.Model(inputs, model(x), name=name or f"{model.name}_pixels")


def convert(
    model,
    mode: str,
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    *,
    per_channel: bool = True,
    float_ops: Sequence[str] = (),
    float_nodes: Sequence[str] = (),
    io_type: str = "int8",
    cache: bool = True,
) -> bytes:
    """Convert a Keras model to TFLite bytes.

    ``float32``: as is. ``float16``: weights stored as float16 (dequantized at load on CPU).
    ``dynamic``: weights int8, activations float (quantized on the fly). ``int8``: full integer,
    every op int8, activation ranges calibrated on ``representative`` (a callable yielding
    ``[batch_of_one]`` lists of real inputs), with ``int8`` input and output: a photo enters as
    ``pixel - 128`` (scale 1, zero point -128). ``io_type="uint8"`` makes them ``uint8``
    instead, as older tutorials do; the converter then adds a uint8 -> int8 ``QUANTIZE`` of the
    whole photo that LiteRT's XNNPACK path does not run (``make bench`` measures its cost).
    ``per_channel=False`` quantizes each weight tensor with one scale instead of one per output
    channel (smaller file, usually worse accuracy; through the converter's private switch).
    ``float_ops`` (``int8`` only, e.g. ``("FULLY_CONNECTED",)``) keeps every op of those types in
    float, with float input and output, through TensorFlow's public
    ``tf.lite.experimental.QuantizationDebugger`` (its ``denylisted_ops``). ``float_nodes`` does
    the same for single ops, named by their output tensor (its ``denylisted_nodes``; see
    :func:`layer_nodes`).

    With ``cache`` (the default) the bytes are kept in :func:`conversion_cache` under a sha256 of
    everything the converter reads: the TensorFlow version, the model's configuration (layer
    names included: they name the file's tensors), every weight, the options and every array of
    the representative dataset. The same conversion again (a re-run, a grading run) reads the
    file instead of calibrating anew; a model the key cannot describe (no ``to_json``) is
    converted every time.
    """
    if mode not in MODES:
        raise WorkbookError(f"unknown conversion mode {mode!r}; choose one of {', '.join(MODES)}")
    if (float_ops or float_nodes) and mode != "int8":
        raise WorkbookError("float_ops and float_nodes apply to int8 conversions only")
    if io_type not in ("int8", "uint8"):
        raise WorkbookError(f"io_type must be int8 or uint8, not {io_type!r}")
    if mode == "int8" and representative is None:
        raise WorkbookError("int8 conversion needs a representative dataset of real inputs")
    if mode != "int8":
        representative = None  # the converter reads it for int8 only
    key = None
    if cache:
        batches = [list(batch) for batch in representative()] if representative is not None else []
        representative = (lambda: iter(batches)) if representative is not None else None
        key = _conversion_key(model, batches, mode, per_channel, float_ops, float_nodes, io_type)
        cached = conversion_cache() / f"{key}.tflite" if key else None
        if cached is not None and cached.is_file():
            content = cached.read_bytes()
            if content[4:8] == b"TFL3":  # a flatbuffer with TFLite's identifier; anything else is converted anew
                return content
    content = _convert(model, mode, representative, per_channel, float_ops, float_nodes, io_type)
    if key:
        with contextlib.suppress(OSError):  # a read-only cache (a grading sandbox's) stays as it is
            data.write_atomic(conversion_cache() / f"{key}.tflite", content)
    return content


def conversion_cache() -> Path:
    """``build/cache/tflite``: converted files by the sha256 of their inputs (``make clean`` removes it)."""
    return build_dir() / "cache" / "tflite"


def _conversion_key(model, batches, mode, per_channel, float_ops, float_nodes, io_type) -> str | None:
    import tensorflow as tf

    try:
        config = model.to_json()
    except Exception:  # a model Keras cannot describe: no key, no cache
        return None
    digest = hashlib.sha256()
    options = [tf.__version__, mode, per_channel, list(float_ops), list(float_nodes), io_type, config]
    digest.update(json.dumps(options).encode())
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.path} {value.dtype} {value.shape}".encode())
        digest.update(value.tobytes())
    for batch in batches:
        for value in batch:
            value = np.ascontiguousarray(value)
            digest.update(f"{value.dtype} {value.shape}".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def _convert(model, mode, representative, per_channel, float_ops, float_nodes, io_type) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        model.export(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if mode == "int8":
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
        if not per_channel:
            converter._experimental_disable_per_channel = True
        with native_log.filtered():  # the calibration summary line ("fully_quantize: 0, ...")
            if float_ops or float_nodes:
                return _convert_keeping_float(converter, representative, float_ops, float_nodes)
            return converter.convert()


def _convert_keeping_float(
    converter, representative, float_ops: Sequence[str], float_nodes: Sequence[str] = ()
) -> bytes:
    import warnings

    import tensorflow as tf

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # float ops allowed
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(float_ops) or None, denylisted_nodes=list(float_nodes) or None
    )
    with warnings.catch_warnings():  # the debugger builds its own (deprecated) tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative, debug_options=options
        )
        return debugger.get_nondebug_quantized_model()


def interpreter(model: str | Path | bytes, *, preserve_all_tensors: bool = False, num_threads: int | None = None):
    """An allocated ``ai_edge_litert`` interpreter; a file that is not a TFLite model is a clear error."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not isinstance(model, bytes) and not Path(model).is_file():
        raise WorkbookError(f"TFLite model not found: {model}")
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    if preserve_all_tensors:
        # The default XNNPACK delegate computes whole subgraphs internally and never writes their
        # intermediate tensors back: without this, "preserved" tensors would hold stale values.
        source["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    name = "the model bytes" if isinstance(model, bytes) else str(model)
    try:
        # allocate_tensors applies the XNNPACK delegate, whose banner line native_log drops
        with warnings.catch_warnings(), native_log.filtered():
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
            found = Interpreter(
                **source, experimental_preserve_all_tensors=preserve_all_tensors, num_threads=num_threads
            )
            found.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise WorkbookError(f"{name} is not a TFLite model the interpreter can load: {error}") from None
    return found


def operators(found) -> list[dict]:
    """The model's ops in execution order: ``{"index", "op_name", "inputs", "outputs"}`` each.

    LiteRT exposes the op graph only through the private ``Interpreter._get_ops_details``; this
    is the one place that calls it, so a LiteRT release that removes it fails here, clearly.
    Ops that a delegate took over are still listed, followed by one ``DELEGATE`` op per delegated
    partition.
    """
    method = getattr(found, "_get_ops_details", None)
    if method is None:
        raise WorkbookError(
            "this ai-edge-litert has no Interpreter._get_ops_details (the op list the workbook reads); "
            "install the version pinned in requirements.txt"
        )
    return method()


def whole_graph_delegated(found) -> bool:
    """Whether the default delegate (XNNPACK) runs the whole graph of the allocated interpreter
    ``found``: one ``DELEGATE`` op that reads the model's input and writes its output. An op it
    cannot run (the uint8 -> int8 ``QUANTIZE`` of a uint8 input, an INT8 ``SOFTMAX``) stays
    outside, runs in LiteRT's built-in kernel, and the partition then starts or ends at that op's
    tensor."""
    delegates = [op for op in operators(found) if op["op_name"] == "DELEGATE"]
    if len(delegates) != 1:
        return False
    reads = {int(i) for i in delegates[0]["inputs"]}
    writes = {int(i) for i in delegates[0]["outputs"]}
    inputs = {int(d["index"]) for d in found.get_input_details()}
    outputs = {int(d["index"]) for d in found.get_output_details()}
    return inputs <= reads and outputs <= writes


def dequantize(value: np.ndarray, detail: dict) -> np.ndarray:
    """Real values of a tensor: ``scale * (q - zero_point)``, per axis where the tensor is per-axis."""
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float64)
    if scales.size == 0 or not np.issubdtype(value.dtype, np.integer):
        return np.asarray(value, np.float32)
    zeros = np.asarray(params.get("zero_points", np.zeros_like(scales)), np.float64)
    if scales.size > 1:
        shape = [1] * value.ndim
        shape[params.get("quantized_dimension", 0)] = scales.size
        scales, zeros = scales.reshape(shape), zeros.reshape(shape)
    return ((value.astype(np.float64) - zeros) * scales).astype(np.float32)


def conv_weights(path: str | Path | bytes) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(op kind, kernel, bias)`` of every CONV_2D / DEPTHWISE_CONV_2D op of a ``.tflite`` file (or its bytes) in
    execution order, dequantized with each tensor's scale and zero point (per axis where the file
    is per axis) and converted to ``tf.nn``'s layouts: conv OHWI -> HWIO, depthwise 1HWC -> HWC1."""
    found = interpreter(path)
    details = {d["index"]: d for d in found.get_tensor_details()}
    weights = []
    for op in operators(found):
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        _, kernel_index, bias_index = (int(i) for i in op["inputs"][:3])
        kernel = dequantize(found.get_tensor(kernel_index), details[kernel_index])
        bias = dequantize(found.get_tensor(bias_index), details[bias_index])
        if op["op_name"] == "CONV_2D":
            weights.append(("conv", kernel.transpose(1, 2, 3, 0), bias))
        else:
            weights.append(("depthwise", kernel[0][..., None], bias))
    return weights


class TFLiteClassifier(Classifier):
    """An image classifier ``.tflite`` with its input convention and class names (see the module)."""

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        labels_file: str | Path | None = None,
        input_mean: float | None = None,
        input_std: float | None = None,
        data_format: str = "channel_last",
        preserve_all_tensors: bool = False,
        num_threads: int | None = None,
        name: str | None = None,
    ):
        self.name = name or (str(model) if not isinstance(model, bytes) else "model")
        self.path = None if isinstance(model, bytes) else Path(model)
        self.interpreter = interpreter(model, preserve_all_tensors=preserve_all_tensors, num_threads=num_threads)
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        if data_format not in DATA_FORMATS:
            raise WorkbookError(f"data format must be one of {', '.join(DATA_FORMATS)}, not {data_format!r}")
        self.channels_first = data_format == "channel_first"
        shape = [int(v) for v in self.input["shape"]]
        channel_axis = 1 if self.channels_first else 3
        if len(shape) != 4 or shape[0] != 1 or shape[channel_axis] != 3:
            hint = "; try --data-format channel_first" if len(shape) == 4 and shape[1] == 3 else ""
            raise WorkbookError(
                f"{self.name}: model input shape {shape} does not fit one RGB image in {data_format} layout{hint}"
            )
        height, width = (shape[2], shape[3]) if self.channels_first else (shape[1], shape[2])
        if height != width:
            raise WorkbookError(f"{self.name}: non-square input {height}x{width} is not supported")
        self.input_size = height
        self.mean, self.std = self._normalisation(input_mean, input_std)
        self.class_names, self.wnids, self.background = self._classes(labels_file)
        self.softmax_output = self._ends_in_softmax()

    def _normalisation(self, mean: float | None, std: float | None) -> tuple[float, float]:
        if mean is not None and std is not None:
            if std == 0:
                raise WorkbookError("--input-std must not be 0")
            return float(mean), float(std)
        scale, zero = self.input["quantization"]
        if scale:
            info = np.iinfo(self.input["dtype"])
            wants_pm1 = scale * (info.max - zero) <= 1.5  # the real range the input can hold
        else:
            wants_pm1 = "pixels" not in self.input["name"]
        default = (127.5, 127.5) if wants_pm1 else (0.0, 1.0)
        return float(default[0] if mean is None else mean), float(default[1] if std is None else std)

    def _classes(self, labels_file) -> tuple[list[str], list[str | None] | None, bool]:
        n = int(self.output["shape"][-1])
        if labels_file is None and self.path is not None and labels_path(self.path).is_file():
            labels_file = labels_path(self.path)
        if labels_file is not None:
            names = read_label_file(labels_file)
            background = len(names) == n - 1 == 1000
            if len(names) != n and not background:
                raise WorkbookError(f"{labels_file} lists {len(names)} names but {self.name} has {n} outputs")
            return names, None, background
        if n in (1000, 1001):
            classes = imagenet_classes()
            return [c.label for c in classes], [c.wnid for c in classes], n == 1001
        raise WorkbookError(f"{self.name} has {n} outputs: give a labels file (one class name per line)")

    def _ends_in_softmax(self) -> bool:
        """Whether the output is a SOFTMAX's (read from the op graph, looking through the
        QUANTIZE / DEQUANTIZE ops a converter puts after it for a uint8 or float output)."""
        producers = {
            int(out): op for op in operators(self.interpreter) if op["op_name"] != "DELEGATE" for out in op["outputs"]
        }
        op = producers.get(int(self.output["index"]))
        while op is not None and op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            op = producers.get(int(op["inputs"][0]))
        return op is not None and op["op_name"] == "SOFTMAX"

    def input_tensor(self, image: np.ndarray) -> np.ndarray:
        """One ``uint8`` RGB image -> the input tensor: resized (PIL bilinear), normalised with
        ``(x - mean) / std``, quantized with the input's scale and zero point, laid out."""
        real = (images.resize(image, self.input_size).astype(np.float32) - self.mean) / self.std
        scale, zero = self.input["quantization"]
        dtype = self.input["dtype"]
        if scale:
            info = np.iinfo(dtype)
            value = np.clip(np.round(real / scale + zero), info.min, info.max).astype(dtype)
        else:
            value = real.astype(dtype)
        if self.channels_first:
            value = value.transpose(2, 0, 1)
        return value[None]

    def set_input(self, image: np.ndarray) -> None:
        """Put one photo into the input tensor (then time ``self.interpreter.invoke()`` alone)."""
        self.interpreter.set_tensor(self.input["index"], self.input_tensor(image))

    def output_values(self) -> np.ndarray:
        """The output of the last invoke as real values (dequantized; background still included)."""
        return dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)[0]

    def invoke(self, image: np.ndarray) -> np.ndarray:
        """Run one photo; the output's real values (background column still included)."""
        self.set_input(image)
        self.interpreter.invoke()
        return self.output_values()

    def probabilities(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for photo in photos:
            out = np.asarray(self.invoke(photo), np.float64)
            out = out[1:] if self.background else out
            rows.append(out if self.softmax_output else ranking.softmax(out))
        return np.stack(rows)

    def tensors(self) -> list[tuple[dict, np.ndarray]]:
        """Every tensor of the last :meth:`invoke` (needs ``preserve_all_tensors``), dequantized."""
        found = []
        for detail in self.interpreter.get_tensor_details():
            with contextlib.suppress(ValueError):
                value = self.interpreter.get_tensor(detail["index"])
                found.append((detail, dequantize(value, detail)))
        return found

    def quantization_bytes(self) -> int:
        """Bytes the file spends on scales (float32) and zero points (int64) of all tensors."""
        total = 0
        for detail in self.interpreter.get_tensor_details():
            params = detail["quantization_parameters"]
            total += SCALE_BYTES * params["scales"].size + ZERO_POINT_BYTES * params["zero_points"].size
        return total


def activation_key(name: str) -> str:
    """A tensor's first fused name (``a/conv_pw_3_relu_1/Relu6;a/...`` -> ``a/conv_pw_3_relu_1/Relu6``)."""
    return name.split(";")[0]


def short_name(name: str) -> str:
    """A tensor's first fused name without its model prefixes, as a table shows it
    (``imagenet_1/mobilenet_..._logits_1/conv_dw_1_relu_1/Relu6`` -> ``conv_dw_1_relu_1/Relu6``)."""
    return "/".join(activation_key(name).split("/")[-2:])


def check_dump_folder(folder: str | Path, *, force: bool = False) -> Path:
    """Refuse a tensor dump folder that is a file, or not empty (unless ``force``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WorkbookError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise WorkbookError(f"tensor dump folder {folder} is not empty; choose another or pass --force")
    return folder


def save_tensors(
    classifier: TFLiteClassifier, folder: str | Path, *, layout: str = "nchw", force: bool = False
) -> Path:
    """Write every tensor of the last invoke to ``folder`` as ``.npy`` (4-D ones in ``layout``),
    with ``tensors.json`` listing index, name, shape and file. A non-empty folder is refused
    unless ``force``."""
    folder = check_dump_folder(folder, force=force)
    if layout not in ("nchw", "nhwc"):
        raise WorkbookError(f"layout must be nchw or nhwc, not {layout!r}")
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for detail, value in classifier.tensors():
        if value.ndim == 4 and layout == "nchw":
            value = value.transpose(0, 3, 1, 2)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", activation_key(detail["name"]))[-80:]
        file = f"{detail['index']:04d}_{safe}.npy"
        np.save(folder / file, value, allow_pickle=False)
        listing.append(
            {"index": int(detail["index"]), "name": detail["name"], "shape": list(value.shape), "file": file}
        )
    (folder / "tensors.json").write_text(json.dumps({"layout": layout, "tensors": listing}, indent=1))
    return folder


def activation_indices(classifier: TFLiteClassifier) -> set[int]:
    """Indices of the tensors that ops compute (activations), as opposed to weights and constants.

    Needs a classifier made with ``preserve_all_tensors`` (no delegate), so every op is listed."""
    return {int(i) for op in operators(classifier.interpreter) if op["op_name"] != "DELEGATE" for i in op["outputs"]}


def layer_errors(reference: TFLiteClassifier, other: TFLiteClassifier) -> list[dict]:
    """Per 4-D activation present in both models (same first fused name and shape), the error of
    ``other`` vs ``reference`` after the same invoke: the largest and the mean absolute error, and
    the mean error relative to the mean absolute activation (a typical error, not an outlier)."""
    keep = activation_indices(reference)
    ref = {activation_key(d["name"]): v for d, v in reference.tensors() if v.ndim == 4 and d["index"] in keep}
    keep = activation_indices(other)
    rows = []
    for detail, value in other.tensors():
        key = activation_key(detail["name"])
        if detail["index"] in keep and value.ndim == 4 and key in ref and ref[key].shape == value.shape:
            error = np.abs(value - ref[key])
            rows.append(
                {
                    "tensor": key,
                    "shape": list(value.shape),
                    "max_abs_error": float(error.max()),
                    "mean_abs_error": float(error.mean()),
                    "relative_error": float(error.mean()) / max(float(np.abs(ref[key]).mean()), 1e-12),
                }
            )
    return rows


def layer_nodes(model: str | Path | bytes, layers: Sequence[str]) -> list[str]:
    """The output tensor names of the ops of a converted MobileNet that compute ``layers`` (Keras
    layer names such as ``conv1``, ``conv_dw_1``), found by their fused ``<layer>_relu`` name: what
    ``convert(..., float_nodes=...)`` takes."""
    found = interpreter(model)
    details = found.get_tensor_details()
    names = [details[int(op["outputs"][0])]["name"] for op in operators(found) if op["op_name"] != "DELEGATE"]
    chosen = [name for name in names if any(f"/{layer}_relu" in name for layer in layers)]
    if len(chosen) != len(layers):
        raise WorkbookError(f"found {len(chosen)} ops for the {len(layers)} layers {list(layers)}")
    return chosen


def layer_pieces(model) -> list[tuple[str, str, list]]:
    """``(name, op, layers)`` for every convolution of a (BatchNorm-folded) MobileNet V1: the conv,
    the ``ZeroPadding2D`` before a strided depthwise conv, and the ``ReLU`` after it, in order."""
    import keras

    pieces, pending_pad = [], None
    layers = model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.ZeroPadding2D):
            pending_pad = layer
            continue
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and layer.name != "conv_preds":
            after = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], keras.layers.ReLU) else None
            op = "DEPTHWISE_CONV_2D" if isinstance(layer, keras.layers.DepthwiseConv2D) else "CONV_2D"
            chain = [x for x in (pending_pad, layer, after) if x is not None]
            pieces.append((layer.name.removesuffix("_folded"), op, chain))
        pending_pad = None
    return pieces


def layer_speeds(
    model, photos: np.ndarray, *, repeats: int = 200, threads: int = 1, names: Sequence[str] | None = None
) -> list[dict]:
    """float32 vs INT8 ``invoke()`` time of every convolution of ``model`` run as its own one-layer
    ``.tflite`` file (int8 input and output, calibrated on that layer's real inputs for ``photos``,
    which are in the model's own input scale), timed interleaved with ``threads`` threads.

    Each row: ``layer``, ``op``, ``input`` (its input's height, width, channels), ``output_channels``,
    ``float32_ms`` and ``int8_ms`` (medians), ``speed_ratio`` (float32 time / INT8 time: above 1,
    INT8 is faster) and its bootstrap standard error ``speed_ratio_se``.
    """
    import keras

    from . import timing

    pieces = [p for p in layer_pieces(model) if names is None or p[0] in names]
    inputs = keras.Model(model.input, [chain[0].input for _, _, chain in pieces]).predict(photos, verbose=0)
    if len(pieces) == 1:
        inputs = [inputs]
    runners, shapes = {}, {}
    for (name, _, chain), seen in zip(pieces, inputs, strict=True):
        x = keras.Input(shape=seen.shape[1:], name="x")
        y = x
        for layer in chain:
            y = layer(y)
        tiny = keras.Model(x, y, name=name)
        shapes[name] = (seen.shape[1:], y.shape[-1])

        def representative(seen=seen):
            for value in seen:
                yield [value[None].astype(np.float32)]

        for mode in ("float32", "int8"):
            found = interpreter(convert(tiny, mode, representative if mode == "int8" else None), num_threads=threads)
            detail = found.get_input_details()[0]
            value = seen[:1]
            if detail["dtype"] == np.int8:
                scale, zero = detail["quantization"]
                value = np.clip(np.round(value / scale + zero), -128, 127)
            found.set_tensor(detail["index"], value.astype(detail["dtype"]))
            runners[name, mode] = found.invoke
    samples = timing.measure(runners, repeats=repeats, warmup=5)
    rows = []
    for name, op, _ in pieces:
        ratio, error = timing.speed_ratio(samples[name, "float32"], samples[name, "int8"])
        rows.append(
            {
                "layer": name,
                "op": op,
                "input": list(shapes[name][0]),
                "output_channels": int(shapes[name][1]),
                "float32_ms": 1000 * float(np.median(samples[name, "float32"])),
                "int8_ms": 1000 * float(np.median(samples[name, "int8"])),
                "speed_ratio": ratio,
                "speed_ratio_se": error,
            }
        )
    return rows
