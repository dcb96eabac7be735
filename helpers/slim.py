"""Google's TF-slim MobileNet V1 frozen graphs: their weights by slim name, and running them as-is.

A frozen graph (``frozen_graph.pb`` inside ``mobilenet_v1_<alpha>_<size>_frozen.tgz``) stores every
variable as a ``Const`` node that keeps its training-time name, e.g.
``MobilenetV1/Conv2d_1_depthwise/depthwise_weights``. BatchNorm is *not* folded: each conv has its own
``BatchNorm/{gamma,beta,moving_mean,moving_variance}`` and the graph adds ``epsilon`` (0.001) itself.
The classifier has 1001 outputs; output 0 is the "background" class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import data
from .errors import WorkbookError

INPUT = "input:0"
LOGITS = "MobilenetV1/Logits/SpatialSqueeze:0"
PREDICTIONS = "MobilenetV1/Predictions/Reshape_1:0"
# tensorflow-for-poets' retrain.py cached this tensor as its MobileNet "bottleneck": the 1001 logits
# reshaped to [batch, 1001] just before the softmax (the same numbers as LOGITS).
BOTTLENECK = "MobilenetV1/Predictions/Reshape:0"
SIZES = (128, 160, 192, 224)
ALPHAS = ("0.25", "0.5", "0.75", "1.0")


def archive_name(alpha: str, size: int) -> str:
    """Registry name of the frozen-graph archive for ``alpha`` and ``size``."""
    if alpha not in ALPHAS or size not in SIZES:
        raise WorkbookError(f"no MobileNet V1 {alpha}/{size}: alpha is one of {ALPHAS}, size one of {SIZES}")
    return f"mobilenet_v1_{alpha}_{size}_frozen.tgz"


@lru_cache(maxsize=8)
def graph_def(alpha: str = "0.25", size: int = 224):
    """The parsed ``tf.compat.v1.GraphDef`` of the float frozen graph (read straight from the tgz)."""
    import tensorflow as tf

    raw = data.read_tar_member(data.fetch(archive_name(alpha, size)), "frozen_graph.pb")
    parsed = tf.compat.v1.GraphDef()
    parsed.ParseFromString(raw)
    return parsed


_VARIABLES = {"weights", "depthwise_weights", "biases", "gamma", "beta", "moving_mean", "moving_variance"}


def _is_variable(name: str) -> bool:
    # Other constants are graph internals: MobilenetV1/MobilenetV1/.../batchnorm/add/y (epsilon),
    # MobilenetV1/Predictions/Reshape/shape, ...
    return (
        name.startswith("MobilenetV1/")
        and not name.startswith("MobilenetV1/MobilenetV1/")
        and name.rsplit("/", 1)[-1] in _VARIABLES
    )


@lru_cache(maxsize=8)
def _weights(alpha: str, size: int) -> tuple[tuple[str, np.ndarray], ...]:
    import tensorflow as tf

    return tuple(
        (node.name, tf.make_ndarray(node.attr["value"].tensor))
        for node in graph_def(alpha, size).node
        if node.op == "Const" and _is_variable(node.name)
    )


def slim_weights(alpha: str = "0.25", size: int = 224) -> dict[str, np.ndarray]:
    """Every variable of the slim model, ``slim name -> array``, in graph order (a fresh copy)."""
    return {name: value.copy() for name, value in _weights(alpha, size)}


def batchnorm_epsilon(alpha: str = "0.25", size: int = 224) -> float:
    """The epsilon the graph adds to ``moving_variance`` (read from the graph, not assumed)."""
    import tensorflow as tf

    for node in graph_def(alpha, size).node:
        if node.op == "Const" and node.name.endswith("Conv2d_0/BatchNorm/batchnorm/add/y"):
            return float(tf.make_ndarray(node.attr["value"].tensor))
    raise WorkbookError("the frozen graph has no Conv2d_0 BatchNorm epsilon constant")


@dataclass
class FrozenGraph:
    """The frozen graph run by TensorFlow itself, with a batch dimension of any size.

    ``logits(x)`` returns the 1001 slim logits (background first), ``probabilities(x)`` the graph's
    own softmax over all 1001. ``x`` is a float batch ``[n, size, size, 3]`` scaled to [-1, 1].
    """

    alpha: str = "0.25"
    size: int = 224

    def __post_init__(self) -> None:
        import tensorflow as tf

        definition = graph_def(self.alpha, self.size)

        def _import(images):
            # The stored placeholder has batch size 1; map our own [None, ...] input onto it.
            # Its Predictions/Reshape_1 output has a fixed [1, 1001] shape, so the softmax of
            # SpatialSqueeze (the same op the graph runs) is taken here for batches.
            (logits,) = tf.compat.v1.import_graph_def(
                definition, input_map={INPUT: images}, return_elements=[LOGITS], name=""
            )
            return logits, tf.nn.softmax(logits)

        spec = tf.TensorSpec([None, self.size, self.size, 3], tf.float32)
        self._function = tf.compat.v1.wrap_function(_import, [spec])

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Slim logits, shape ``[n, 1001]``."""
        return self._function(np.asarray(images, np.float32))[0].numpy()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax over all 1001 classes, background included, shape ``[n, 1001]``."""
        return self._function(np.asarray(images, np.float32))[1].numpy()
