"""MobileNet V2 1.0/224 built from low-level ``tf.nn`` ops, with weights read from Google's uint8
TFLite model (no float V2 checkpoint is available offline).

The layers use only ``tf.nn.conv2d``, ``tf.nn.depthwise_conv2d``, ``tf.nn.relu6``, ``tf.pad`` and
``tf.add``: no ``keras.layers.Conv2D``. The ``.tflite`` file's BatchNorm is already folded into each
convolution's weights and bias, so every conv here has a bias and no BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import data
from .errors import WorkbookError
from .tflite import conv_weights

NAME = "mobilenet_v2_1.0_224_tfnn"
QUANT_NAME = "mobilenet_v2_1.0_224_quant"
# (expansion t, output channels c, repeats n, first stride s): Table 2 of the MobileNetV2 paper
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """The (before, after) padding TensorFlow's ``SAME`` uses along one axis.

    ``out = ceil(size / stride)``; ``total = max((out - 1) * stride + kernel - size, 0)``;
    TF puts the extra pixel *after*. For 224 -> 112 with a 3x3 stride-2 kernel that is (0, 1),
    which a symmetric ``ZeroPadding2D(1)`` gets wrong (it pads (1, 1) and shifts every output by
    one pixel); for an odd size such as 225 it is (1, 1). ``keras.applications.MobileNetV2``
    computes it from the size the same way (``imagenet_utils.correct_pad``); Keras's MobileNet V1
    hard-codes ``((0, 1), (0, 1))``, right for even sizes only.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x, kernel: int, stride: int):
    import tensorflow as tf

    if stride == 1:
        return x, "SAME"  # stride 1: TF's symmetric SAME, no shift possible
    h, w = int(x.shape[1]), int(x.shape[2])
    return tf.pad(
        x, [[0, 0], list(same_padding(h, kernel, stride)), list(same_padding(w, kernel, stride)), [0, 0]]
    ), "VALID"


def _layers():
    """The custom layer classes (defined lazily so importing helpers does not import Keras)."""
    import keras
    import tensorflow as tf

    class Conv(keras.layers.Layer):
        """``tf.nn.conv2d`` + bias (+ ReLU6), SAME padding computed explicitly for stride 2."""

        def __init__(self, filters: int, kernel: int = 1, stride: int = 1, relu6: bool = True, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.kernel_size, self.stride, self.relu6 = filters, kernel, stride, relu6

        def build(self, input_shape):
            shape = (self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters)
            self.kernel = self.add_weight(name="kernel", shape=shape, initializer="zeros")
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

        def call(self, x):
            x, padding = _pad_same(x, self.kernel_size, self.stride)
            x = tf.nn.conv2d(x, self.kernel, strides=self.stride, padding=padding) + self.bias
            return tf.nn.relu6(x) if self.relu6 else x

    class DepthwiseConv(keras.layers.Layer):
        """``tf.nn.depthwise_conv2d`` 3x3 + bias + ReLU6."""

        def __init__(self, stride: int = 1, **kwargs):
            super().__init__(**kwargs)
            self.stride = stride

        def build(self, input_shape):
            self.kernel = self.add_weight(name="kernel", shape=(3, 3, int(input_shape[-1]), 1), initializer="zeros")
            self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),), initializer="zeros")

        def call(self, x):
            x, padding = _pad_same(x, 3, self.stride)
            strides = [1, self.stride, self.stride, 1]
            return tf.nn.relu6(tf.nn.depthwise_conv2d(x, self.kernel, strides=strides, padding=padding) + self.bias)

    class InvertedResidual(keras.layers.Layer):
        """Expand (1x1, ReLU6) -> depthwise 3x3 (ReLU6) -> project (1x1, *linear* bottleneck),
        plus the input when the shapes allow (stride 1, same channels)."""

        def __init__(self, expansion: int, filters: int, stride: int, **kwargs):
            super().__init__(**kwargs)
            self.expansion, self.filters, self.stride = expansion, filters, stride

        def build(self, input_shape):
            channels = int(input_shape[-1])
            self.expand = Conv(channels * self.expansion, name="expand") if self.expansion != 1 else None
            self.depthwise = DepthwiseConv(self.stride, name="depthwise")
            self.project = Conv(self.filters, relu6=False, name="project")
            self.residual = self.stride == 1 and channels == self.filters
            shape = tuple(input_shape)
            if self.expand is not None:
                self.expand.build(shape)
                shape = (*shape[:-1], channels * self.expansion)
            self.depthwise.build(shape)
            self.project.build(shape)

        def call(self, x):
            y = self.expand(x) if self.expand is not None else x
            y = self.project(self.depthwise(y))
            return tf.add(x, y) if self.residual else y

        def convs(self) -> list:
            return [c for c in (self.expand, self.depthwise, self.project) if c is not None]

    class Logits(keras.layers.Layer):
        """Global average pooling (``tf.reduce_mean``) -> 1x1 conv to 1001 logits -> softmax."""

        def __init__(self, classes: int = 1001, **kwargs):
            super().__init__(**kwargs)
            self.conv = Conv(classes, relu6=False, name="conv")

        def build(self, input_shape):
            self.conv.build((input_shape[0], 1, 1, input_shape[-1]))

        def call(self, x):
            x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
            return tf.nn.softmax(tf.reshape(self.conv(x), [-1, self.conv.filters]))

    return Conv, DepthwiseConv, InvertedResidual, Logits


@dataclass(frozen=True)
class BlockInfo:
    """One block of the architecture, for printing and drawing."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    expansion: int
    stride: int
    residual: bool


def build_mobilenet_v2(size: int = 224):
    """The V2 1.0 network (input [-1, 1], output 1001 softmax probabilities), weights zero."""
    import keras

    Conv, _, InvertedResidual, Logits = _layers()
    inputs = keras.Input((size, size, 3), name="image")
    x = Conv(32, kernel=3, stride=2, name="conv_stem")(inputs)
    index = 0
    for expansion, filters, repeats, stride in BLOCKS:
        for i in range(repeats):
            x = InvertedResidual(expansion, filters, stride if i == 0 else 1, name=f"block_{index}")(x)
            index += 1
    x = Conv(1280, name="conv_head")(x)
    outputs = Logits(name="logits")(x)
    return keras.Model(inputs, outputs, name=NAME)


def conv_layers(model) -> list:
    """Every conv (stem, each block's expand/depthwise/project, head, logits) in execution order."""
    out = []
    for layer in model.layers:
        if layer.name.startswith("block_"):
            out.extend(layer.convs())
        elif layer.name == "logits":
            out.append(layer.conv)
        elif layer.name.startswith("conv_"):
            out.append(layer)
    return out


def blocks(model) -> list[BlockInfo]:
    """The architecture as a list of :class:`BlockInfo` (shapes for one image)."""
    rows = []
    for layer in model.layers[1:]:
        shape = tuple(int(v) for v in layer.output.shape[1:])
        if layer.name.startswith("block_"):
            rows.append(
                BlockInfo(layer.name, "inverted residual", shape, layer.expansion, layer.stride, layer.residual)
            )
        else:
            rows.append(
                BlockInfo(
                    layer.name,
                    "conv" if layer.name != "logits" else "pool + 1x1 conv + softmax",
                    shape,
                    1,
                    getattr(layer, "stride", 1),
                    False,
                )
            )
    return rows


def load_tflite_weights(model, path: str | Path) -> int:
    """Copy every conv's weights from the ``.tflite`` file into ``model``; returns how many convs."""
    layers = conv_layers(model)
    weights = conv_weights(path)
    if len(weights) != len(layers):
        raise WorkbookError(f"{path} has {len(weights)} convolutions; MobileNet V2 1.0 has {len(layers)}")
    for layer, (kind, kernel, bias) in zip(layers, weights, strict=True):
        expected = tuple(int(v) for v in layer.kernel.shape)
        is_depthwise = type(layer).__name__ == "DepthwiseConv"
        if kernel.shape != expected or (kind == "depthwise") != is_depthwise:
            raise WorkbookError(f"{layer.name}: file has a {kind} kernel {kernel.shape}, the layer wants {expected}")
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return len(layers)


def load_model():
    """The ``tf.nn`` V2 with the uint8 TFLite model's weights, dequantized
    (see :func:`helpers.tflite.conv_weights`)."""
    model = build_mobilenet_v2()
    load_tflite_weights(model, data.fetch(f"{QUANT_NAME}.tflite"))
    return model
